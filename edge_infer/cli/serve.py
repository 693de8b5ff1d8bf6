"""``edge-infer serve``: the classifier over HTTP/JSON (needs the ``serve`` extra)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from edge_infer import exit_codes
from edge_infer.cli.common import EXIT_CODES_HELP, app, err
from edge_infer.cli.options import ModelOption, model_path, threads_option


class LogFormat(str, Enum):
    text = "text"
    json = "json"


def _positive(value: int) -> int:
    if value < 1:
        raise typer.BadParameter("must be at least 1")
    return value


def _port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise typer.BadParameter("must be from 0 to 65535 (0: any free port)")
    return value


def _delay(value: float) -> float:
    if not 0.0 <= value <= 10_000.0:
        raise typer.BadParameter("must be from 0 to 10000 milliseconds")
    return value


def _optional_positive(value: int | None) -> int | None:
    return None if value is None else _positive(value)


def _header_bytes(value: int) -> int:
    if not 1024 <= value <= 1_048_576:
        raise typer.BadParameter("must be from 1024 to 1048576 bytes")
    return value


def _host_list(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(h.strip() for h in value.split(",") if h.strip())


def _hosts(value: str | None) -> str | None:
    hosts = _host_list(value)
    if hosts is not None and (not hosts or any(h != "*" and "*" in h and (h.count("*") > 1 or not h.startswith("*."))
                                               for h in hosts)):
        raise typer.BadParameter("give host names separated by commas, '*.example.com' patterns, or '*'")
    return value


def _seconds(value: float) -> float:
    if not 0.0 < value <= 86_400.0:
        raise typer.BadParameter("must be more than 0 and at most 86400 seconds")
    return value


@app.command(epilog=EXIT_CODES_HELP)
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", callback=_port, help="TCP port; 0 picks a free one (logged).")
                    ] = 8000,
    model: ModelOption = None,
    int8: Annotated[bool, typer.Option("--int8", help="Use the int8 (quantized) model.")] = False,
    threads: Annotated[int | None, typer.Option("--threads", metavar="N", callback=threads_option,
                                                help="ONNX Runtime intra-op threads per process, 1 to 256 "
                                                     "(default: one less than the CPUs, at least 1: the "
                                                     "event loop needs a core).")] = None,
    workers: Annotated[int, typer.Option("--workers", metavar="N", callback=_positive,
                                         help="Server processes, each loading the model.")] = 1,
    max_batch_delay: Annotated[float, typer.Option("--max-batch-delay", metavar="MS", callback=_delay,
                                                   help="How long a micro-batch waits for more requests; 0 "
                                                        "turns micro-batching off.")] = 2.0,
    max_batch_size: Annotated[int, typer.Option("--max-batch-size", metavar="TEXTS", callback=_positive,
                                                help="Most texts gathered into one micro-batch.")] = 256,
    max_queue: Annotated[int, typer.Option("--max-queue", metavar="N", callback=_positive,
                                           help="Requests waiting for a batch beyond which new ones get 503.")
                         ] = 1024,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", metavar="N", callback=_positive,
                                                help="Largest request body (413 beyond).")] = 1_048_576,
    max_texts: Annotated[int, typer.Option("--max-texts", metavar="N", callback=_positive,
                                           help="Most texts in one request (413 beyond).")] = 256,
    max_text_chars: Annotated[int, typer.Option("--max-text-chars", metavar="N", callback=_positive,
                                                help="Longest text, in characters (413 beyond).")] = 100_000,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", callback=_seconds,
                                           help="Time limit for an answer once the request is read, queue "
                                                "wait included (504 beyond).")] = 30.0,
    explain_max_tokens: Annotated[int, typer.Option("--explain-max-tokens", metavar="N", callback=_positive,
                                                    help="POST /v1/explain: most tokens the model reads of a "
                                                         "text to explain (413 beyond; the cost grows with "
                                                         "their square).")] = 256,
    explain_concurrency: Annotated[int, typer.Option("--explain-concurrency", metavar="N", callback=_positive,
                                                     help="POST /v1/explain: explanations run at once, each on "
                                                          "its own thread; more get 503 at once.")] = 1,
    graceful_timeout: Annotated[float, typer.Option("--graceful-timeout", metavar="SECONDS", callback=_seconds,
                                                    help="On SIGTERM/SIGINT, how long requests in flight may "
                                                         "take to finish.")] = 30.0,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="Log lines on stderr: text or json.")
                          ] = LogFormat.text,
    header_timeout: Annotated[float, typer.Option("--header-timeout", metavar="SECONDS", callback=_seconds,
                                                  help="A request head (request line and headers) must arrive "
                                                       "within this time (408 and close beyond); also closes "
                                                       "connections that send nothing.")] = 5.0,
    body_timeout: Annotated[float, typer.Option("--body-timeout", metavar="SECONDS", callback=_seconds,
                                                help="A request body must arrive within this time after its "
                                                     "head (408 beyond).")] = 10.0,
    keep_alive_timeout: Annotated[float, typer.Option("--keep-alive-timeout", metavar="SECONDS", callback=_seconds,
                                                      help="An idle connection is closed this long after its "
                                                           "last answer.")] = 5.0,
    max_header_bytes: Annotated[int, typer.Option("--max-header-bytes", metavar="N", callback=_header_bytes,
                                                  help="Largest request head, request line and headers "
                                                       "(431 beyond).")] = 16_384,
    max_connections: Annotated[int | None, typer.Option("--max-connections", metavar="N", callback=_optional_positive,
                                                        help="Most connections open at once per process; more "
                                                             "get 503 at once (default: 1000, lowered to fit "
                                                             "the file descriptor limit).")] = None,
    allowed_hosts: Annotated[str | None, typer.Option("--allowed-hosts", metavar="LIST", callback=_hosts,
                                                      help="Comma-separated Host header names answered (else "
                                                           "421); '*.example.com' patterns; '*' any (default: "
                                                           "the loopback names when --host is loopback, else "
                                                           "any).")] = None,
) -> None:
    """Serve the classifier over HTTP: POST /v1/predict, /v1/explain, GET /v1/info, /healthz, /readyz, /metrics,
    /openapi.json.

    The model is loaded and verified before the port is bound: a refused model exits with 3. SIGTERM or
    SIGINT stops it gracefully (requests in flight finish, new ones are refused; exit 0). See docs/serving.md.
    """
    from edge_infer.server import missing_extra

    missing = missing_extra()
    if missing:
        err(f"serve needs the serve extra ({', '.join(missing)} not installed): pip install \"edge-infer[serve]\"")
        raise typer.Exit(exit_codes.USAGE)

    from edge_infer.model_folder import ModelError
    from edge_infer.server import logs
    from edge_infer.server.model import load_model
    from edge_infer.server.settings import Settings

    path: Path | None = model_path(model)
    settings = Settings(host=host, port=port, model=None if path is None else str(path), int8=int8,
                        threads=threads, workers=workers, max_batch_delay_ms=max_batch_delay,
                        max_batch_size=max_batch_size, max_queue=max_queue, max_body_bytes=max_body_bytes,
                        max_texts=max_texts, max_text_chars=max_text_chars, timeout_s=timeout,
                        explain_max_tokens=explain_max_tokens, explain_concurrency=explain_concurrency,
                        graceful_timeout_s=graceful_timeout, log_format=log_format.value,
                        header_timeout_s=header_timeout, body_timeout_s=body_timeout,
                        keep_alive_timeout_s=keep_alive_timeout, max_header_bytes=max_header_bytes,
                        max_connections=max_connections, allowed_hosts=_host_list(allowed_hosts))
    try:
        loaded = load_model(settings)
    except ModelError as exc:
        err(str(exc))
        raise typer.Exit(exit_codes.MODEL) from None

    from edge_infer.server.run import bind, serve

    try:
        sock = bind(host, port)
    except OSError as exc:
        err(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        raise typer.Exit(exit_codes.USAGE) from None
    logs.setup(settings.log_format)
    with sock:
        serve(loaded, settings, sock)
