"""The native session store: write, open, validate, and its normalisation statistics.

In: a recording session as an ``xarray.Dataset`` following ``docs/session_format.md``
(dims ``frame``, ``neuron``, ``trial``, ``y``, ``x``, ``eye_axis``; ``frames [frame, y, x]``
luminance in [0, 1], ``responses [frame, neuron]`` >= 0, ``running_speed [frame]`` cm/s,
``pupil_diameter [frame]``, ``pupil_center [frame, eye_axis]``; trial and neuron tables as
coordinates; attributes), whole or as an iterator of per-trial pieces.
Out: one ``.zarr`` store (chunked along ``frame`` by the trial length, streamed trial by
trial) or ``.nc`` file (written from memory), atomically; :func:`open_session` gives it
back lazily, refusing stores that are incomplete or newer than this reader.

What :func:`write_session` derives itself (so producers need not): the frame coordinates
``trial_index``, ``frame_in_trial``, ``time_s`` (s from the trial onset); the trial
coordinates ``trial_start``, ``trial_frames`` and, where absent, ``repeat`` (the how-many-th
showing of that ``stimulus_id``); missing neuron-table columns (``area`` "unknown",
``depth_um`` NaN, ...); and the ``statistics`` attribute (per-neuron response moments and
behaviour moments over the train tier), computed once while writing.

This module gathers the format's public names; each part lives in its own module:
:mod:`~twinlab.data.schema` (names, defaults, units), :mod:`~twinlab.data.blocks` (trial
pieces), :mod:`~twinlab.data.stats` (statistics), :mod:`~twinlab.data.assemble` (the
assembler), :mod:`~twinlab.data.writer` (building and writing), :mod:`~twinlab.data.store`
(opening, validating, tables, statistics read back).
"""

from __future__ import annotations

from .blocks import TrialBlock
from .schema import (DEFAULT_ATTRS, DERIVED_FRAME_COORDS, EYE_AXIS, FORMAT_VERSION, FRAME_VARS, NEURON_DEFAULTS,
                     REQUIRED_ATTRS, TIERS, TRIAL_DERIVED, TRIAL_REQUIRED, VAR_UNITS)
from .store import (check_version, neuron_table, open_session, session_screen, session_statistics, session_trials,
                    trial_table, validate_session)
from .writer import concat_trials, session_dataset, write_session

__all__ = [
    "FORMAT_VERSION",
    "TIERS",
    "TrialBlock",
    "session_dataset",
    "write_session",
    "concat_trials",
    "open_session",
    "validate_session",
    "session_statistics",
    "session_trials",
    "trial_table",
    "neuron_table",
    "session_screen",
    "check_version",
    "FRAME_VARS",
    "TRIAL_REQUIRED",
    "TRIAL_DERIVED",
    "DERIVED_FRAME_COORDS",
    "NEURON_DEFAULTS",
    "REQUIRED_ATTRS",
    "DEFAULT_ATTRS",
    "VAR_UNITS",
    "EYE_AXIS",
]
