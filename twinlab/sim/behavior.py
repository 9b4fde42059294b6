"""Behaviour of a virtual mouse during a session: running, pupil size, eye position.

In: a :class:`~twinlab.sim.config.BehaviorConfig`, a number of frames, a frame rate and a
seed. Out: an ``xarray.Dataset`` along ``frame`` with

* ``running_speed`` ``[frame]`` cm/s: bouts of running (gamma-distributed durations; the
  share of time running drawn per session from ``run_fraction_range``), speed wandering
  about ``run_speed_cm_s`` within a bout, ramping on and off over about half a second;
  exactly 0 at rest (the Sensorium sessions' median speed is 0).
* ``pupil_diameter`` ``[frame]`` mm: a slow arousal process plus dilation while running,
  low-pass filtered by the iris (``pupil_tau_s``).
* ``pupil_center`` ``[frame, eye_axis]`` degrees of eye rotation (x = rightward gaze, y =
  upward): slow fixational drift plus saccades (Poisson, more frequent while running,
  mostly horizontal, heavy-tailed sizes, ~50 ms long) about a per-session resting offset,
  clipped to ``eye_range_deg``.

plus the hidden drivers ``arousal`` (unitless) and ``saccade`` (bool, saccade onsets), which
the session format does not carry. Pure and seeded; vectorized with linear filters
(``scipy.signal.lfilter``), with Python loops only over bouts and saccades.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.signal import lfilter

from ..errors import InputError
from .config import BehaviorConfig

__all__ = ["draw_behavior", "neutral_behavior", "run_level", "BEHAVIOR_VARS"]

BEHAVIOR_VARS = ("running_speed", "pupil_diameter", "pupil_center")


def _ou(rng: np.random.Generator, n: int, tau_frames: float, sd: float, size: int = 1) -> np.ndarray:
    """Stationary Ornstein-Uhlenbeck samples ``[n, size]`` (AR(1) with lag-1 corr. exp(-1/tau))."""
    a = np.exp(-1.0 / max(tau_frames, 1e-6))
    e = rng.normal(0.0, sd * np.sqrt(1 - a * a), (n, size))
    e[0] = rng.normal(0.0, sd, size)
    return lfilter([1.0], [1.0, -a], e, axis=0)


def _lowpass(x: np.ndarray, tau_frames: float) -> np.ndarray:
    a = np.exp(-1.0 / max(tau_frames, 1e-6))
    zi = x[:1] * a  # start in steady state at the first value
    return lfilter([1 - a], [1.0, -a], x, axis=0, zi=zi)[0]


def _bouts(rng: np.random.Generator, n: int, fps: float, frac: float, bout_s: float) -> np.ndarray:
    """Boolean running state: alternating gamma-distributed run and rest durations."""
    state = np.zeros(n, dtype=bool)
    if frac <= 0:
        return state
    rest_s = bout_s * (1 - frac) / frac
    running = bool(rng.random() < frac)
    t = 0
    while t < n:
        mean = bout_s if running else rest_s
        d = max(1, int(round(rng.gamma(2.0, mean / 2.0) * fps)))
        if running:
            state[t : t + d] = True
        t += d
        running = not running
    return state


def _fixations(onsets: np.ndarray, jumps: np.ndarray, n: int, steps: int) -> np.ndarray:
    """Gaze target ``[n, 2]``: 0 until the first saccade; saccade ``i`` (at frame ``onsets[i]``)
    moves it linearly over ``steps`` frames from the previous target ``c`` to ``c / 2 + jumps[i]``
    (saccades pull back toward rest, so fixations stay within the oculomotor range); a
    saccade starting within the previous one's ramp takes over from there.
    """
    fix = np.zeros((n, 2))
    if not len(onsets):
        return fix
    # targets after each saccade: new_i = 0.5 new_(i-1) + jump_i (0.5 y is exact, so this
    # filter gives the same numbers as the recursion written out)
    new = lfilter([1.0], [1.0, -0.5], jumps, axis=0)
    cur = np.concatenate([np.zeros((1, 2)), new[:-1]])
    f = np.arange(onsets[0], n)
    i = np.searchsorted(onsets, f, side="right") - 1  # the saccade each frame follows
    d = f - onsets[i]
    ramp = d < steps
    w = ((d[ramp] + 1) / steps)[:, None]
    fix[f[~ramp]] = new[i[~ramp]]
    fix[f[ramp]] = cur[i[ramp]] + w * (new[i[ramp]] - cur[i[ramp]])
    return fix


def run_level(speed):
    """Running as a level in [0, 1): saturating in speed (8 cm/s scale). Works on numpy and torch."""
    try:
        import torch

        if isinstance(speed, torch.Tensor):
            return 1.0 - torch.exp(-torch.clamp(speed, min=0.0) / 8.0)
    except ImportError:  # pragma: no cover
        pass
    return 1.0 - np.exp(-np.clip(speed, 0.0, None) / 8.0)


def draw_behavior(cfg: BehaviorConfig, n_frames: int, frame_rate_hz: float, seed: int) -> xr.Dataset:
    """One session's behaviour traces (see the module docstring)."""
    if n_frames < 1:
        raise InputError(f"behavior: n_frames must be at least 1, got {n_frames}")
    cfg.validate()
    fps = float(frame_rate_hz)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xBE4A]))
    n = int(n_frames)

    frac = rng.uniform(*cfg.run_fraction_range)
    state = _bouts(rng, n, fps, frac, cfg.run_bout_s).astype(float)
    ramp = _lowpass(state, 0.5 * fps)
    target = cfg.run_speed_cm_s + _ou(rng, n, 2.0 * fps, cfg.run_speed_sd_cm_s)[:, 0]
    speed = np.clip(ramp * np.clip(target, 2.0, None), 0.0, cfg.max_speed_cm_s)
    speed[ramp < 0.02] = 0.0

    arousal = _ou(rng, n, cfg.arousal_tau_s * fps, 1.0)[:, 0] + 1.5 * _lowpass(state, 3.0 * fps)
    pupil_target = cfg.pupil_mm + cfg.pupil_sd_mm * _ou(rng, n, cfg.arousal_tau_s * fps, 1.0)[:, 0]
    pupil_target += cfg.pupil_run_mm * _lowpass(state, 3.0 * fps) + 0.5 * cfg.pupil_sd_mm * (arousal - arousal.mean())
    pupil = np.clip(_lowpass(pupil_target, cfg.pupil_tau_s * fps), *cfg.pupil_range_mm)

    # eye: resting offset + fixation targets changed by saccades + slow drift
    sd = np.asarray(cfg.eye_drift_sd_deg, dtype=float)
    rng_deg = np.asarray(cfg.eye_range_deg, dtype=float)
    offset = rng.normal(0.0, cfg.eye_offset_sd_deg, 2)
    drift = _ou(rng, n, cfg.eye_drift_tau_s * fps, 1.0, 2) * sd
    rate = cfg.saccade_rate_hz + (cfg.saccade_rate_running_hz - cfg.saccade_rate_hz) * ramp
    onsets = np.flatnonzero(rng.random(n) < rate / fps)
    sac_sd = np.asarray(cfg.saccade_sd_deg, dtype=float)
    # heavy-tailed (Student t, 3 d.o.f.) saccade sizes: mostly small, now and then large, as in eye videos
    jumps = rng.standard_t(3.0, (len(onsets), 2)) / np.sqrt(3.0) * sac_sd
    fix = _fixations(onsets, jumps, n, max(1, int(round(0.05 * fps))))
    center = np.clip(offset + fix + drift, -rng_deg, rng_deg)
    saccade = np.zeros(n, dtype=bool)
    saccade[onsets] = True

    return _dataset(speed, pupil, center, fps, arousal=arousal, saccade=saccade,
                    attrs={"run_fraction_target": float(frac)})


def neutral_behavior(n_frames: int, cfg: BehaviorConfig | None = None, frame_rate_hz: float = 30.0) -> xr.Dataset:
    """A still, calm mouse: speed 0, pupil at its mean size, gaze at rest (0, 0)."""
    cfg = cfg or BehaviorConfig()
    n = int(n_frames)
    return _dataset(np.zeros(n), np.full(n, cfg.pupil_mm), np.zeros((n, 2)), frame_rate_hz)


def _dataset(speed, pupil, center, fps, arousal=None, saccade=None, attrs=None) -> xr.Dataset:
    data = {
        "running_speed": ("frame", np.asarray(speed, dtype=np.float32), {"units": "cm/s"}),
        "pupil_diameter": ("frame", np.asarray(pupil, dtype=np.float32), {"units": "mm"}),
        "pupil_center": (("frame", "eye_axis"), np.asarray(center, dtype=np.float32),
                         {"units": "degrees of eye rotation (x rightward gaze, y upward)"}),
    }
    if arousal is not None:
        data["arousal"] = ("frame", np.asarray(arousal, dtype=np.float32), {"units": "1"})
    if saccade is not None:
        data["saccade"] = ("frame", np.asarray(saccade, dtype=bool))
    ds = xr.Dataset(data, coords={"frame": np.arange(len(speed)), "eye_axis": ["x", "y"]})
    ds.attrs.update({"frame_rate_hz": float(fps), "pupil_center_units": "deg", "pupil_diameter_units": "mm",
                     **(attrs or {})})
    return ds
