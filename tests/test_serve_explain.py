"""``POST /v1/explain`` of ``edge-infer serve``: servers in subprocesses on 127.0.0.1 (ports chosen by the OS),
started and stopped by the helpers of tests/test_serve.py; every wait has a timeout."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, TINY_SENTENCES

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

import test_serve  # noqa: E402
from test_serve import Server, _env, _wait_for  # noqa: E402

from edge_infer import SentimentClassifier  # noqa: E402
from edge_infer.tokenizer import tokenize  # noqa: E402

CAP = 40
"""The server's --explain-max-tokens here."""
ATOL = 2e-6
"""to_dict() rounds to 6 decimals: the server's and this process's floats may round apart by one unit."""


@pytest.fixture(scope="module")
def server(default_model_dir: Path) -> Iterator[Server]:
    srv = Server("--model", str(default_model_dir), "--explain-max-tokens", str(CAP), "--max-text-chars", "3000",
                 "--max-body-bytes", "20000", "--threads", "1")
    try:
        yield srv
    finally:
        srv.stop()


clf = test_serve.clf  # the module-scoped classifier fixture (default model, 1 thread)


def explain(srv: Server, body: dict | bytes, **kw: Any) -> tuple[int, dict[str, str], Any]:
    return srv.request("POST", "/v1/explain", body, **kw)


def assert_same(got: Any, want: Any, path: str = "") -> None:
    """Equal JSON documents, numbers (not booleans) within :data:`ATOL`."""
    if isinstance(want, float) or (isinstance(want, int) and not isinstance(want, bool) and isinstance(got, float)):
        assert isinstance(got, (int, float)) and abs(got - want) <= ATOL, (path, got, want)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), (path, got, want)
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (path, got, want)
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{path}[{i}]")
    else:
        assert type(got) is type(want) and got == want, (path, got, want)


CASES = [
    {"text": TINY_SENTENCES[0]},
    {"text": TINY_SENTENCES[2], "label": "positive"},
    {"text": "Not bad at all.", "window": 2},
    {"text": TINY_SENTENCES[4], "label": "negative", "window": 3},
    {"text": "Ce film était magnifique, vraiment! 映画は素晴らしかった", "label": None},
    {"text": "<b>Great</b> &amp; didn't disappoint\u2014 ﬁne ½"},
]


def test_answers_equal_the_python_api(server: Server, clf: SentimentClassifier):
    for body in CASES:
        status, head, doc = explain(server, body)
        assert status == 200 and head["content-type"] == "application/json", (body, doc)
        want = clf.explain(body["text"], label=body.get("label"), window=body.get("window", 1),
                           max_tokens=CAP).to_dict()
        assert_same(doc, want)
        assert all(doc["words"][i]["text"] == body["text"][w["start"]:w["end"]] for i, w in enumerate(doc["words"]))


def test_the_token_cap_is_inclusive_and_longer_texts_get_413(server: Server):
    assert len(tokenize("good " * CAP)) == CAP
    status, _, doc = explain(server, {"text": "good " * CAP})
    assert status == 200 and len(doc["words"]) == CAP
    status, _, doc = explain(server, {"text": "good " * (CAP + 1)})
    assert status == 413 and doc["error"]["code"] == "too_many_tokens", doc
    message = doc["error"]["message"]
    assert f"{CAP + 1} tokens" in message and str(CAP) in message and "--explain-max-tokens" in message


BAD = [
    ({"text": ""}, 422, "empty_text"),
    ({"text": " \n\t "}, 422, "empty_text"),
    ({"text": "fine", "label": "neutral"}, 422, "invalid_label"),
    ({"text": "fine", "label": 1}, 422, "invalid_label"),
    ({"text": "fine", "window": 0}, 422, "invalid_window"),
    ({"text": "fine", "window": 4}, 422, "invalid_window"),
    ({"text": "fine", "window": "2"}, 422, "invalid_window"),
    ({"text": "fine", "window": True}, 422, "invalid_window"),
    ({"text": "fine", "window": 1.5}, 422, "invalid_window"),
    ({"text": "fine", "window": None}, 422, "invalid_window"),
    ({"texts": ["fine"]}, 422, "invalid_request"),
    ({}, 422, "invalid_request"),
    ({"text": 3}, 422, "invalid_request"),
    ({"text": "fine", "threshold": 0.5}, 422, "invalid_request"),
    (b'["a list"]', 422, "invalid_request"),
    (b"{not json", 400, "invalid_json"),
    (b"\xff\xfe", 400, "invalid_json"),
    ({"text": "long " * 700}, 413, "text_too_long"),
    ({"text": "a" * 20_001}, 413, "body_too_large"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD, ids=[code + str(i) for i, (_, _, code) in enumerate(BAD)])
def test_bad_input_gets_its_status_and_a_json_error(server: Server, body: Any, status: int, code: str):
    got, _, doc = explain(server, body)
    assert got == status, doc
    assert set(doc) == {"error"} and doc["error"]["code"] == code and doc["error"]["message"], doc


def test_content_type_and_host_are_checked_as_for_predict(server: Server):
    body = json.dumps({"text": "fine"}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"):
        status, _, doc = explain(server, body, headers={"Content-Type": content_type})
        assert status == 415 and doc["error"]["code"] == "unsupported_media_type", (content_type, doc)
    status, _, doc = explain(server, body, headers={"Host": "rebind.example.com"})
    assert status == 421 and doc["error"]["code"] == "host_not_allowed"
    status, head, doc = server.request("GET", "/v1/explain")
    assert status == 405 and "POST" in head.get("allow", "")
    status, _, doc = explain(server, body.replace(b"fine", b"x"), headers={"Content-Type": "application/json"})
    assert status == 200


def test_info_openapi_metrics_and_access_log(server: Server, default_model_dir: Path):
    status, _, info = server.request("GET", "/v1/info")
    assert status == 200
    assert info["explain"] == {"route": "/v1/explain", "method": "occlusion", "windows": [1, 2, 3],
                               "max_tokens": CAP, "concurrency": 1}
    cli = subprocess.run([sys.executable, "-m", "edge_infer", "info", "--format", "json", "--model",
                          str(default_model_dir)], capture_output=True, text=True, timeout=60, env=_env(), cwd=REPO)
    assert cli.returncode == 0 and {k: v for k, v in info.items() if k != "explain"} == json.loads(cli.stdout)

    spec = server.request("GET", "/openapi.json")[2]
    assert "/v1/explain" in spec["paths"] and "ExplainRequest" in spec["components"]["schemas"]

    explain(server, {"text": TINY_SENTENCES[1]})
    explain(server, {"text": ""})
    text = server.request("GET", "/metrics")[2]
    assert re.search(r'edge_infer_requests_total\{method="POST",route="/v1/explain",status="200"\} [1-9]', text)
    assert re.search(r'edge_infer_requests_total\{method="POST",route="/v1/explain",status="422"\} [1-9]', text)
    assert not re.search(r'route="other"', text)
    assert any(re.search(r'"POST /v1/explain" 200 texts=1 ', line) for line in server.lines)


def test_explanations_over_the_concurrency_limit_get_503_at_once(seed_model_dir: Path):
    # Each explanation takes 3 s (test pause); one slot: a second one is refused while the first runs.
    srv = Server("--model", str(seed_model_dir), "--threads", "1", "--explain-concurrency", "1", pause=3.0)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(explain, srv, {"text": TINY_SENTENCES[0]})
            _wait_for(srv, "edge_infer_requests_in_flight 2")  # the explanation, and this /metrics request
            status, head, doc = explain(srv, {"text": TINY_SENTENCES[1]})
            assert not running.done()
            assert status == 503 and doc["error"]["code"] == "explain_busy" and head["retry-after"] == "1", doc
            status, _, doc = running.result(timeout=30)
            assert status == 200 and doc["method"] == "occlusion"
        status, _, doc = explain(srv, {"text": TINY_SENTENCES[1]})  # the slot is free again
        assert status == 200
    finally:
        srv.stop()


def test_a_timed_out_explanation_keeps_its_slot_until_it_ends(seed_model_dir: Path):
    # Each explanation takes 5 s (test pause), requests give up after 1 s: 504, and the slot stays taken.
    srv = Server("--model", str(seed_model_dir), "--threads", "1", "--timeout", "1", pause=5.0)
    try:
        status, _, doc = explain(srv, {"text": TINY_SENTENCES[0]})
        assert status == 504 and doc["error"]["code"] == "timeout", doc
        status, _, doc = explain(srv, {"text": TINY_SENTENCES[1]})
        assert status == 503 and doc["error"]["code"] == "explain_busy", doc
    finally:
        srv.stop()


def test_sigterm_lets_a_running_explanation_finish(seed_model_dir: Path):
    srv = Server("--model", str(seed_model_dir), "--threads", "1", pause=1.0)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(explain, srv, {"text": TINY_SENTENCES[2]})
            _wait_for(srv, "edge_infer_requests_in_flight 2")
            srv.proc.send_signal(signal.SIGTERM)
            status, _, doc = running.result(timeout=30)
        assert status == 200 and doc["label"] == "negative", doc
        assert srv.proc.wait(20) == 0
    finally:
        srv.stop()
