"""Reader for the Sensorium 2023 dynamic dataset folder, into the native session format.

In: one mouse's unzipped folder::

    DIR/data/videos/<i>.npy        [36, 64, T]  (H, W, T), 0-255, NaN-padded past the trial's end
    DIR/data/responses/<i>.npy     [N, T]       deconvolved calcium, NaN where withheld
    DIR/data/behavior/<i>.npy      [2, T]       pupil dilation, treadmill speed (cm/s)
    DIR/data/pupil_center/<i>.npy  [2, T]       pupil centre x, y (eye-camera pixels)
    DIR/meta/trials/tiers.npy      [n_trials]   train, oracle, live_test_*, final_test_*, none
    DIR/meta/trials/*.npy          further per-trial labels (trial_idx, video_ids, ...), optional
    DIR/meta/neurons/*.npy         unit_ids, area, layer, animal_ids, cell_motor_coordinates
                                   [N, 3] (x, y, depth in um), further labels; all optional

Out: session trials (``iter_sensorium``), a whole in-memory session (``read_sensorium``) or
a store (``import_sensorium``), at 30 Hz on the paper's monitor (``Screen()``).

Choices:

* Tiers: ``train`` -> train, ``oracle`` -> validation (the repeated clips with released
  responses, as the Sensorium baselines use them), ``live_test_*`` and ``final_test_*`` ->
  test, anything else -> none. The original name is kept in the trial coordinate
  ``source_tier``; the file number in ``source_trial``.
* Trial order: by ``meta/trials/trial_idx.npy`` when present (the recording order), else by
  file number. ``stimulus_id`` is ``meta/trials/video_ids.npy`` when present, else a hash
  of the video's pixels, so repeats of one clip share an id and ``repeat`` counts them.
* ``domain``: ``natural_movie`` for the main tiers; ``unknown`` for ``*_bonus`` trials (the
  out-of-domain stimuli, whose family the folder does not record).
* Videos are divided by 255 (luminance in [0, 1]); trailing all-NaN frames (padding of
  shorter trials) are cut from every array of that trial. Responses below zero (rounding
  noise of the deconvolution, ~1e-8) are set to 0.
* Gaps of NaN in the behaviour and pupil centre of up to 10 frames are interpolated;
  trials with longer gaps, NaN in the video or responses, or withheld (all-NaN) responses
  are dropped and counted in one log line. A behaviour or pupil channel that is NaN in every
  frame of a train/validation/test trial is an error naming the file (``drop_bad_trials``
  drops such trials instead).
* Label files stored as pickled objects are refused unless ``allow_pickle`` (unpickling
  runs code from the file); data arrays are never unpickled.
* Missing neuron files: ``area`` -> ``area`` argument (default "unknown"); ``layer`` -> "";
  coordinates -> NaN; ``unit_ids`` -> 0..N-1; ``animal_ids`` -> the folder name as mouse id.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import xarray as xr

from ..errors import InputError
from ..geometry import Screen
from .cleaning import MAX_GAP_FRAMES, DropLog, clean_trial
from .schema import TRIAL_DERIVED, TRIAL_REQUIRED
from .writer import concat_trials, session_dataset, write_session

__all__ = ["TIER_MAP", "read_sensorium", "iter_sensorium", "import_sensorium", "scan_sensorium"]

TIER_MAP = {
    "train": "train",
    "oracle": "validation",
    "validation": "validation",
    "live_test_main": "test",
    "live_test_bonus": "test",
    "final_test_main": "test",
    "final_test_bonus": "test",
    "test": "test",
}
DATA_DIRS = ("videos", "responses", "behavior", "pupil_center")
BEHAVIOR_CHANNELS = ("pupil dilation", "treadmill speed")
PUPIL_CHANNELS = ("x", "y")
FRAME_RATE_HZ = 30.0


@dataclass
class SensoriumScan:
    """What a cheap pass over the folder learned: shapes, labels, the trials to import."""

    root: Path
    order: np.ndarray  # file numbers in recording order
    tiers_raw: np.ndarray
    trial_labels: dict[str, np.ndarray]
    neurons: dict[str, np.ndarray]
    mouse_id: str
    lengths: dict[int, int] = field(default_factory=dict)
    skip: dict[int, str] = field(default_factory=dict)  # file number -> reason to drop
    n_neurons: int = 0
    image_shape: tuple[int, int] = (0, 0)


def _load(path: Path, mmap: bool = False, allow_pickle: bool = False) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: missing file")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise InputError(f"{path}: not a readable .npy file ({e})") from None
        if not allow_pickle:
            # unpickling runs code from the file: only for folders the user trusts
            raise InputError(
                f"{path}: stored as pickled Python objects; pass allow_pickle=True (--allow-pickle) if you trust it"
            ) from None
        return np.load(path, allow_pickle=True)
    except Exception as e:  # noqa: BLE001
        msg = " ".join(str(e).split())[:160]
        raise InputError(f"{path}: not a readable .npy file ({type(e).__name__}: {msg})") from None


def scan_sensorium(
    root: str | os.PathLike, *, area: str = "unknown", drop_bad_trials: bool = False, allow_pickle: bool = False
) -> SensoriumScan:
    """Check a Sensorium 2023 folder without reading videos or responses.

    Raises a one-line InputError naming the file for: a missing folder or tier file, a
    trial whose files are missing or disagree in length, neuron files of the wrong length,
    and (unless ``drop_bad_trials``) a behaviour or pupil channel that is all NaN.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    for sub in DATA_DIRS:
        if not (root / "data" / sub).is_dir():
            raise InputError(f"{root / 'data' / sub}: missing folder (not a Sensorium 2023 dynamic dataset)")
    tiers_path = root / "meta" / "trials" / "tiers.npy"
    if not tiers_path.is_file():
        raise InputError(f"{tiers_path}: missing tier file (meta/trials/tiers.npy)")
    tiers_raw = np.asarray(_load(tiers_path, allow_pickle=allow_pickle)).astype(str).reshape(-1)
    n_trials = len(tiers_raw)
    if n_trials == 0:
        raise InputError(f"{tiers_path}: no trials")

    trial_labels: dict[str, np.ndarray] = {}
    for f in sorted((root / "meta" / "trials").glob("*.npy")):
        if f.stem == "tiers":
            continue
        values = np.asarray(_load(f, allow_pickle=allow_pickle))
        if values.ndim != 1 or len(values) != n_trials:
            continue  # not a per-trial label (e.g. a 2-D table); kept out
        trial_labels[f.stem] = values
    order = np.arange(n_trials)
    if "trial_idx" in trial_labels:
        order = np.argsort(np.asarray(trial_labels["trial_idx"], dtype=np.int64), kind="stable")

    neurons, mouse_id = _neuron_meta(root, area, allow_pickle)
    scan = SensoriumScan(root, order, tiers_raw, trial_labels, neurons, mouse_id)
    scan.n_neurons = len(neurons["unit_id"]) if "unit_id" in neurons else -1

    for i in order:
        i = int(i)
        paths = {sub: root / "data" / sub / f"{i}.npy" for sub in DATA_DIRS}
        arrays = {sub: _load(p, mmap=True) for sub, p in paths.items()}
        v, r, b, p = (arrays[s] for s in DATA_DIRS)
        if v.ndim != 3:
            raise InputError(f"{paths['videos']}: expected [height, width, frames], got shape {v.shape}")
        t = v.shape[2]
        for sub, arr, want in (("responses", r, None), ("behavior", b, 2), ("pupil_center", p, 2)):
            if arr.ndim != 2 or (want is not None and arr.shape[0] != want):
                raise InputError(f"{paths[sub]}: expected [{want or 'neurons'}, frames], got shape {arr.shape}")
            if arr.shape[1] != t:
                raise InputError(
                    f"{paths[sub]}: {arr.shape[1]} frames, but {paths['videos']} has {t} (mismatched lengths)"
                )
        if scan.n_neurons < 0:
            scan.n_neurons = r.shape[0]
        if r.shape[0] != scan.n_neurons:
            raise InputError(f"{paths['responses']}: {r.shape[0]} neurons, but the neuron table has {scan.n_neurons}")
        if scan.image_shape == (0, 0):
            scan.image_shape = v.shape[:2]
        elif v.shape[:2] != scan.image_shape:
            raise InputError(f"{paths['videos']}: {v.shape[0]} x {v.shape[1]} px, other trials {scan.image_shape}")
        scan.lengths[i] = t
        tier = TIER_MAP.get(tiers_raw[i], "none")
        # behaviour and pupil are small: read now, so a dead channel fails before any writing
        for sub, names in (("behavior", BEHAVIOR_CHANNELS), ("pupil_center", PUPIL_CHANNELS)):
            dead = np.isnan(np.asarray(arrays[sub], dtype=np.float64)).all(axis=1)
            if dead.any():
                c = int(np.flatnonzero(dead)[0])
                what = f"channel {c} ({names[c]}) is all NaN"
                if tier == "none" or drop_bad_trials:
                    scan.skip.setdefault(i, f"{sub} {names[c]} all NaN")
                else:
                    raise InputError(f"{paths[sub]}: {what}")
    if scan.n_neurons <= 0:
        raise InputError(f"{root}: no neurons")
    if "unit_id" not in neurons:
        neurons["unit_id"] = np.arange(scan.n_neurons)
    for name, values in neurons.items():
        if len(values) != scan.n_neurons:
            raise InputError(
                f"{root / 'meta' / 'neurons'}: '{name}' has {len(values)} entries but responses have {scan.n_neurons} neurons"
            )
    return scan


def _neuron_meta(root: Path, area: str, allow_pickle: bool) -> tuple[dict[str, np.ndarray], str]:
    folder = root / "meta" / "neurons"
    cols: dict[str, np.ndarray] = {}
    mouse_id = root.name
    files = {f.stem: f for f in sorted(folder.glob("*.npy"))} if folder.is_dir() else {}
    n = None
    if "unit_ids" in files:
        cols["unit_id"] = np.asarray(_load(files.pop("unit_ids"), allow_pickle=allow_pickle)).reshape(-1).astype(np.int64)
        n = len(cols["unit_id"])
    if "area" in files:
        cols["area"] = np.asarray(_load(files.pop("area"), allow_pickle=allow_pickle)).astype(str).reshape(-1)
    if "layer" in files:
        cols["layer"] = np.asarray(_load(files.pop("layer"), allow_pickle=allow_pickle)).astype(str).reshape(-1)
    if "animal_ids" in files:
        f = files.pop("animal_ids")
        ids = np.unique(np.asarray(_load(f, allow_pickle=allow_pickle)).astype(str))
        if len(ids) != 1:
            raise InputError(f"{f}: {len(ids)} animals in one folder; a session is one mouse")
        mouse_id = str(ids[0])
    if "cell_motor_coordinates" in files:
        f = files.pop("cell_motor_coordinates")
        xyz = np.asarray(_load(f, allow_pickle=allow_pickle), dtype=np.float64)
        if xyz.ndim != 2 or xyz.shape[1] != 3:
            raise InputError(f"{f}: expected [neurons, 3] (x, y, depth in um), got shape {xyz.shape}")
        cols["cortex_x_um"], cols["cortex_y_um"], cols["depth_um"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    for stem, f in files.items():
        values = np.asarray(_load(f, allow_pickle=allow_pickle))
        if values.ndim == 1:
            cols[stem] = values.astype(str) if values.dtype.kind in "OUS" else values
    if "area" not in cols and n is not None:
        cols["area"] = np.full(n, area)
    return cols, mouse_id


def iter_sensorium(
    root: str | os.PathLike,
    *,
    area: str = "unknown",
    max_gap: int = MAX_GAP_FRAMES,
    drop_bad_trials: bool = False,
    screen: Screen | None = None,
    allow_pickle: bool = False,
) -> Iterator[xr.Dataset]:
    """The folder's trials, one session piece at a time (for :func:`~twinlab.data.write_session`).

    The last piece carries no frames, only the final provenance (with the drop counts).
    """
    if max_gap < 0:
        raise InputError(f"max_gap must be >= 0, got {max_gap}")
    scan = scan_sensorium(root, area=area, drop_bad_trials=drop_bad_trials, allow_pickle=allow_pickle)
    root = scan.root
    screen = screen or Screen(frame_rate_hz=FRAME_RATE_HZ)
    log = DropLog(f"sensorium {root}")
    neurons = dict(scan.neurons)
    if "area" not in neurons:
        neurons["area"] = np.full(scan.n_neurons, area)
    provenance = {
        "source": "Sensorium 2023 dynamic dataset folder",
        "path": str(root.resolve()),
        "reader": "twinlab.data.read_sensorium",
        "settings": {"max_gap_frames": max_gap, "drop_bad_trials": drop_bad_trials, "area_default": area},
        "tier_map": TIER_MAP,
    }
    attrs = {
        "frame_rate_hz": FRAME_RATE_HZ,
        "screen": screen,
        "mouse_id": scan.mouse_id,
        "session_id": root.name,
        "pupil_center_units": "eye-camera pixels",
        "pupil_diameter_units": "eye-camera pixels (Sensorium 'pupil dilation')",
    }
    for i in scan.order:
        i = int(i)
        raw_tier = str(scan.tiers_raw[i])
        if i in scan.skip:
            log.drop(scan.skip[i])
            continue
        piece = _trial(scan, i, raw_tier, neurons, attrs, max_gap, log)
        if piece is not None:
            log.keep()
            yield piece
    log.log()
    provenance.update(log.as_dict())
    yield xr.Dataset(attrs={"provenance": json.dumps(provenance)})


def _trial(scan: SensoriumScan, i: int, raw_tier: str, neurons, attrs, max_gap: int, log: DropLog) -> xr.Dataset | None:
    root = scan.root
    paths = {sub: root / "data" / sub / f"{i}.npy" for sub in DATA_DIRS}
    video = np.asarray(_load(paths["videos"]), dtype=np.float32)
    finite = np.isfinite(video).reshape(-1, video.shape[2]).any(axis=0)
    if not finite.any():
        log.drop("empty video")
        return None
    t = int(np.flatnonzero(finite)[-1]) + 1  # cut the NaN padding past the trial's end
    video = video[:, :, :t]
    lo, hi = np.nanmin(video), np.nanmax(video)
    if lo < 0 or hi > 255:
        raise InputError(f"{paths['videos']}: values {lo:.3g} to {hi:.3g} outside 0-255")
    responses = np.asarray(_load(paths["responses"]), dtype=np.float32)[:, :t]
    if np.isnan(responses).all():
        log.drop("responses withheld (all NaN)")
        return None
    behavior = np.asarray(_load(paths["behavior"]), dtype=np.float32)[:, :t]
    pupil = np.asarray(_load(paths["pupil_center"]), dtype=np.float32)[:, :t]
    arrays = {
        "frames": np.moveaxis(video, 2, 0) / np.float32(255.0),
        "responses": responses.T,
        "pupil_diameter": behavior[0],
        "running_speed": behavior[1],
        "pupil_center": pupil.T,
    }
    arrays, reason = clean_trial(arrays, max_gap=max_gap)
    if reason is not None:
        log.drop(reason)
        return None
    arrays["responses"] = np.maximum(arrays["responses"], 0)
    tier = TIER_MAP.get(raw_tier, "none")
    if "video_ids" in scan.trial_labels:
        stimulus_id = str(scan.trial_labels["video_ids"][i])
    else:
        stimulus_id = hashlib.sha1(np.ascontiguousarray(video).tobytes()).hexdigest()[:12]
    trials: dict[str, Any] = {
        "tier": [tier],
        "domain": ["unknown" if raw_tier.endswith("_bonus") else "natural_movie"],
        "stimulus_id": [stimulus_id],
        "trial_frames": [t],
        "source_tier": [raw_tier],
        "source_trial": [i],
    }
    for name, values in scan.trial_labels.items():
        if name in TRIAL_REQUIRED + TRIAL_DERIVED or name in trials:
            continue
        v = values[i]
        trials[name] = [str(v) if np.asarray(v).dtype.kind in "OUS" else v]
    return session_dataset(
        frames=arrays["frames"],
        responses=arrays["responses"],
        running_speed=arrays["running_speed"],
        pupil_diameter=arrays["pupil_diameter"],
        pupil_center=arrays["pupil_center"],
        trials=trials,
        neurons=neurons,
        attrs=attrs,
        canonical=False,
    )


def read_sensorium(root: str | os.PathLike, **kwargs) -> xr.Dataset:
    """A whole Sensorium 2023 folder as one in-memory session Dataset (see module notes).

    For folders larger than memory use :func:`import_sensorium`, which streams.
    """
    return concat_trials(iter_sensorium(root, **kwargs), source=f"sensorium {root}")


def import_sensorium(root: str | os.PathLike, out: str | os.PathLike, *, progress: bool = True, **kwargs) -> Path:
    """Convert a Sensorium 2023 folder into a session store, one trial in memory at a time.

    The folder is checked first (no output is created if it is unusable) and never modified.
    """
    from ..storage import check_writable, output_format

    output_format(out)
    check_writable(out)
    return write_session(iter_sensorium(root, **kwargs), out, progress=progress)
