"""Drifting Gabors: spatial frequency, drift direction and envelope measured from frames."""

import numpy as np
import pytest

import twinlab as tl
from twinlab.errors import InputError


def _sweep(**kw):
    base = dict(mode="sweep", blank_s=0.0, sf_cpd=[0.08], tf_hz=[2.0], gabor_duration_s=0.5)
    base.update(kw)
    return tl.resolve_spec("gabor", base)


def _dominant_sf_cpd(frame, deg_per_px, half=40):
    """Peak of the zero-padded 2D spectrum of a Hann-windowed central crop, in cycles/deg."""
    h, w = frame.shape
    crop = frame[h // 2 - half : h // 2 + half, w // 2 - half : w // 2 + half] - 0.5
    win = np.hanning(2 * half)
    crop = crop * win[:, None] * win[None, :]
    n = 2048
    power = np.abs(np.fft.fft2(crop, s=(n, n))) ** 2
    ky, kx = np.unravel_index(np.argmax(power), power.shape)
    f = np.fft.fftfreq(n)
    return np.hypot(f[ky], f[kx]) / deg_per_px


@pytest.mark.parametrize("sf", [0.04, 0.08, 0.16])
def test_spatial_frequency_at_the_monitor_centre(sf):
    spec = _sweep(sf_cpd=[sf], n_directions=1, sigma_deg=60.0, height_px=288, width_px=512)
    stim = tl.generate(spec)
    measured = _dominant_sf_cpd(stim.frames.values[0], stim.attrs["deg_per_px"])
    assert measured == pytest.approx(sf, rel=0.03)


def test_drift_direction_from_the_spatiotemporal_spectrum():
    spec = _sweep(n_directions=16, sigma_deg=40.0, height_px=72, width_px=128, gabor_duration_s=0.5)
    stim = tl.generate(spec)
    frames = stim.frames.values
    assert sorted(set(stim.direction_deg.values)) == list(np.arange(16) * 22.5)
    for d in np.arange(16) * 22.5:
        movie = frames[stim.direction_deg.values == d][:, 20:52, 48:80] - 0.5
        spec3 = np.abs(np.fft.fftn(movie)) ** 2
        spec3[0] = 0  # drop the static part
        ft, ky, kx = np.unravel_index(np.argmax(spec3), spec3.shape)
        f_t = np.fft.fftfreq(movie.shape[0])[ft]
        k_row, k_col = np.fft.fftfreq(movie.shape[1])[ky], np.fft.fftfreq(movie.shape[2])[kx]
        # exp(i 2 pi (k.p - f t)) peaks at (-f, k): motion runs along -sign(f_t) * k; rows go down
        s = -np.sign(f_t)
        measured = np.degrees(np.arctan2(-s * k_row, s * k_col)) % 360
        err = (measured - d + 180) % 360 - 180
        assert abs(err) < 11.25, (d, measured)


def test_envelope_sigma_and_contrast():
    spec = _sweep(n_directions=1, sigma_deg=10.0, sf_cpd=[0.1], tf_hz=[1.0], gabor_duration_s=1.0,
                  height_px=144, width_px=256)
    stim = tl.generate(spec)
    f = stim.frames.values - 0.5
    amp = np.sqrt(2 * (f**2).mean(axis=0))  # the carrier's amplitude at each pixel over one cycle
    assert amp.max() == pytest.approx(0.5, abs=0.02)  # full contrast at the peak
    x, y = spec.screen.deg_grid(spec.shape)
    r = np.hypot(x, y)
    mask = (amp > 0.05) & (r < 25)
    # log amplitude is a parabola in eccentricity: slope -1 / (2 sigma^2)
    slope = np.polyfit(r[mask] ** 2, np.log(amp[mask] / 0.5), 1)[0]
    assert np.sqrt(-1 / (2 * slope)) == pytest.approx(10.0, rel=0.05)


def test_random_protocol_follows_the_paper():
    spec = tl.resolve_spec("gabor", ["n_trials=3", "height_px=18", "width_px=32"])
    stim = tl.generate(spec)
    assert stim.sizes["frame"] == 3 * 10 * 30  # 10-s trials of 10 x 1 s Gabors at 30 Hz
    assert stim.time_s.values[-1] == pytest.approx(30 - 1 / 30)
    per_gabor = stim.groupby(stim.trial * 100 + stim.segment).first()
    assert per_gabor.sizes[next(iter(per_gabor.dims))] == 30
    e = spec.screen.extent_deg()
    # positions anywhere on the monitor, not only near its centre
    assert np.all((stim.center_x_deg > e["left"]) & (stim.center_x_deg < e["right"]))
    assert stim.center_x_deg.max() - stim.center_x_deg.min() > 40
    assert stim.frames.min() >= 0 and stim.frames.max() <= 1


def test_same_seed_same_frames_other_seed_other_frames():
    a = tl.generate(tl.resolve_spec("gabor", ["n_trials=1", "height_px=18", "width_px=32"]))
    b = tl.generate(tl.resolve_spec("gabor", ["n_trials=1", "height_px=18", "width_px=32"]))
    c = tl.generate(tl.resolve_spec("gabor", ["n_trials=1", "height_px=18", "width_px=32", "seed=1"]))
    np.testing.assert_array_equal(a.frames.values, b.frames.values)
    assert not np.allclose(a.frames.values, c.frames.values)


def test_sweep_covers_every_condition_repeatedly():
    spec = _sweep(n_directions=8, sf_cpd=[0.04, 0.08], tf_hz=[1.0], repeats=3, height_px=9, width_px=16,
                  gabor_duration_s=0.1, blank_s=0.1)
    plan = tl.stimuli.plan(spec)
    shown = plan[~plan.blank]
    counts = shown.groupby(["direction_deg", "sf_cpd"]).size()
    assert len(counts) == 16 and (counts == 3).all()
    assert plan.blank.sum() == len(shown)


@pytest.mark.parametrize(
    "override, field",
    [("sigma_deg=-1", "sigma_deg"), ("n_directions=0", "n_directions"), ("contrast=2", "contrast"),
     ("mode='spiral'", "mode"), ("sf_cpd=[]", "sf_cpd")],
)
def test_bad_spec_names_the_field(override, field):
    with pytest.raises(InputError, match=field):
        tl.resolve_spec("gabor", [override])
