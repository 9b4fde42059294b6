"""Natural images (static, with gray blanks) and natural movies (real clips, or camera motion
over real photographs).

In: :class:`NaturalImagesSpec` / :class:`NaturalMoviesSpec`. Their ``source`` is
``"photos"`` (the scikit-image photographs), ``"videos"`` (the real clips in
``shared_data("natural_videos")``), ``"auto"`` (the clips where that folder exists, else the
photos) or a path to an image, a video or a folder of them (:mod:`twinlab.stimuli._media`
says how files are read, converted to luminance with Rec. 709 luma weights, and made to
cover the render grid: aspect ratio kept, scaled to cover, centre-cropped).

Out: Stimulus ``[frame, y, x]``, luminance in [0, 1].

``natural_images`` conditions: ``image_id`` (index into the source's list; -1 on blanks),
``image_name``, ``repeat``, ``blank`` (True on the gray frames after each image). Every
image of the source (or ``n_images`` of them, drawn once) is shown once per repeat, in a
new shuffled order every repeat.

``natural_movies`` plays the source as one endless reel cut into trials of
``clip_duration_s``: the clips (or stills) one after another, in a new shuffled order every
pass through the source (``shuffle``; else in the source's order), a trial spanning a clip's end simply continuing with the next clip (one segment per
piece). Conditions: ``clip_name``, ``clip_id``, ``clip_kind`` ("video" / "still"),
``clip_start_frame`` (output frame of the showing where the piece starts), ``clip_frames``
(output frames of the whole showing), ``path_seed``, and per frame ``source_frame`` (the
clip's frame on screen, -1 for stills), ``camera_x_deg`` / ``camera_y_deg`` / ``zoom``
and ``pan_speed_dps`` (the drift speed of the fixation the frame belongs to; NaN for clips)
and ``saccade`` (True on the first frame after a jump).

Clips are resampled in time by sample and hold: output frame ``k`` shows the clip frame on
screen at ``k / frame_rate`` (a 15 fps clip at 30 Hz shows each frame twice; variable-rate
clips follow their timestamps).

A still becomes a movie of ``photo_duration_s`` by a camera roaming over it. The picture is
scaled to ``scene_scale`` times the size that would just cover the screen, so the view
(the render grid) sees part of it; like a clip played full screen, the movie is flat on the
monitor and degrees are converted at the monitor centre (``deg_per_px`` of the grid), so the
same spec moves the camera the same way at any render size. The camera:

* drifts between saccades with a constant velocity drawn anew at every saccade: a direction
  uniform on the circle and a speed of the picture across the screen log-uniform in
  ``pan_speed_min_dps``..``pan_speed_max_dps`` (equal bounds: one fixed speed), reflecting
  off the picture's edges. The wide default range (4-128 deg/s) is there for
  direction-selective cells: they respond to motion near their preferred speed, TF / SF,
  which in the virtual mouse is ~20-200 deg/s (median ~70); a single slow pan (the old
  fixed 8 deg/s) drives them hardly at all, and a twin trained on it learns no direction
  selectivity (``docs/direction_selectivity.md``);
* zooms (magnification in ``[1, zoom_max]``) at ``zoom_octaves_per_s``, in or out (drawn
  at every saccade), reflecting at the limits;
* jumps at Poisson times (``saccade_rate_hz``) by ``saccade_min_deg``..``saccade_max_deg``
  in a random direction (instantaneous, between two frames; no drift on that frame).

``camera_x_deg`` / ``camera_y_deg`` is the view centre relative to the picture centre (x
right, y up) in screen degrees at zoom 1; the picture moves on the screen by
``-d(camera) * zoom``. Pixels are bilinear samples of the (anti-aliased) picture.

``rms_contrast`` > 0 sets every image / still scene / clip piece to mean 0.5 and standard
deviation ``0.5 * rms_contrast`` (clipped to [0, 1]); 0 leaves the luminance as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from . import _media as media
from .base import GRAY, Canvas, Family, StimulusSpec, n_frames_for, require

__all__ = ["NaturalImagesSpec", "NaturalMoviesSpec", "IMAGES", "MOVIES", "camera_path"]


@dataclass(frozen=True)
class NaturalImagesSpec(StimulusSpec):
    """Static natural images separated by gray.

    Parameters
    ----------
    source : str
        "photos", "videos" (middle frame of each clip), "auto", or a path (see module doc).
    image_duration_s, blank_s : float
        How long each image stays on, and the gray screen after it (s).
    images_per_trial : int
        Images per trial (the last trial may be shorter).
    n_images : int
        Images drawn (once, at random) from the source; 0 = all of them.
    repeats : int
        Times every image is shown, each repeat in its own order.
    shuffle : bool
        Shuffle the order within every repeat (else the source's order).
    rms_contrast : float
        If > 0, each image is set to mean 0.5 and standard deviation ``0.5 * rms_contrast``.
    """

    family: ClassVar[str] = "natural_images"

    source: str = "photos"
    image_duration_s: float = 0.5
    blank_s: float = 0.3
    images_per_trial: int = 10
    n_images: int = 0
    repeats: int = 1
    shuffle: bool = True
    rms_contrast: float = 0.0

    def validate(self) -> None:
        f = "natural_images"
        require(self.image_duration_s > 0, f"{f}: image_duration_s must be positive, got {self.image_duration_s}")
        require(self.blank_s >= 0, f"{f}: blank_s must be non-negative, got {self.blank_s}")
        require(self.images_per_trial >= 1, f"{f}: images_per_trial must be at least 1, got {self.images_per_trial}")
        require(self.n_images >= 0, f"{f}: n_images must be non-negative (0 = all), got {self.n_images}")
        require(self.repeats >= 1, f"{f}: repeats must be at least 1, got {self.repeats}")
        require(self.rms_contrast >= 0, f"{f}: rms_contrast must be non-negative, got {self.rms_contrast}")
        media.check_source(self.source, f)


@dataclass(frozen=True)
class NaturalMoviesSpec(StimulusSpec):
    """Natural movies: real clips, or camera motion over real photographs.

    Parameters
    ----------
    source : str
        "auto" (the real clips where present, else the photos), "videos", "photos" or a path.
    n_trials : int
        Trials of ``clip_duration_s`` each.
    clip_duration_s : float
        Trial length (s); the reel of clips is cut at these boundaries.
    shuffle : bool
        A new random order of the clips on every pass through the source (else sorted).
    photo_duration_s : float
        How long the camera roams over one still (s).
    scene_scale : float
        The still is this many times the size that would just cover the screen (>= 1).
    pan_speed_min_dps, pan_speed_max_dps : float
        Range of drift speeds of the picture on the screen (deg/s), log-uniform, one speed per
        fixation; equal bounds give one fixed speed (0 and 0: no drift).
    zoom_max : float
        Largest magnification (>= 1; 1 = no zoom).
    zoom_octaves_per_s : float
        Rate of zooming in or out (octaves of magnification per second).
    saccade_rate_hz : float
        Mean rate of camera jumps (Poisson; 0 = none).
    saccade_min_deg, saccade_max_deg : float
        Range of jump sizes on the screen (uniform).
    rms_contrast : float
        If > 0, each still and each clip piece is set to mean 0.5, std ``0.5 * rms_contrast``.
    """

    family: ClassVar[str] = "natural_movies"

    source: str = "auto"
    n_trials: int = 10
    clip_duration_s: float = 10.0
    shuffle: bool = True
    photo_duration_s: float = 10.0
    scene_scale: float = 2.0
    pan_speed_min_dps: float = 4.0
    pan_speed_max_dps: float = 128.0
    zoom_max: float = 1.5
    zoom_octaves_per_s: float = 0.1
    saccade_rate_hz: float = 0.5
    saccade_min_deg: float = 3.0
    saccade_max_deg: float = 20.0
    rms_contrast: float = 0.0

    def validate(self) -> None:
        f = "natural_movies"
        require(self.n_trials >= 1, f"{f}: n_trials must be at least 1, got {self.n_trials}")
        require(self.clip_duration_s > 0, f"{f}: clip_duration_s must be positive, got {self.clip_duration_s}")
        require(self.photo_duration_s > 0, f"{f}: photo_duration_s must be positive, got {self.photo_duration_s}")
        require(self.scene_scale >= 1, f"{f}: scene_scale must be at least 1, got {self.scene_scale}")
        lo, hi = self.pan_speed_min_dps, self.pan_speed_max_dps
        require(lo >= 0, f"{f}: pan_speed_min_dps must be non-negative, got {lo}")
        require(hi >= lo, f"{f}: pan_speed_max_dps must be at least pan_speed_min_dps, got {hi}")
        require(lo > 0 or hi == 0,
                f"{f}: pan_speed_min_dps must be positive for a log-uniform range (or both bounds 0), got {lo}")
        require(self.zoom_max >= 1, f"{f}: zoom_max must be at least 1, got {self.zoom_max}")
        require(
            self.zoom_octaves_per_s >= 0, f"{f}: zoom_octaves_per_s must be non-negative, got {self.zoom_octaves_per_s}"
        )
        require(self.saccade_rate_hz >= 0, f"{f}: saccade_rate_hz must be non-negative, got {self.saccade_rate_hz}")
        require(self.saccade_min_deg >= 0, f"{f}: saccade_min_deg must be non-negative, got {self.saccade_min_deg}")
        require(
            self.saccade_max_deg >= self.saccade_min_deg,
            f"{f}: saccade_max_deg must be at least saccade_min_deg, got {self.saccade_max_deg}",
        )
        require(self.rms_contrast >= 0, f"{f}: rms_contrast must be non-negative, got {self.rms_contrast}")
        media.check_source(self.source, f)


def _normalize(frames: np.ndarray, rms_contrast: float, ref: np.ndarray | None = None) -> np.ndarray:
    """Mean 0.5, std ``0.5 * rms_contrast`` (statistics of ``ref``, default ``frames``)."""
    if rms_contrast <= 0:
        return frames
    ref = frames if ref is None else ref
    mean, std = float(ref.mean()), float(ref.std())
    if std < 1e-6:
        return np.full_like(frames, GRAY)
    return np.clip(GRAY + (frames - mean) * (GRAY * rms_contrast / std), 0.0, 1.0).astype(np.float32)


# -- natural images -------------------------------------------------------------------------


def plan_images(spec: NaturalImagesSpec, rng: np.random.Generator) -> pd.DataFrame:
    items = media.items(spec.source, "natural_images")
    ids = np.arange(len(items))
    if spec.n_images:
        require(
            spec.n_images <= len(items),
            f"natural_images: n_images must be at most {len(items)} (the images of {spec.source!r}), "
            f"got {spec.n_images}",
        )
        ids = np.sort(rng.choice(ids, spec.n_images, replace=False))
    order = np.concatenate([rng.permutation(ids) if spec.shuffle else ids for _ in range(spec.repeats)])
    idx = np.arange(len(order))
    per = spec.images_per_trial
    rows = pd.DataFrame(
        {
            "trial": idx // per,
            "segment": 2 * (idx % per),
            "n_frames": n_frames_for(spec.image_duration_s, spec.frame_rate_hz),
            "blank": False,
            "image_id": order,
            "image_name": [items[i].name for i in order],
            "repeat": idx // len(ids),
        }
    )
    if spec.blank_s > 0:
        blanks = rows.assign(
            segment=rows.segment + 1,
            n_frames=n_frames_for(spec.blank_s, spec.frame_rate_hz),
            blank=True,
            image_id=-1,
            image_name="",
        )
        rows = pd.concat([rows, blanks]).sort_values(["trial", "segment"], kind="stable")
    return rows.assign(segment=rows.groupby("trial").cumcount())


def render_images(spec: NaturalImagesSpec, row, canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
    n = int(row["n_frames"])
    if row["blank"]:
        return np.full((n, *canvas.shape), GRAY, dtype=np.float32)
    item = media.items(spec.source, "natural_images")[int(row["image_id"])]
    image = _normalize(media.still_on_grid(item, canvas.shape), spec.rms_contrast)
    return np.repeat(image[None], n, axis=0)


# -- natural movies -------------------------------------------------------------------------


def plan_movies(spec: NaturalMoviesSpec, rng: np.random.Generator) -> pd.DataFrame:
    items = media.items(spec.source, "natural_movies")
    fps = spec.frame_rate_hz
    lengths = [
        n_frames_for(spec.photo_duration_s, fps) if it.still else media.clip_info(it.ref).frames_at(fps)
        for it in items
    ]
    per_trial = n_frames_for(spec.clip_duration_s, fps)
    total = spec.n_trials * per_trial
    rows: list[tuple] = []
    pos = 0
    while pos < total:
        order = rng.permutation(len(items)) if spec.shuffle else np.arange(len(items))
        seeds = rng.integers(0, 2**31 - 1, len(items))
        for i, seed in zip(order, seeds):
            if pos >= total:
                break
            it, length, start = items[i], lengths[i], 0
            while start < length and pos < total:
                trial = pos // per_trial
                n = min(length - start, (trial + 1) * per_trial - pos)
                kind, path_seed = ("still", int(seed)) if it.still else ("video", -1)
                rows.append((trial, n, it.name, int(i), kind, start, length, path_seed))
                start += n
                pos += n
    columns = ["trial", "n_frames", "clip_name", "clip_id", "clip_kind", "clip_start_frame", "clip_frames", "path_seed"]
    plan = pd.DataFrame(rows, columns=columns)
    plan.insert(1, "segment", plan.groupby("trial").cumcount())
    return plan


def camera_path(
    spec: NaturalMoviesSpec, seed: int, n: int, deg_per_px: float, bounds_px: tuple[float, float]
) -> dict[str, np.ndarray]:
    """The camera over a still for ``n`` frames: ``x_px``, ``y_px`` (view centre from the
    picture centre, screen pixels at zoom 1, y up), ``zoom``, ``saccade`` and ``pan_speed_dps``
    (the screen speed of the frame's fixation), each ``[n]``.

    ``bounds_px`` = the largest ``|x|``, ``|y|`` that keep the view inside the picture at
    zoom 1 (and so at every zoom >= 1). Drift and zoom are integrated frame by frame, then
    folded back into the bounds (a reflection off the edge).
    """
    rng = np.random.default_rng(seed)
    fps = spec.frame_rate_hz
    saccade = np.zeros(n, dtype=bool)
    n_jumps = rng.poisson(spec.saccade_rate_hz * n / fps)
    if n > 1 and n_jumps:
        saccade[np.clip(np.ceil(rng.uniform(0, n / fps, n_jumps) * fps).astype(int), 1, n - 1)] = True
    fixation = np.cumsum(saccade)
    n_fix = int(fixation[-1]) + 1
    heading = rng.uniform(0, 2 * np.pi, n_fix)
    zoom_sign = rng.choice([-1.0, 1.0], n_fix)
    jump_deg = rng.uniform(spec.saccade_min_deg, spec.saccade_max_deg, n)
    jump_dir = rng.uniform(0, 2 * np.pi, n)
    top = np.log2(spec.zoom_max)
    log_zoom = _fold(rng.uniform(0, top) + _steps(zoom_sign[fixation] * spec.zoom_octaves_per_s / fps), 0.0, top)
    zoom = 2.0**log_zoom
    bx, by = bounds_px
    x0, y0 = rng.uniform(-bx, bx), rng.uniform(-by, by)
    # drawn last, so that equal bounds leave every other draw as it was with one fixed speed
    pan_dps = _log_uniform(rng, spec.pan_speed_min_dps, spec.pan_speed_max_dps, n_fix)[fixation]
    # screen-speed drift: the scene moves by speed / zoom (scene px at zoom 1)
    speed = np.where(saccade, jump_deg, pan_dps / fps) / deg_per_px / zoom
    angle = np.where(saccade, jump_dir, heading[fixation])
    x = _fold(x0 + _steps(speed * np.cos(angle)), -bx, bx)
    y = _fold(y0 + _steps(speed * np.sin(angle)), -by, by)
    return {"x_px": x, "y_px": y, "zoom": zoom, "saccade": saccade, "pan_speed_dps": pan_dps}


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """``n`` draws log-uniform in ``[lo, hi]`` (``lo`` itself where the bounds are equal)."""
    if hi <= lo:
        return np.full(n, float(lo))
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def _steps(step: np.ndarray) -> np.ndarray:
    """Position after each frame's step, the first frame at 0."""
    out = np.cumsum(step)
    return out - out[0]


def _fold(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect an unbounded path into ``[lo, hi]`` (a bounce off each end)."""
    span = hi - lo
    if span <= 0:
        return np.full_like(u, lo)
    m = np.mod(u - lo, 2 * span)
    return lo + np.where(m > span, 2 * span - m, m)


def _render_still(spec: NaturalMoviesSpec, row, canvas: Canvas, item: media.Item) -> tuple[np.ndarray, dict]:
    H, W = canvas.shape
    picture = media.still_luminance(item)
    h, w = picture.shape
    k = spec.scene_scale * max(H / h, W / w)  # screen px (zoom 1) per picture px
    bounds = (max(0.0, (w * k - W) / 2), max(0.0, (h * k - H) / 2))
    dpp = canvas.deg_per_px
    path = camera_path(spec, int(row["path_seed"]), int(row["clip_frames"]), dpp, bounds)
    s = slice(int(row["clip_start_frame"]), int(row["clip_start_frame"]) + int(row["n_frames"]))
    x, y, zoom = path["x_px"][s], path["y_px"][s], path["zoom"][s]
    scene = media.antialias(picture, k)  # zoom >= 1 only magnifies further
    rows = (h - 1) / 2 + (-y[:, None] + (np.arange(H) - (H - 1) / 2)[None] / zoom[:, None]) / k
    cols = (w - 1) / 2 + (x[:, None] + (np.arange(W) - (W - 1) / 2)[None] / zoom[:, None]) / k
    frames = _normalize(media.sample(scene, rows, cols), spec.rms_contrast, ref=scene)
    n = len(x)
    extra = {
        "source_frame": np.full(n, -1, dtype=np.int64),
        "camera_x_deg": x * dpp,
        "camera_y_deg": y * dpp,
        "zoom": zoom,
        "pan_speed_dps": path["pan_speed_dps"][s],
        "saccade": path["saccade"][s],
    }
    return frames, extra


def _render_clip(spec: NaturalMoviesSpec, row, canvas: Canvas, item: media.Item) -> tuple[np.ndarray, dict]:
    info = media.clip_info(item.ref)
    k = int(row["clip_start_frame"]) + np.arange(int(row["n_frames"]))
    src = info.source_index(k, spec.frame_rate_hz)
    want, which = np.unique(src, return_inverse=True)
    frames = _normalize(media.read_frames(info, want, canvas.shape)[which], spec.rms_contrast)
    n = len(k)
    nan = np.full(n, np.nan)
    extra = {
        "source_frame": src.astype(np.int64),
        "camera_x_deg": nan,
        "camera_y_deg": nan,
        "zoom": nan,
        "pan_speed_dps": nan,
        "saccade": np.zeros(n, dtype=bool),
    }
    return frames, extra


def render_movies(spec: NaturalMoviesSpec, row, canvas: Canvas, rng: np.random.Generator):
    # the camera path comes from the plan's path_seed, so pieces of one showing split
    # across trials continue one path
    item = media.items(spec.source, "natural_movies")[int(row["clip_id"])]
    render = _render_still if item.still else _render_clip
    return render(spec, row, canvas, item)


IMAGES = Family(
    "natural_images", NaturalImagesSpec, plan_images, render_images, "static natural images with gray blanks"
)
MOVIES = Family(
    "natural_movies",
    NaturalMoviesSpec,
    plan_movies,
    render_movies,
    "natural movies: real clips, or camera motion over real photographs",
)
