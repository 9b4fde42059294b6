"""Recording sessions: the native store, readers for published formats, and the clip loader.

The session format (``docs/session_format.md``): one ``.zarr`` store (or ``.nc`` file) per
recording, an ``xarray.Dataset`` with ``frames [frame, y, x]`` (luminance in [0, 1]),
``responses [frame, neuron]``, ``running_speed``, ``pupil_diameter`` ``[frame]``,
``pupil_center [frame, eye_axis]``, a trial table (tier, domain, stimulus_id, repeat), a
neuron table (unit_id, area, depth_um, ...) and attributes (frame rate, screen, provenance,
format_version, statistics).

>>> write_session(ds_or_iterator_of_trials, "mouse1.zarr")     # checked, chunked, atomic
>>> ds = open_session("mouse1.zarr")                           # lazy
>>> import_sensorium("dynamic29156-...", "mouseA.zarr")        # Sensorium 2023 folder
>>> import_nwb("session.nwb", "session.zarr")                  # NWB two-photon file (parameter tables too)
>>> export_nwb("session.zarr", "session.nwb")                  # and back, unchanged
>>> import_images("scenes.npy", "resp.npy", "s.zarr", width_deg=120, height_deg=68)  # static images
>>> clips = ClipDataset(["mouseA.zarr", "mouse1.zarr"], clip_frames=70, tier="train")
>>> loader = DataLoader(clips, batch_sampler=SessionBatchSampler(clips, 5), num_workers=4)

The readers import pynwb (NWB) and torch (clips) only when used.
"""

from __future__ import annotations

from .cleaning import MAX_GAP_FRAMES, fill_gaps
from .session import (
    FORMAT_VERSION,
    TIERS,
    TrialBlock,
    concat_trials,
    neuron_table,
    open_session,
    session_dataset,
    session_screen,
    session_statistics,
    session_trials,
    trial_table,
    validate_session,
    write_session,
)

__all__ = [
    "FORMAT_VERSION",
    "TIERS",
    "TrialBlock",
    "MAX_GAP_FRAMES",
    "ClipDataset",
    "SessionBatchSampler",
    "concat_trials",
    "fill_gaps",
    "export_nwb",
    "import_images",
    "import_nwb",
    "import_sensorium",
    "iter_nwb",
    "iter_sensorium",
    "neuron_table",
    "open_session",
    "read_images",
    "read_nwb",
    "read_sensorium",
    "session_dataset",
    "session_screen",
    "session_statistics",
    "session_stimulus",
    "session_summary",
    "session_trials",
    "summarize",
    "trial_table",
    "validate_session",
    "write_session",
]

_LAZY = {
    "ClipDataset": "clips",
    "SessionBatchSampler": "clips",
    "read_sensorium": "sensorium",
    "iter_sensorium": "sensorium",
    "import_sensorium": "sensorium",
    "read_nwb": "nwb",
    "iter_nwb": "nwb",
    "import_nwb": "nwb",
    "export_nwb": "nwb_export",
    "read_images": "images",
    "import_images": "images",
    "session_stimulus": "stimulus_view",
    "session_summary": "info",
    "summarize": "info",
}


def __getattr__(name: str):
    # torch and the readers load on first use: `import twinlab.data` stays light
    if name in _LAZY:
        import importlib  # for the lazy attributes only

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
