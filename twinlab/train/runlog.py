"""What a run writes as it goes: ``train.log``, ``history.csv``, the progress bar, JSON files.

In: the run folder (``None`` on processes other than rank 0: they log nothing), the step
count and the first step (a resumed run trims ``history.csv`` past its checkpoint). Out:
:class:`RunLog` (``info`` lines, ``row`` history rows with the columns :attr:`RunLog.FIELDS`
plus an objective's own), :func:`write_json` (atomic) and :func:`plain` (NumPy scalars and
non-finite numbers made JSON-safe).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..storage import atomic_output

__all__ = ["RunLog", "write_json", "plain"]


def write_json(path: Path, value: Any) -> None:
    """``value`` as indented JSON at ``path``, atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, allow_nan=True) + "\n")


def plain(v: Any) -> Any:
    """``v`` with dict keys as strings, tuples as lists, NumPy scalars as Python ones, NaN/inf as None."""
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return float(v) if math.isfinite(float(v)) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


class RunLog:
    """train.log + history.csv (rank 0) and the progress shown on stderr.

    ``extra_fields``: more history columns (an objective's loss parts, say), after :attr:`FIELDS`.
    """

    FIELDS = ("step", "epoch", "kind", "loss", "lr", "clips_per_s", "gpu_wait", "data_wait", "val_loss",
              "val_correlation", "seconds")

    def __init__(self, out: Path | None, total: int, start: int, progress: bool, extra_fields: Sequence[str] = ()):
        self.out = out
        self.fields = self.FIELDS + tuple(extra_fields)
        self.logger = logging.getLogger(f"twinlab.train.run{id(self)}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.handlers: list[logging.Handler] = []
        if out is not None:
            fh = logging.FileHandler(out / "train.log")
            fh.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
            self._add(fh)
        tty = progress and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        if progress and not tty:
            sh = logging.StreamHandler(sys.stderr)
            sh.setFormatter(logging.Formatter("[twinlab train] %(message)s"))
            self._add(sh)
        self.bar = tqdm(total=total, initial=start, unit="step", desc="training", disable=not tty, dynamic_ncols=True)
        self.history = out / "history.csv" if out is not None else None
        if self.history is not None:
            self._trim(start)

    def _add(self, handler: logging.Handler) -> None:
        self.logger.addHandler(handler)
        self.handlers.append(handler)

    def _trim(self, start: int) -> None:
        """On resume, drop history rows past the checkpoint (they will be produced again)."""
        rows = []
        if self.history.is_file():
            with open(self.history, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start]
        with atomic_output(self.history) as tmp:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
                w.writeheader()
                w.writerows(rows)

    def info(self, message: str) -> None:
        self.logger.info(message)
        if self.bar.disable is False:
            self.bar.write(message, file=sys.stderr)

    def row(self, **values) -> None:
        if self.history is not None:
            with open(self.history, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fields).writerow({k: values.get(k, "") for k in self.fields})

    def close(self) -> None:
        self.bar.close()
        for h in self.handlers:
            self.logger.removeHandler(h)
            h.close()
