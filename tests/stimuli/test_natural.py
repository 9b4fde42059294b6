"""Natural images and natural movies: measured from the rendered frames.

Synthetic clips are written here with PyAV in a lossless codec (FFV1 in Matroska, RGB), so
luminance values are exact; the real clips in the shared folder are tested where present.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from scipy.ndimage import gaussian_filter

import twinlab as t
from twinlab.errors import InputError
from twinlab.paths import shared_data
from twinlab.stimuli import _media
from twinlab.stimuli.base import Canvas, segment_rng
from twinlab.stimuli.natural import MOVIES, NaturalImagesSpec, NaturalMoviesSpec

av = pytest.importorskip("av")

CLIPS = shared_data("natural_videos")


def write_video(path, frames_rgb: np.ndarray, fps, codec="ffv1", pix_fmt="bgr0", gop=None, options=None) -> str:
    """``frames_rgb`` ``[n, h, w, 3]`` uint8 -> a video file at ``fps``."""
    n, h, w, _ = frames_rgb.shape
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        if gop:
            stream.codec_context.gop_size = gop
        if options:
            stream.options = options
        for rgb in frames_rgb:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return str(path)


def gray_ramp(n, value, h=16, w=24) -> np.ndarray:
    """Frame ``i`` uniformly gray at ``value(i)`` (0..255)."""
    v = np.array([value(i) for i in range(n)], dtype=np.uint8)
    return np.broadcast_to(v[:, None, None, None], (n, h, w, 3)).copy()


def movie(source, **kw) -> NaturalMoviesSpec:
    kw = {"height_px": 18, "width_px": 32, "n_trials": 1, "shuffle": False, **kw}
    return NaturalMoviesSpec(source=str(source), **kw)


def _integer_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from skimage.registration import phase_cross_correlation

    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    a, b = (a - a.mean()) * win, (b - b.mean()) * win
    return -phase_cross_correlation(a, b, normalization=None)[0]


def content_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Measured (rows, cols) displacement of the picture from frame ``a`` to frame ``b``:
    whole pixels by windowed phase correlation, then the fraction by least-squares optical
    flow (Lucas-Kanade, iterated) on the overlap of the two frames."""
    dr, dc = np.round(_integer_shift(a, b)).astype(int)
    h, w = a.shape
    a = a[max(0, -dr) : h - max(0, dr), max(0, -dc) : w - max(0, dc)].astype(np.float64)
    b = b[max(0, dr) : h - max(0, -dr), max(0, dc) : w - max(0, -dc)].astype(np.float64)
    inner = (slice(4, -4), slice(4, -4))
    d = np.zeros(2)
    for _ in range(3):
        back = ndimage.shift(b, -d, order=3, mode="nearest")
        gy, gx = np.gradient((a + back) / 2)
        design = np.stack([gy[inner].ravel(), gx[inner].ravel()], axis=1)
        d += np.linalg.lstsq(design, (a - back)[inner].ravel(), rcond=None)[0]
    return np.array([dr, dc]) + d


@pytest.fixture(scope="module")
def texture(tmp_path_factory):
    """A smooth random texture (16-bit PNG), for measuring camera motion."""
    rng = np.random.default_rng(0)
    tex = gaussian_filter(rng.standard_normal((240, 360)), 3)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    path = tmp_path_factory.mktemp("tex") / "texture.png"
    Image.fromarray((tex * 65535).astype(np.uint16)).save(path)
    return path


# -- time resampling and luminance of clips -------------------------------------------------


@pytest.mark.parametrize("fps", [15, 20])
def test_clip_resampled_to_30hz_by_sample_and_hold(tmp_path, fps):
    n_src = 12
    path = write_video(tmp_path / "ramp.mkv", gray_ramp(n_src, lambda i: 10 + 20 * i), fps)
    duration = n_src / fps
    ds = t.generate(movie(path, clip_duration_s=duration, n_trials=2))
    per_trial = round(duration * 30)
    assert ds.sizes["frame"] == 2 * per_trial  # the clip lasts n_src / fps s at 30 Hz
    shown = np.round((ds.frames.values.mean(axis=(1, 2)) * 255 - 10) / 20).astype(int)
    k = np.arange(per_trial)
    # frame k (at k / 30 s) shows the source frame on screen then: floor(k * fps / 30)
    np.testing.assert_array_equal(shown[:per_trial], (k * fps) // 30)
    np.testing.assert_array_equal(shown[per_trial:], shown[:per_trial])  # the reel loops
    np.testing.assert_array_equal(ds.source_frame.values, shown)
    if fps == 15:
        assert np.all(np.bincount(shown[:per_trial]) == 2)  # every frame exactly twice
    assert np.all(np.isnan(ds.camera_x_deg.values)) and not ds.saccade.values.any()


def test_luma_weights_of_pure_colours(tmp_path):
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], dtype=np.uint8)
    frames = np.broadcast_to(colours[:, None, None, :], (4, 16, 24, 3)).copy()
    path = write_video(tmp_path / "rgb.mkv", frames, 30)
    ds = t.generate(movie(path, clip_duration_s=4 / 30))
    lum = ds.frames.values.mean(axis=(1, 2))
    np.testing.assert_allclose(lum, [0.2126, 0.7152, 0.0722, 1.0], atol=1e-3)
    assert ds.frames.values.std(axis=(1, 2)).max() < 1e-4


def test_luma_of_lossy_yuv_clip_within_codec_error(tmp_path):
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]], dtype=np.uint8)
    frames = np.repeat(colours[:, None, None, :], 4, axis=0)
    frames = np.broadcast_to(frames, (16, 32, 48, 3)).copy()
    path = write_video(tmp_path / "rgb.mp4", frames, 30, codec=codec, pix_fmt="yuv420p")
    ds = t.generate(movie(path, clip_duration_s=16 / 30))
    lum = ds.frames.values.mean(axis=(1, 2))[1::4]
    np.testing.assert_allclose(lum, [0.2126, 0.7152, 0.0722, 128 / 255], atol=0.03)


# -- aspect-preserving cover ----------------------------------------------------------------


def disk_picture(h=200, w=500, radius=60) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    inside = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= radius**2
    return np.where(inside, 0, 255).astype(np.uint8)


def disk_shape(frame: np.ndarray):
    """Radius (from area) and row / column spread of the dark disk, and its centre."""
    dark = np.clip(1 - frame, 0, 1)  # area-weighted: partial pixels count partially
    rows, cols = np.mgrid[: frame.shape[0], : frame.shape[1]]
    area = dark.sum()
    r0, c0 = (dark * rows).sum() / area, (dark * cols).sum() / area
    var_r = (dark * (rows - r0) ** 2).sum() / area
    var_c = (dark * (cols - c0) ** 2).sum() / area
    return math.sqrt(area / math.pi), var_r, var_c, (r0, c0)


@pytest.mark.parametrize("kind", ["image", "video"])
def test_cover_crop_keeps_a_circle_round(tmp_path, kind):
    pic = disk_picture()  # 200 x 500 picture (aspect 2.5) onto 72 x 128 (aspect 1.78)
    if kind == "image":
        path = tmp_path / "disk.png"
        Image.fromarray(pic).save(path)
        frame = t.generate(NaturalImagesSpec(source=str(path), height_px=72, width_px=128, blank_s=0)).frames[0]
    else:
        path = write_video(tmp_path / "disk.mkv", np.repeat(pic[None, ..., None], 3, axis=-1).repeat(2, 0), 30)
        frame = t.generate(movie(path, height_px=72, width_px=128, clip_duration_s=2 / 30)).frames[0]
    radius, var_r, var_c, centre = disk_shape(frame.values)
    scale = max(72 / 200, 128 / 500)  # covers the grid: height fits, width is cropped
    assert radius == pytest.approx(60 * scale, abs=0.4)
    assert var_r == pytest.approx(var_c, rel=0.03)  # round, not squashed
    assert var_r == pytest.approx(radius**2 / 4, rel=0.06)  # a filled disk's spread
    np.testing.assert_allclose(centre, (35.5, 63.5), atol=0.6)  # the middle is kept


# -- camera motion over stills --------------------------------------------------------------


def test_pan_moves_the_picture_at_the_planned_velocity(texture):
    spec = movie(
        texture, height_px=72, width_px=128, clip_duration_s=1.0, photo_duration_s=1.0,
        pan_speed_min_dps=30.0, pan_speed_max_dps=30.0, saccade_rate_hz=0.0, zoom_max=1.0,
    )  # fmt: skip
    ds = t.generate(spec)
    f, dpp = ds.frames.values, ds.attrs["deg_per_px"]
    measured = np.array([content_shift(f[i], f[i + 1]) for i in range(len(f) - 1)])
    # camera right/up -> picture left/down on the screen (rows grow downward)
    planned = np.stack([np.diff(ds.camera_y_deg.values), -np.diff(ds.camera_x_deg.values)], axis=1) / dpp
    np.testing.assert_allclose(measured, planned, atol=0.01)
    speed = np.hypot(*measured.T)
    expected = 30.0 / dpp / 30.0  # deg/s -> px/frame
    assert np.median(speed) == pytest.approx(expected, rel=0.005)
    assert np.all(ds.zoom.values == 1.0) and not ds.saccade.values.any()
    assert np.all(ds.source_frame.values == -1)


def test_saccades_are_jumps_at_the_flagged_frames(texture):
    spec = movie(
        texture, height_px=72, width_px=128, clip_duration_s=1.0, photo_duration_s=1.0, seed=3,
        pan_speed_min_dps=0.0, pan_speed_max_dps=0.0, saccade_rate_hz=6.0, saccade_min_deg=10.0, saccade_max_deg=20.0, zoom_max=1.0,
    )  # fmt: skip
    ds = t.generate(spec)
    f, dpp = ds.frames.values, ds.attrs["deg_per_px"]
    jump = np.array([np.hypot(*content_shift(f[i], f[i + 1])) for i in range(len(f) - 1)])
    flagged = ds.saccade.values[1:]
    assert flagged.sum() >= 3
    np.testing.assert_array_equal(jump > 3.0, flagged)  # the picture jumps exactly there
    assert np.all(jump[~flagged] < 0.01)  # and stays still otherwise
    planned = np.hypot(np.diff(ds.camera_x_deg.values), np.diff(ds.camera_y_deg.values)) / dpp
    np.testing.assert_allclose(jump[flagged], planned[flagged], atol=0.02)
    # 10-20 deg on the screen (none of this seed's jumps bounces off the picture's edge)
    assert np.all((jump[flagged] * dpp > 10.0 - 0.02) & (jump[flagged] * dpp < 20.0 + 0.02))


def magnification(a: np.ndarray, b: np.ndarray) -> float:
    """Measured scale of frame ``b`` relative to frame ``a`` about the frame centre: the
    magnification of ``a`` that best matches ``b`` (correlation on the inner region)."""
    centre = (np.array(a.shape) - 1) / 2
    inner = tuple(slice(n // 4, n - n // 4) for n in a.shape)
    logs = np.linspace(-0.5, 0.5, 201)
    corr = []
    for ls in logs:
        s = np.exp(ls)
        warped = ndimage.affine_transform(a, np.eye(2) / s, offset=centre - centre / s, order=3)
        corr.append(np.corrcoef(warped[inner].ravel(), b[inner].ravel())[0, 1])
    i = int(np.argmax(corr))
    c0, c1, c2 = corr[i - 1], corr[i], corr[i + 1]  # parabola through the peak
    return float(np.exp(logs[i] + (logs[1] - logs[0]) * 0.5 * (c0 - c2) / (c0 - 2 * c1 + c2)))


def test_zoom_magnifies_the_picture_as_planned(texture):
    spec = movie(texture, height_px=72, width_px=128, clip_duration_s=0.5, photo_duration_s=0.5, seed=1,
                 pan_speed_min_dps=0.0, pan_speed_max_dps=0.0, saccade_rate_hz=0.0, zoom_max=4.0, zoom_octaves_per_s=1.0)
    ds = t.generate(spec)
    f, zoom = ds.frames.values, ds.zoom.values
    planned = zoom[-1] / zoom[0]
    assert abs(np.log2(planned)) > 0.3  # it zooms (in or out) by a visible amount
    assert magnification(f[0], f[-1]) == pytest.approx(planned, rel=0.01)
    np.testing.assert_allclose(ds.camera_x_deg.values, ds.camera_x_deg.values[0])  # about the view centre


def test_camera_stays_inside_and_zoom_in_range():
    spec = NaturalMoviesSpec(source="photos", height_px=18, width_px=32, n_trials=2, clip_duration_s=5.0,
                             photo_duration_s=5.0, zoom_octaves_per_s=0.5, zoom_max=2.0, saccade_rate_hz=2.0)
    ds = t.generate(spec)
    assert 1.0 <= ds.zoom.values.min() and ds.zoom.values.max() <= 2.0
    assert ds.zoom.values.max() / ds.zoom.values.min() > 1.3  # it does zoom
    # no edge of the picture in view: no frame has a constant (edge-clamped) border column
    assert np.all(np.abs(np.diff(ds.frames.values[:, :, :2], axis=2)).max(axis=(1, 2)) > 0)


def test_drift_speed_is_log_uniform_per_fixation_in_every_direction():
    from twinlab.stimuli.natural import camera_path

    spec = NaturalMoviesSpec(source="photos", pan_speed_min_dps=4.0, pan_speed_max_dps=128.0, saccade_rate_hz=2.0,
                             zoom_max=1.0)
    path = camera_path(spec, seed=5, n=30 * 600, deg_per_px=1.0, bounds_px=(1e9, 1e9))  # no edge in reach
    fix = np.cumsum(path["saccade"])
    starts = np.flatnonzero(np.r_[True, np.diff(fix) > 0])
    speeds = path["pan_speed_dps"][starts]
    assert len(speeds) > 1000
    for k in np.unique(fix)[:50]:  # one speed per fixation
        assert np.ptp(path["pan_speed_dps"][fix == k]) == 0
    # log-uniform: uniform in log2 over the 5 octaves (KS distance of 1000+ draws)
    u = np.sort(np.log2(speeds / 4.0) / 5.0)
    assert 0 <= u[0] and u[-1] <= 1
    assert np.max(np.abs(u - (np.arange(1, len(u) + 1) - 0.5) / len(u))) < 0.05
    # the camera's measured velocity on drift frames: that speed, directions all round the circle
    v = np.stack([np.diff(path["x_px"]), np.diff(path["y_px"])], 1) * 30.0
    drift = ~path["saccade"][1:]
    np.testing.assert_allclose(np.hypot(*v[drift].T), path["pan_speed_dps"][1:][drift], rtol=1e-4)
    heading = np.arctan2(v[drift][:, 1], v[drift][:, 0])
    counts = np.histogram(heading, bins=8, range=(-np.pi, np.pi))[0]
    assert counts.min() > 0.6 * counts.mean()


def test_equal_speed_bounds_give_the_old_fixed_pan():
    from twinlab.stimuli.natural import camera_path

    fixed = NaturalMoviesSpec(source="photos", pan_speed_min_dps=8.0, pan_speed_max_dps=8.0)
    path = camera_path(fixed, seed=2, n=900, deg_per_px=2.0, bounds_px=(1e9, 1e9))
    assert np.all(path["pan_speed_dps"] == 8.0)
    ranged = camera_path(NaturalMoviesSpec(source="photos"), seed=2, n=900, deg_per_px=2.0, bounds_px=(1e9, 1e9))
    # the speeds are drawn after everything else: saccades and zoom are those of the fixed pan
    np.testing.assert_array_equal(ranged["saccade"], path["saccade"])
    np.testing.assert_array_equal(ranged["zoom"], path["zoom"])
    assert np.ptp(ranged["pan_speed_dps"]) > 10


@pytest.mark.parametrize("lo, hi", [(-1.0, 8.0), (16.0, 8.0), (0.0, 8.0)])
def test_bad_speed_ranges_are_refused(lo, hi):
    with pytest.raises(InputError, match="pan_speed_m"):
        NaturalMoviesSpec(source="photos", pan_speed_min_dps=lo, pan_speed_max_dps=hi)


def test_pieces_of_one_showing_continue_one_path(texture):
    # a 1.5-s showing cut by 1-s trials: trial 1 continues trial 0's camera without a jump
    spec = movie(texture, height_px=36, width_px=64, n_trials=2, clip_duration_s=1.0, photo_duration_s=1.5,
                 pan_speed_min_dps=20.0, pan_speed_max_dps=20.0, saccade_rate_hz=0.0, zoom_max=1.0)
    ds = t.generate(spec)
    x = ds.camera_x_deg.values[:45]
    step = np.abs(np.diff(x))
    assert step[29] == pytest.approx(np.median(step), rel=0.05)
    assert t.stimuli.plan(spec)["clip_start_frame"].tolist()[:2] == [0, 30]


# -- natural images -------------------------------------------------------------------------


def test_images_with_gray_blanks_every_image_once_per_repeat():
    spec = NaturalImagesSpec(height_px=18, width_px=32, image_duration_s=0.1, blank_s=0.1, repeats=2,
                             images_per_trial=4)
    ds = t.generate(spec)
    f = ds.frames.values
    is_gray = np.all(f == 0.5, axis=(1, 2))
    np.testing.assert_array_equal(is_gray, np.tile([False] * 3 + [True] * 3, len(f) // 6))
    np.testing.assert_array_equal(is_gray, ds.blank.values)
    shown = f[::6]  # first frame of every image
    assert np.all(f[1::6] == shown) and np.all(f[2::6] == shown)  # static
    keys = [np.round(x, 5).tobytes() for x in shown]
    n = len(_media.PHOTOS)
    assert len(keys) == 2 * n
    assert len(set(keys[:n])) == n and set(keys[:n]) == set(keys[n:])  # each image once per repeat
    assert keys[:n] != keys[n:]  # in a new order
    assert ds.trial.values.max() == math.ceil(2 * n / 4) - 1


def test_rms_contrast_normalises_each_image():
    ds = t.generate(NaturalImagesSpec(height_px=36, width_px=64, n_images=4, blank_s=0, rms_contrast=0.3,
                                      image_duration_s=1 / 30))
    f = ds.frames.values
    np.testing.assert_allclose(f.mean(axis=(1, 2)), 0.5, atol=0.01)
    np.testing.assert_allclose(f.std(axis=(1, 2)), 0.15, atol=0.01)


def test_n_images_draws_a_subset():
    plan = t.stimuli.plan(NaturalImagesSpec(n_images=3, repeats=2, blank_s=0))
    ids = plan["image_id"].to_numpy()
    assert len(set(ids)) == 3 and np.all(np.bincount(ids)[np.unique(ids)] == 2)


# -- seeds and chunking ---------------------------------------------------------------------


def test_same_seed_same_frames_other_seed_other_frames():
    kw = dict(source="photos", height_px=18, width_px=32, clip_duration_s=1.0, photo_duration_s=1.0)
    a = t.generate(NaturalMoviesSpec(seed=1, **kw)).frames.values
    b = t.generate(NaturalMoviesSpec(seed=1, **kw)).frames.values
    c = t.generate(NaturalMoviesSpec(seed=2, **kw)).frames.values
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    i1 = t.generate(NaturalImagesSpec(seed=1, height_px=18, width_px=32, blank_s=0, image_duration_s=1 / 30))
    i2 = t.generate(NaturalImagesSpec(seed=2, height_px=18, width_px=32, blank_s=0, image_duration_s=1 / 30))
    assert sorted(i1.image_id.values) == sorted(i2.image_id.values)
    assert not np.array_equal(i1.image_id.values, i2.image_id.values)


def test_any_trial_of_a_clip_renders_alone_as_in_sequence(tmp_path, monkeypatch):
    # H.264 with B-frames (frames reordered) and a keyframe every 8 frames, near lossless;
    # a tiny seek threshold makes the reader seek to keyframes and decode forward
    if "libx264" not in av.codecs_available:
        pytest.skip("libx264 encoder not available")
    x264 = "keyint=8:min-keyint=8:scenecut=0:bframes=2:b-adapt=0"
    path = write_video(tmp_path / "ramp.mp4", gray_ramp(40, lambda i: 6 * i + 10, 32, 48), 30,
                       codec="libx264", pix_fmt="yuv420p", options={"qp": "1", "x264-params": x264})
    monkeypatch.setattr(_media, "_SEEK_AFTER_S", 0.05)
    spec = movie(path, clip_duration_s=0.5, n_trials=6)
    whole = t.generate(spec)
    plan = t.stimuli.plan(spec)
    canvas = Canvas(spec.screen, spec.shape)
    for i in (4, 1, 5, 3):  # out of order: backwards and forwards, from a fresh decoder too
        if i == 1:
            _media.close_readers()
        row = plan.iloc[i]
        frames, extra = MOVIES.render(spec, row, canvas, segment_rng(spec.seed, row["trial"], row["segment"]))
        same = (whole.trial.values == row["trial"]) & (whole.segment.values == row["segment"])
        np.testing.assert_array_equal(frames, whole.frames.values[same])
    shown = (whole.frames.values.mean(axis=(1, 2)) * 255 - 10) / 6
    np.testing.assert_allclose(shown, np.arange(90) % 40, atol=0.4)  # frame k shows source frame k mod 40


# -- the real clips -------------------------------------------------------------------------

REAL = {"bikes.mp4": (250, 10.0), "carphone_pristine.mp4": (120, 4.004), "tree.avi": (68, 29.600148)}


@pytest.mark.skipif(not CLIPS.is_dir(), reason=f"real clips not available here ({CLIPS})")
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_clips_decode_with_their_frames_and_duration(name):
    path = CLIPS / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    n_src, duration = REAL[name]
    with av.open(str(path)) as c:
        assert c.duration / 1e6 == pytest.approx(duration, abs=1e-3)  # what ffmpeg says
    n_out = math.ceil(duration * 30 - 1e-6)  # 30-Hz frames until the last frame goes off
    spec = movie(path, clip_duration_s=n_out / 30)
    assert t.stimuli.plan(spec)["clip_frames"].tolist() == [n_out]
    ds = t.generate(spec)
    assert ds.sizes["frame"] == n_out
    src = ds.source_frame.values
    np.testing.assert_array_equal(np.unique(src), np.arange(n_src))  # every frame shown, in order
    assert np.all(np.diff(src) >= 0)
    changed = np.abs(np.diff(ds.frames.values, axis=0)).max(axis=(1, 2)) > 0
    np.testing.assert_array_equal(changed, np.diff(src) > 0)  # the picture changes with the source frame
    f = ds.frames.values
    assert 0 <= f.min() and f.max() <= 1 and f.std() > 0.05


@pytest.mark.skipif(not CLIPS.is_dir(), reason=f"real clips not available here ({CLIPS})")
def test_videos_source_plays_the_shared_clips_as_one_reel():
    plan = t.stimuli.plan(NaturalMoviesSpec(source="videos", n_trials=3))
    assert set(plan["clip_name"]) <= {p.name for p in CLIPS.iterdir()}
    assert plan.groupby("trial")["n_frames"].sum().tolist() == [300, 300, 300]
    assert (plan["clip_kind"] == "video").all()


def test_auto_source_falls_back_to_photos_without_the_clips(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINLAB_DATA", str(tmp_path))
    plan = t.stimuli.plan(NaturalMoviesSpec(n_trials=2))
    assert (plan["clip_kind"] == "still").all() and set(plan["clip_name"]) <= set(_media.PHOTOS)
    with pytest.raises(InputError, match="natural_videos"):
        NaturalMoviesSpec(source="videos")


def test_folder_source_and_preset_override(tmp_path):
    Image.fromarray(disk_picture(60, 80, 20)).save(tmp_path / "b.png")
    Image.fromarray(255 - disk_picture(60, 80, 20)).save(tmp_path / "a.jpg")
    write_video(tmp_path / "c.mkv", gray_ramp(3, lambda i: 100), 30)
    (tmp_path / "notes.txt").write_text("not media")
    spec = t.resolve_spec("natural_images", [f"source={tmp_path}", "height_px=18", "width_px=32"])
    ds = t.generate(spec)
    assert sorted(set(ds.image_name.values) - {""}) == ["a.jpg", "b.png", "c.mkv"]
    clip = ds.frames.values[ds.image_name.values == "c.mkv"]
    np.testing.assert_allclose(clip, 100 / 255, atol=1e-5)  # a clip's middle frame


# -- bad input ------------------------------------------------------------------------------


def test_bad_input_names_the_field_or_file(tmp_path):
    with pytest.raises(InputError, match="no_such_clip.mp4"):
        NaturalMoviesSpec(source=str(tmp_path / "no_such_clip.mp4"))
    with pytest.raises(InputError, match="source"):
        t.resolve_spec("natural_images", [f"source={tmp_path / 'missing'}"])
    with pytest.raises(InputError, match="clip_duration_s"):
        NaturalMoviesSpec(source="photos", clip_duration_s=-1.0)
    with pytest.raises(InputError, match="image_duration_s"):
        NaturalImagesSpec(image_duration_s=-0.5)
    with pytest.raises(InputError, match="blank_s"):
        NaturalImagesSpec(blank_s=-0.1)
    with pytest.raises(InputError, match="zoom_max"):
        NaturalMoviesSpec(source="photos", zoom_max=0.5)
    with pytest.raises(InputError, match="saccade_max_deg"):
        NaturalMoviesSpec(source="photos", saccade_min_deg=10.0, saccade_max_deg=5.0)
    with pytest.raises(InputError, match="n_images"):
        t.stimuli.plan(NaturalImagesSpec(n_images=100))
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    with pytest.raises(InputError, match="fake.mp4"):
        t.stimuli.plan(NaturalMoviesSpec(source=str(fake)))
    bad_image = tmp_path / "bad.png"
    bad_image.write_text("nor an image")
    with pytest.raises(InputError, match="bad.png"):
        t.generate(NaturalImagesSpec(source=str(bad_image)))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no image or video"):
        t.stimuli.plan(NaturalImagesSpec(source=str(empty)))
