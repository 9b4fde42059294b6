"""From frame-by-frame responses to one response per stimulus presentation.

In: responses ``[neuron, frame]`` or ``[neuron, repeat, frame]`` (an ``xarray.DataArray``
whose ``frame`` coordinates are the Stimulus conditions: ``trial``, ``segment``,
``direction_deg``, ``polarity`` ...). Out: ``[neuron, presentation]`` means, one per
(trial, segment), with the segment's conditions as ``presentation`` coordinates.

Responses lag the stimulus (neural and calcium delays; a twin's recurrent core). The
window of each presentation is its own frames shifted by ``lag_frames``; left unset, the
lag is the one (0 - 0.5 s) that makes presentations differ most, averaged over neurons —
the same rule for in-vivo and in-silico responses, so both are measured alike.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = ["presentations", "best_lag", "check_lag", "direction_curve", "presentation_images"]


def _segments(resp: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    for name in ("trial", "segment"):
        if name not in resp.coords:
            raise InputError(f"responses lack the per-frame '{name}' coordinate of a twinlab stimulus")
    key = resp.trial.values.astype(np.int64) * 1_000_003 + resp.segment.values.astype(np.int64)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    lengths = np.diff(np.r_[starts, len(key)])
    return starts, lengths


def _as_neuron_frame(resp: xr.DataArray) -> np.ndarray:
    if "neuron" not in resp.dims or "frame" not in resp.dims:
        raise InputError(f"responses need dims (neuron, frame[, repeat]), got {resp.dims}")
    if "repeat" in resp.dims:
        resp = resp.mean("repeat")
    return np.asarray(resp.transpose("neuron", "frame").values, dtype=np.float64)


def _window_means(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray, lag: int) -> np.ndarray:
    """Mean of ``x[:, s + lag : s + lag + n]`` per segment, clipped at the end; ``[neuron, seg]``."""
    t = x.shape[1]
    c = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    a = np.clip(starts + lag, 0, t)
    b = np.clip(starts + lag + lengths, 0, t)
    n = np.maximum(b - a, 1)
    return (c[:, b] - c[:, a]) / n


def best_lag(resp: xr.DataArray, max_lag_s: float = 0.5) -> int:
    """The response delay, in frames, that makes presentation means most distinct."""
    x = _as_neuron_frame(resp)
    starts, lengths = _segments(resp)
    rate = float(resp.attrs.get("frame_rate_hz", 30.0))
    if "blank" in resp.coords:
        # gray segments between presentations would reward windows that straddle two stimuli
        shown = ~resp.blank.values[starts].astype(bool)
        starts, lengths = starts[shown], lengths[shown]
    # a lag of a whole presentation period would score as well as the true one (each window
    # then holds the next presentation's response), so search only within half a period
    period = np.median(np.diff(starts)) if len(starts) > 1 else np.inf
    max_lag = min(int(round(max_lag_s * rate)), max(0, int(period // 2)))
    lags = np.arange(0, max_lag + 1)
    total = x.var(axis=1) + 1e-12
    score = [np.nanmean(_window_means(x, starts, lengths, int(lag)).var(axis=1) / total) for lag in lags]
    return int(lags[int(np.nanargmax(score))])


def check_lag(resp: xr.DataArray, lag_frames: int) -> int:
    """``lag_frames`` if it is a usable response delay for ``resp``, else a one-line InputError.

    Usable: ``0 <= lag < `` the shortest onset-to-onset interval of the shown presentations
    (blanks excluded; a single presentation: its length). A longer lag would put each window
    on a later presentation's frames, or past the end of the scan.
    """
    starts, lengths = _segments(resp)
    if "blank" in resp.coords:
        shown = ~resp.blank.values[starts].astype(bool)
        if shown.any():
            starts, lengths = starts[shown], lengths[shown]
    period = int(np.diff(starts).min()) if len(starts) > 1 else int(lengths.min())
    lag = int(lag_frames)
    if not 0 <= lag < period:
        raise InputError(f"--lag-frames {lag} is out of range for this scan: 0..{period - 1} frames (the shortest "
                         f"interval between presentation onsets is {period} frames)")
    return lag


def presentations(resp: xr.DataArray, lag_frames: int | None = None) -> xr.DataArray:
    """Mean response per presentation ``[neuron, presentation]`` with its conditions."""
    x = _as_neuron_frame(resp)
    if not np.isfinite(x).all():
        raise InputError("responses contain NaN or infinite values")
    starts, lengths = _segments(resp)
    lag = best_lag(resp) if lag_frames is None else check_lag(resp, lag_frames)
    means = _window_means(x, starts, lengths, lag)
    coords = {
        name: ("presentation", c.values[starts])
        for name, c in resp.coords.items()
        if c.dims == ("frame",) and name not in ("frame", "time_s", "frame_in_trial")
    }
    coords.update({name: c for name, c in resp.coords.items() if c.dims == ("neuron",)})
    coords["onset_frame"] = ("presentation", starts)
    out = xr.DataArray(means, dims=("neuron", "presentation"), coords=coords, attrs=dict(resp.attrs))
    out.attrs["lag_frames"] = lag
    return out


def direction_curve(resp: xr.DataArray, lag_frames: int | None = None) -> xr.DataArray:
    """Mean response per drift direction ``[neuron, direction_deg]`` (blanks excluded).

    Presentations of the same direction are averaged over every other condition (SF, TF,
    position, repeat).
    """
    if "direction_deg" not in resp.coords:
        raise InputError("direction tuning needs a stimulus with a 'direction_deg' condition "
                         "(pink noise or a Gabor sweep)")
    pres = presentations(resp, lag_frames)
    keep = np.isfinite(pres.direction_deg.values)
    if "blank" in pres.coords:
        keep &= ~pres.blank.values.astype(bool)
    if keep.sum() == 0:
        raise InputError("the stimulus shows no directional presentations")
    pres = pres.isel(presentation=keep)
    curve = pres.groupby("direction_deg").mean("presentation")
    curve.attrs.update(pres.attrs)
    return curve.transpose("neuron", "direction_deg")


def presentation_images(stimulus: xr.Dataset, pres: xr.DataArray) -> np.ndarray:
    """The frame in the middle of each presentation ``[presentation, y, x]`` (luminance)."""
    if "frames" not in stimulus:
        raise InputError("the stimulus has no 'frames' to average")
    onset = pres.onset_frame.values
    mid = onset + np.diff(np.r_[onset, stimulus.sizes["frame"]]) // 2
    return np.asarray(stimulus.frames.isel(frame=mid).values, dtype=np.float64)
