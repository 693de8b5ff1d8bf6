"""Run one command and report, as JSON on stdout, seconds to its first stdout line and its peak RSS.

The benchmark starts this small process instead of the command itself: on Linux a child inherits
its parent's peak RSS until it execs, so children of the (1 GB) benchmark process would all report
at least 1 GB. This launcher's own footprint (~10 MB) is the floor instead.

    python bench/launch.py COMMAND [ARG...]
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    command = sys.argv[1:]
    read_end, write_end = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.dup2(write_end, 1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(read_end)
        os.execv(command[0], command)
    os.close(write_end)
    with os.fdopen(read_end) as stdout:
        first = stdout.readline()
        seconds = time.perf_counter() - start
        stdout.read()
    _, status, usage = os.wait4(pid, 0)
    json.dump({"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "first_line": first.strip(),
               "exit_code": os.waitstatus_to_exitcode(status)}, sys.stdout)


if __name__ == "__main__":
    main()
