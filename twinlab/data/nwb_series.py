"""What an open NWB file holds, read for the session importer (:mod:`twinlab.data.nwb`).

* :class:`Series`: a ``TimeSeries`` read lazily (times in s; samples linearly interpolated at
  any times, fetched for that window only);
* :func:`pick_responses`, :func:`find_series`: the ROI responses, and the running-speed,
  pupil-size and pupil-position series, by type and name;
* :func:`neuron_columns`: the neuron table from the ROIs' ``PlaneSegmentation``;
* :func:`templates`: stimulus templates as luminance ``[n, height, width]`` in [0, 1] (8-bit
  divided by 255; colour by the Rec. 709 weights, :func:`twinlab.data.images.rgb_to_luminance`);
* :func:`table_columns`, :func:`source_tier`, :func:`diameter_units`: trial labels, tiers
  and units as the session format wants them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .images import rgb_to_luminance
from .sensorium import TIER_MAP
from .schema import TIERS

__all__ = ["Series", "objects_of", "path_of", "pick_responses", "find_series", "neuron_columns", "templates",
           "table_columns", "source_tier", "diameter_units"]

MASK_COLUMNS = ("image_mask", "pixel_mask", "voxel_mask")


def source_tier(value: str, where: str) -> str:
    v = str(value)
    if v in TIERS:
        return v
    if v in TIER_MAP:
        return TIER_MAP[v]
    raise InputError(f"{where}: tier {v!r} is not one of {', '.join(TIERS)}")


class Series:
    """A time series read lazily: times in s, samples fetched for a time window only."""

    def __init__(self, ts, path: Path, label: str):
        self.ts, self.label, self.file = ts, label, path
        n = ts.data.shape[0]
        if ts.timestamps is not None:
            times = np.asarray(ts.timestamps[:], dtype=np.float64)
            if len(times) != n:
                raise InputError(f"{path}: {label} has {n} samples but {len(times)} timestamps (mismatched lengths)")
        else:
            if not ts.rate:
                raise InputError(f"{path}: {label} has neither timestamps nor a rate")
            times = float(ts.starting_time or 0.0) + np.arange(n) / float(ts.rate)
        if n < 2:
            raise InputError(f"{path}: {label} has fewer than 2 samples")
        self.times = times
        self.dt = float(np.median(np.diff(times)))
        self.scale = float(getattr(ts, "conversion", 1.0) or 1.0)
        self.offset = float(getattr(ts, "offset", 0.0) or 0.0)

    def at(self, t: np.ndarray, where: str) -> np.ndarray:
        """Samples linearly interpolated at times ``t`` (``[len(t), ...]``), float32."""
        lo, hi = self.times[0] - self.dt / 2, self.times[-1] + self.dt / 2
        if t[0] < lo or t[-1] > hi:
            raise InputError(
                f"{self.file}: {self.label} covers {self.times[0]:.3f}-{self.times[-1]:.3f} s, but {where} "
                f"needs {t[0]:.3f}-{t[-1]:.3f} s (mismatched lengths)"
            )
        i1 = np.clip(np.searchsorted(self.times, t), 1, len(self.times) - 1)
        i0 = i1 - 1
        a, b = int(i0.min()), int(i1.max()) + 1
        block = np.asarray(self.ts.data[a:b], dtype=np.float64) * self.scale + self.offset
        w = np.clip((t - self.times[i0]) / (self.times[i1] - self.times[i0]), 0.0, 1.0)
        w = w.reshape((-1,) + (1,) * (block.ndim - 1))
        return (block[i0 - a] * (1 - w) + block[i1 - a] * w).astype(np.float32)


def objects_of(nwb, cls) -> list:
    return sorted((o for o in nwb.objects.values() if isinstance(o, cls)), key=lambda o: o.name)


def path_of(obj) -> str:
    parts = []
    while obj is not None and getattr(obj, "parent", None) is not None:
        parts.append(obj.name)
        obj = obj.parent
    return "/".join(reversed(parts))


def pick_responses(nwb, path: Path, name: str | None):
    from pynwb.ophys import RoiResponseSeries

    found = objects_of(nwb, RoiResponseSeries)
    if not found:
        raise InputError(f"{path}: no RoiResponseSeries (two-photon ROI responses) in the file")
    if name:
        match = [s for s in found if s.name == name or path_of(s) == name]
        if not match:
            raise InputError(f"{path}: no RoiResponseSeries named {name!r}; found {', '.join(path_of(s) for s in found)}")
        return match[0]
    for key in ("deconv", "event", "spike"):
        match = [s for s in found if key in s.name.lower()]
        if match:
            return match[0]
    return found[0]


def find_series(nwb, want: str):
    """The running-speed TimeSeries, the pupil-size TimeSeries, or the pupil-position SpatialSeries."""
    from pynwb import TimeSeries
    from pynwb.behavior import EyeTracking, PupilTracking, SpatialSeries
    from pynwb.image import ImageSeries, IndexSeries
    from pynwb.ophys import RoiResponseSeries

    plain = [
        o for o in objects_of(nwb, TimeSeries)
        if not isinstance(o, (RoiResponseSeries, SpatialSeries, ImageSeries, IndexSeries))
    ]
    if want == "running":
        match = [o for o in plain if "running" in o.name.lower()] or [o for o in plain if "speed" in o.name.lower()]
        return match[0] if match else None
    if want == "pupil":
        inside = [o for o in plain if isinstance(o.parent, PupilTracking)]
        named = [o for o in plain if "pupil" in o.name.lower()]
        for pool in (inside, named):
            for key in ("diameter", "radius", "area"):
                match = [o for o in pool if key in o.name.lower()]
                if match:
                    return match[0]
            if pool:
                return pool[0]
        return None
    spatial = objects_of(nwb, SpatialSeries)
    inside = [o for o in spatial if isinstance(o.parent, EyeTracking)]
    named = [o for o in spatial if "pupil" in o.name.lower() or "eye" in o.name.lower()]
    for pool in (inside, named):
        match = [o for o in pool if "pupil" in o.name.lower()] or pool
        if match:
            return match[0]
    return None


def neuron_columns(series, path: Path, negative_offset: np.ndarray | None) -> dict[str, np.ndarray]:
    rois = series.rois
    table = rois.table
    idx = np.asarray(rois.data[:], dtype=np.int64)
    n = series.data.shape[1] if len(series.data.shape) > 1 else 1
    if len(idx) != n:
        raise InputError(f"{path}: {path_of(series)} has {n} columns but {len(idx)} ROIs")
    cols: dict[str, np.ndarray] = {"unit_id": np.asarray(table.id[:], dtype=np.int64)[idx]}
    for name in table.colnames:
        if name in MASK_COLUMNS:
            continue
        try:
            values = np.asarray(table[name].data[:])
        except Exception:  # noqa: BLE001 - ragged or reference columns are not labels
            continue
        if values.ndim != 1 or len(values) != len(table):
            continue
        values = values[idx]
        if values.dtype.kind in "OSU":
            values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
        cols[name] = values
    if "area" not in cols:
        plane = getattr(table, "imaging_plane", None)
        location = getattr(plane, "location", None) if plane is not None else None
        cols["area"] = np.full(n, str(location) if location else "unknown")
    if "depth_um" not in cols and "depth" in cols:
        cols["depth_um"] = np.asarray(cols.pop("depth"), dtype=np.float64)
    if negative_offset is not None:
        cols["response_offset"] = negative_offset
    return cols


def templates(nwb, path: Path) -> dict[str, np.ndarray]:
    from pynwb.base import Images
    from pynwb.image import ImageSeries

    out = {}
    for name, obj in nwb.stimulus_template.items():
        if isinstance(obj, ImageSeries):
            data = np.asarray(obj.data[:])
        elif isinstance(obj, Images):
            order = [img.name for img in obj.order_of_images.data] if getattr(obj, "order_of_images", None) else sorted(obj.images)
            data = np.stack([np.asarray(obj.images[k].data[:]) for k in order])
        else:
            continue
        out[name] = rgb_to_luminance(data, f"{path}: stimulus_template/{name}")
    return out


def table_columns(table, skip: tuple[str, ...]) -> dict[str, np.ndarray]:
    cols = {}
    for name in table.colnames:
        if name in skip:
            continue
        try:
            values = np.asarray(table[name].data[:])
        except Exception:  # noqa: BLE001
            continue
        if values.ndim == 1 and len(values) == len(table):
            if values.dtype.kind in "OSU":
                values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
            cols[name] = values
    return cols


def diameter_units(series, kind: str) -> str:
    if series is None:
        return "none (not recorded)"
    unit = str(series.unit)
    if kind != "area":
        return unit
    base = unit[:-2] if unit.endswith("^2") else f"sqrt({unit})"
    return f"{base} (diameter of the disc of the tracked pupil area)"
