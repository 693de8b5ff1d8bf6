"""What ``python -m train`` and ``python -m train pretrain`` share: one-line argparse errors and the exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from edge_infer import exit_codes
from train.checkpoint import CheckpointError
from train.data import DataError
from train.outdir import OutputError
from train.presets import SettingsError


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(exit_codes.USAGE)


def fail(code: int, message: str) -> int:
    """Print ``message`` as one ``error:`` line on stderr and return ``code``."""
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return code


def run_stage(settings: Any, stage: Callable[[], Any]) -> tuple[int, Any]:
    """Check ``settings``, then run ``stage`` with the shared exit codes: (code, its result or None)."""
    try:
        settings.check()
    except SettingsError as exc:
        return fail(exit_codes.USAGE, str(exc)), None
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return exit_codes.OK, stage()
    except (SettingsError, OutputError, DataError, CheckpointError) as exc:
        return fail(exit_codes.USAGE, str(exc)), None
    except KeyboardInterrupt:
        return fail(exit_codes.INTERRUPTED, "interrupted; run the same command again to resume from the last "
                                            "finished epoch"), None
    except Exception as exc:  # a bug: one line, never a traceback
        return fail(exit_codes.INTERNAL, f"unexpected {type(exc).__name__}: {exc}"), None
