"""The real Allen Brain Observatory natural-scene recording as a session (skips without it)."""

import numpy as np
import pytest

from twinlab.data import read_allen_natural_scenes
from twinlab.data.allen import ALLEN_SCREEN, render_scene
from twinlab.paths import shared_data

FOLDER = shared_data("allen_natural_scenes")
needs_data = pytest.mark.skipif(not FOLDER.is_dir(), reason=f"real Allen data not at {FOLDER} (set TWINLAB_DATA)")


@needs_data
def test_allen_scenes_become_a_session_of_real_neurons():
    ds = read_allen_natural_scenes(FOLDER)
    assert ds.sizes["neuron"] == 212 and ds.sizes["trial"] == 118
    tiers = list(ds.tier.values)
    assert (tiers.count("train"), tiers.count("validation"), tiers.count("test")) == (90, 10, 18)
    assert len(set(ds.stimulus_id.values)) == 118
    train_out = np.load(FOLDER / "Allen_train_output.npy")
    test_out = np.load(FOLDER / "Allen_test_output.npy")
    scenes = np.load(FOLDER / "all_input_scenes_118_961.npy")
    test_in = np.load(FOLDER / "Allen_test_input.npy")
    offset = ds.response_offset.values
    assert (offset >= 0).all() and ds.responses.values.min() >= 0
    for j in (0, 57, 99):  # training scenes, in the file's order
        trial = ds.isel(frame=ds.trial_index.values == j)
        np.testing.assert_allclose(trial.responses.values[-1] - offset, train_out[j], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(trial.responses.values[0], offset, rtol=1e-6)  # gray: dF/F baseline 0
        assert (trial.frames.values[0] == np.float32(127 / 255)).all()
    j = 100 + 5  # the sixth test scene
    trial = ds.isel(frame=ds.trial_index.values == j)
    assert ds.tier.values[j] == "test"
    np.testing.assert_allclose(trial.responses.values[-1] - offset, test_out[5], rtol=1e-5, atol=1e-4)
    img = int(np.flatnonzero((scenes == test_in[5]).all(1))[0])
    assert ds.stimulus_id.values[j] == f"allen_scene_{img:03d}" and ds.source_split.values[j] == "test"
    assert (trial.image_id.values[-8:] == img).all() and (trial.image_id.values[:10] == -1).all()
    np.testing.assert_array_equal(trial.frames.values[-1], render_scene(scenes[img].reshape(31, 31)))


def test_scene_geometry_follows_the_allen_warp():
    # the 918 x 1174 template spans +-60.6 x +-47.4 deg: the monitor (+-60 x +-47.2 deg) is covered
    img = np.full((31, 31), 200.0)
    out = render_scene(img, shape=(40, 64))
    assert np.allclose(out, 200 / 255)
    # a bright column at the scene's centre lands at the monitor's centre column, 3.9 deg wide
    # (one scene pixel = 1174 / 31 template pixels of 0.103 deg)
    img = np.zeros((31, 31))
    img[:, 15] = 255
    out = render_scene(img, shape=(41, 257))
    assert out[20].argmax() == 128 and out[20, 128] == 1.0
    x_deg, _ = ALLEN_SCREEN.deg_grid((41, 257))
    half = x_deg[20][out[20] >= 0.5]
    width = half.max() - half.min() + (x_deg[20, 129] - x_deg[20, 128])
    assert abs(width - 1174 / 31 / 9.68) < 0.5, width
