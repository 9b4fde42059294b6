"""Where twinlab finds real data that it does not ship.

``shared_data()`` is the folder of real recordings and media (``sensorium2023/``,
``natural_videos/`` ...): ``$TWINLAB_DATA`` if set, else ``../shared/data`` beside the
checkout. Callers treat a missing folder as "not available here" (tests skip, defaults fall
back to shipped content), never as an error of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_data"]


def shared_data(*parts: str) -> Path:
    """Path inside the real-data folder (which may not exist on this machine)."""
    env = os.environ.get("TWINLAB_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return root.joinpath(*parts)
