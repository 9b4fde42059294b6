"""Static-image recordings (one response per image presentation) into the session format.

In:

* images: a ``.npy`` file ``[n_images, height, width]`` or ``[n_images, height, width, 3]``
  (8-bit 0-255, or floats in [0, 1]), or a folder of image files (``.png``, ``.jpg``,
  ``.tif``; sorted by name);
* responses: a ``.npy`` file ``[n_images, repeats, neurons]``: one response per presentation
  (e.g. mean dF/F in the data set's response window), NaN for a repeat that was not shown;
* the visual angle the images spanned (``width_deg``, ``height_deg``) and the eye's distance
  to the monitor (``distance_cm``), which fix the :class:`~twinlab.geometry.Screen`.

Out: a session (:func:`read_images`) or store (:func:`import_images`): every presentation
is one trial of ``image_s`` seconds showing its image (colour to luminance by the Rec. 709
weights 0.2126 R + 0.7152 G + 0.0722 B), resampled to ``frame_size`` (default: the images'
own size) and holding its response on every frame; presentations run image by image, repeat
by repeat (``stimulus_id`` = ``image<i>``, ``repeat`` = the repeat index). Missing repeats
are left out and counted in the provenance. Tiers are drawn per image (all repeats of an
image share one tier, so the test tier has repeats for CC_norm) by
:func:`twinlab.data.splits.split_tiers` with ``split_seed``, unless ``tiers`` gives one per
image. Behaviour is not recorded (``absent_behavior``). ``response_lag_s`` and
``response_window_s`` record where after onset the data set measured each response;
:func:`response_frames` turns them into the frames of a trial that training scores and
evaluation averages (:mod:`twinlab.train.objective`, :mod:`twinlab.train.evaluate`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import xarray as xr

from ..errors import InputError
from ..geometry import Screen
from .splits import split_tiers
from .writer import concat_trials, session_dataset, write_session

__all__ = ["read_images", "iter_images", "import_images", "load_images", "rgb_to_luminance", "response_frames", "LUMA"]

LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 / sRGB weights of R, G, B in luminance
_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def rgb_to_luminance(images: np.ndarray, where: str = "images") -> np.ndarray:
    """``[n, h, w]`` or ``[n, h, w, 3|4]`` (uint8 0-255 or float 0-1) -> float32 luminance in [0, 1]."""
    images = np.asarray(images)
    eight_bit = images.dtype == np.uint8
    x = images.astype(np.float64)
    if x.ndim == 4:
        if x.shape[-1] not in (3, 4):
            raise InputError(f"{where}: colour images need 3 (RGB) or 4 (RGBA) channels, got {x.shape[-1]}")
        x = x[..., :3] @ np.asarray(LUMA)
    if x.ndim != 3:
        raise InputError(f"{where}: expected images [n, height, width] or [n, height, width, 3], got shape {images.shape}")
    if eight_bit:
        x = x / 255.0
    elif np.nanmin(x) < 0 or np.nanmax(x) > 1:
        raise InputError(f"{where}: float images must lie in [0, 1] (or be 8-bit), found {np.nanmin(x):.3g} to {np.nanmax(x):.3g}")
    if not np.isfinite(x).all():
        raise InputError(f"{where}: images contain NaN or inf")
    return x.astype(np.float32)


def response_frames(attrs: dict, trial_frames: int) -> slice | None:
    """The frames ``[lag, lag + window)`` of a presentation trial where its one recorded
    response applies (``response_lag_s``, ``response_window_s`` attributes at ``frame_rate_hz``;
    at least one frame, within the trial), or None for a session recorded frame by frame."""
    if "response_window_s" not in attrs:
        return None
    rate = float(attrs["frame_rate_hz"])
    start = min(max(int(round(float(attrs.get("response_lag_s", 0.0)) * rate)), 0), int(trial_frames) - 1)
    stop = min(max(start + int(round(float(attrs["response_window_s"]) * rate)), start + 1), int(trial_frames))
    return slice(start, stop)


def load_images(source: str | os.PathLike) -> np.ndarray:
    """Images from a ``.npy`` file or a folder of image files, as luminance ``[n, h, w]``."""
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        from skimage.io import imread  # optional: only a folder of image files needs scikit-image

        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES)
        if not files:
            raise InputError(f"{path}: no image files ({', '.join(_SUFFIXES)})")
        imgs = [imread(str(f)) for f in files]
        if len({im.shape for im in imgs}) != 1:
            raise InputError(f"{path}: the images differ in size ({sorted({im.shape for im in imgs})[:3]} ...)")
        return rgb_to_luminance(np.stack(imgs), str(path))
    if path.suffix != ".npy":
        raise InputError(f"{path}: images must be a .npy file or a folder of image files")
    return rgb_to_luminance(np.load(path, allow_pickle=False), str(path))


def _screen(width_deg: float, height_deg: float, distance_cm: float, frame_rate_hz: float, shape) -> Screen:
    """The flat monitor on which images spanning ``width_deg`` x ``height_deg`` (full angles,
    centred on the eye's perpendicular) are ``shape`` pixels."""
    return Screen.spanning(width_deg, height_deg, distance_cm, width_px=int(shape[1]), height_px=int(shape[0]),
                           frame_rate_hz=frame_rate_hz)


def _resize(images: np.ndarray, shape) -> np.ndarray:
    if images.shape[1:] == tuple(shape):
        return images
    from skimage.transform import resize

    return np.clip(resize(images, (len(images), *shape), order=1, anti_aliasing=True), 0, 1).astype(np.float32)


def iter_images(
    images: str | os.PathLike | np.ndarray,
    responses: str | os.PathLike | np.ndarray,
    *,
    width_deg: float,
    height_deg: float,
    distance_cm: float = 15.0,
    frame_rate_hz: float = 30.0,
    image_s: float = 0.5,
    frame_size: tuple[int, int] | None = None,
    response_lag_s: float = 0.0,
    response_window_s: float | None = None,
    tiers: Sequence[str] | None = None,
    split_seed: int = 0,
    mouse_id: str = "unknown",
    session_id: str = "images",
    area: str = "unknown",
) -> Iterator[xr.Dataset]:
    """The presentations as session pieces (see the module notes); the last piece carries the provenance."""
    src = str(images) if not isinstance(images, np.ndarray) else "array"
    imgs = load_images(images) if not isinstance(images, np.ndarray) else rgb_to_luminance(images)
    rsrc = str(responses) if not isinstance(responses, np.ndarray) else "array"
    if not isinstance(responses, np.ndarray):
        if not Path(responses).exists():
            raise InputError(f"{responses} does not exist")
        responses = np.load(responses, allow_pickle=False)
    resp = np.asarray(responses, dtype=np.float64)
    if resp.ndim != 3:
        raise InputError(f"{rsrc}: responses must be [n_images, repeats, neurons], got shape {resp.shape}")
    if resp.shape[0] != len(imgs):
        raise InputError(f"{rsrc}: responses are for {resp.shape[0]} images but {src} holds {len(imgs)}")
    if np.isinf(resp).any():
        raise InputError(f"{rsrc}: responses contain inf")
    shown = ~np.isnan(resp).any(axis=2)
    partial = np.isnan(resp).any(axis=2) & ~np.isnan(resp).all(axis=2)
    if partial.any():
        i, r = map(int, np.argwhere(partial)[0])
        raise InputError(f"{rsrc}: image {i} repeat {r} has NaN for some neurons only (NaN marks a whole missing repeat)")
    if not shown.any():
        raise InputError(f"{rsrc}: no responses (every repeat is NaN)")
    if not image_s > 0 or not frame_rate_hz > 0:
        raise InputError(f"image_s and frame_rate_hz must be positive, got {image_s} and {frame_rate_hz}")
    n_frames = max(1, int(round(image_s * frame_rate_hz)))
    shape = tuple(frame_size) if frame_size is not None else imgs.shape[1:]
    screen = _screen(width_deg, height_deg, distance_cm, frame_rate_hz, shape)
    imgs = _resize(imgs, shape)
    if tiers is None:
        per_image = split_tiers(len(imgs), split_seed)
        tier_source = f"seeded split over images (twinlab.data.splits.split_tiers, seed {split_seed})"
    else:
        per_image = np.asarray(tiers, dtype=str)
        if len(per_image) != len(imgs):
            raise InputError(f"tiers: {len(per_image)} given for {len(imgs)} images")
        tier_source = "given per image"
    # responses may be dF/F (negative): shift each neuron by its minimum, as twinlab keeps activity >= 0
    offset = np.maximum(-np.nanmin(resp, axis=(0, 1)), 0.0)
    window = image_s if response_window_s is None else response_window_s
    attrs = {"frame_rate_hz": frame_rate_hz, "screen": screen, "mouse_id": mouse_id, "session_id": session_id,
             "pupil_center_units": "none (not recorded)", "pupil_diameter_units": "none (not recorded)",
             "absent_behavior": json.dumps(["running_speed", "pupil_diameter", "pupil_center"]),
             "responses_per_presentation": "one response per presentation, held on every frame of its trial",
             "response_lag_s": float(response_lag_s), "response_window_s": float(window)}
    neurons = {"unit_id": np.arange(resp.shape[2]), "area": np.full(resp.shape[2], area), "response_offset": offset}
    zeros = np.zeros(n_frames, np.float32)
    for r in range(resp.shape[1]):
        for i in range(len(imgs)):
            if not shown[i, r]:
                continue
            yield session_dataset(
                frames=np.broadcast_to(imgs[i], (n_frames, *shape)),
                responses=np.broadcast_to((resp[i, r] + offset).astype(np.float32), (n_frames, resp.shape[2])),
                running_speed=zeros, pupil_diameter=zeros, pupil_center=np.zeros((n_frames, 2), np.float32),
                trials={"tier": [per_image[i]], "domain": ["natural_image"], "stimulus_id": [f"image{i}"],
                        "repeat": [r], "trial_frames": [n_frames]},
                neurons=neurons, attrs=attrs, frame_coords={"image_index": np.full(n_frames, i)}, canonical=False)
    provenance = {"source": "static-image recording", "images": src, "responses": rsrc,
                  "reader": "twinlab.data.images.read_images", "tiers_from": tier_source,
                  "presentations_kept": int(shown.sum()), "presentations_missing": int((~shown).sum()),
                  "settings": {"width_deg": width_deg, "height_deg": height_deg, "distance_cm": distance_cm,
                               "image_s": image_s, "frame_rate_hz": frame_rate_hz, "frame_size": list(shape),
                               "response_lag_s": response_lag_s, "response_window_s": window, "luma": LUMA}}
    yield xr.Dataset(attrs={"provenance": json.dumps(provenance)})


def read_images(images, responses, **kwargs) -> xr.Dataset:
    """A static-image recording as one in-memory session Dataset (see the module notes)."""
    return concat_trials(iter_images(images, responses, **kwargs), source="images")


def import_images(images, responses, out: str | os.PathLike, *, progress: bool = True, **kwargs) -> Path:
    """Write a static-image recording as a session store (atomic; nothing written on bad input)."""
    from ..storage import check_writable, output_format

    output_format(out)
    check_writable(out)
    return write_session(iter_images(images, responses, **kwargs), out, progress=progress)
