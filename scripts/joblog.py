"""The progress log of a GPU job script: timestamped lines on stdout, mirrored into a file.

The file is rewritten after every line, so a job stopped at the device's time limit still
returns its log. Shared by the scripts in this folder (``from joblog import JOB, say``).
"""

from __future__ import annotations

import time
from pathlib import Path


class JobLog:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.lines: list[str] = []
        self.file: Path | None = None

    def elapsed(self) -> float:
        """Seconds since the job started."""
        return time.perf_counter() - self.t0

    def say(self, msg: str) -> None:
        line = f"[{self.elapsed():6.1f} s] {msg}"
        self.lines.append(line)
        print(line, flush=True)
        self.dump()

    def dump(self, tail: str = "") -> None:
        """Write the log (and ``tail``, e.g. a traceback) to the file, if one is set."""
        if self.file is not None:
            self.file.write_text("\n".join(self.lines) + "\n" + tail)


JOB = JobLog()
say = JOB.say


def announce(device: str = "auto", **facts) -> bool:
    """Say torch's version, the device and ``facts`` (``budget="8 min"``), then check that zarr is
    there (the virtual mice are zarr stores; exit 2 if not). -> whether CUDA will be used."""
    import sys

    import torch

    cuda = torch.cuda.is_available() and device != "cpu"
    extra = "".join(f", {k.replace('_', ' ')} {v}" for k, v in facts.items())
    say(f"torch {torch.__version__}, {torch.cuda.get_device_name() if cuda else 'cpu'}, "
        f"python {sys.version.split()[0]}{extra}")
    try:
        import zarr  # noqa: F401
    except ImportError:
        say("zarr is not installed: carry the wheels of zarr and its dependencies (.whl; the virtual mice are zarr stores)")
        sys.exit(2)
    return cuda


def run_main(main) -> None:
    """``main()``; an exception's traceback goes to stderr and to the job log (if one is set), exit 1."""
    import sys
    import traceback

    try:
        main()
    except SystemExit:
        raise
    except Exception:
        traceback.print_exc()
        JOB.dump(traceback.format_exc())
        sys.exit(1)
