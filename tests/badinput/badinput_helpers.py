"""Helpers of the bad-input suite: run ``twinlab`` in-process and require a clean refusal."""

from __future__ import annotations

import re
import sys

from click.testing import CliRunner

from twinlab.cli import main

TINY_TRAIN = ["epochs=1", "iterations=4", "clip_frames=10", "burn_in=2", "batch_size=2", "validate_every=0",
              "checkpoint_every=2", "log_every=2"]


def train_args(*settings: str) -> list[str]:
    """``--config small --set ...`` of the tiny run (plus ``settings``), quiet, no evaluation."""
    sets = [a for s in (*TINY_TRAIN, *settings) for a in ("--set", s)]
    return ["--config", "small", *sets, "--quiet", "--no-eval"]


PROGRESS = re.compile(r"^\S[^:]*: +\d+%\|")  # a tqdm progress bar ("predicting:   0%|   | 0/1 ...")


def cli(*args) -> tuple[int, list[str]]:
    """Run ``twinlab ARGS`` in-process: ``(exit code, non-empty stderr lines)``, progress bars
    left out (a command may start work, with its bar, before it meets the bad value)."""
    res = CliRunner().invoke(main, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback is a failure of the suite, shown as such
    return res.exit_code, [line for line in res.stderr.splitlines() if line.strip() and not PROGRESS.match(line)]


def assert_refused(args, *needles: str) -> str:
    """``twinlab ARGS`` exits 2 with exactly one ``Error:`` line holding every needle; -> the line."""
    code, lines = cli(*args)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def twinlab_command() -> list[str]:
    return [sys.executable, "-m", "twinlab"]
