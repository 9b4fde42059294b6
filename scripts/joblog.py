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
