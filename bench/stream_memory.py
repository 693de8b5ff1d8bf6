"""Peak memory of ``edge-infer predict --lines -`` on a long stream (issue 13: constant memory).

    python bench/stream_memory.py --lines 1000000

Pipes N short review lines into the CLI (default model, jsonl output drained as it comes), then prints
the lines sent, results read, bytes, exit code, the child's peak RSS and the wall time.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

WORDS = ("a great film", "an awful, boring waste of time", "the cast was superb but the plot thin", "loved it!")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    args = p.parse_args()
    cli = shutil.which("edge-infer") or str(Path(sys.executable).with_name("edge-infer"))
    started = time.time()
    proc = subprocess.Popen([cli, "predict", "--lines", "--format", "jsonl", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    results = [0]

    def drain() -> None:
        assert proc.stdout is not None
        for _ in proc.stdout:
            results[0] += 1

    reader = threading.Thread(target=drain)
    reader.start()
    chunk = "".join(f"{WORDS[i % len(WORDS)]} {i}\n" for i in range(10_000)).encode()
    sent = 0
    assert proc.stdin is not None
    for _ in range(args.lines // 10_000):
        proc.stdin.write(chunk)
        sent += len(chunk)
    proc.stdin.close()
    proc.wait()
    reader.join()
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"lines {args.lines // 10_000 * 10_000}, results {results[0]}, {sent / 1e6:.0f} MB, exit {proc.returncode}, "
          f"peak RSS {peak_mib:.0f} MiB, {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
