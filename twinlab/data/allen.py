"""The Allen Brain Observatory natural-scene recording in ``shared/data/allen_natural_scenes``
as a session: real V1 neurons through the whole pipeline.

In: the folder's ``.npy`` files (118 natural scenes downsampled to 31 x 31, values 0-255;
mean dF/F per presentation of 212 neurons; experiment container 511510667, Cux2-CreERT2 x
Ai93, VISp at 275 um, natural scenes from session B, experiment 501498760).
Out: an in-memory session Dataset, one trial per image, ready for
:func:`~twinlab.data.write_session`.

How the static images become clips (all at 30 Hz, parameters below):

* Screen: the Brain Observatory monitor (ASUS PA248Q: 1920 x 1200 px, 61.2 cm diagonal,
  i.e. 51.9 x 32.4 cm, 15 cm from the eye, centred). Allen warped every stimulus so that
  template pixels are equally spaced in azimuthal-equidistant degrees about the
  perpendicular foot, the projection :mod:`twinlab.geometry` uses: one template pixel of the
  918 x 1174 natural-scene template spans 0.103 deg, the scene is centred and covers
  +-60.6 x +-47.4 deg, i.e. the whole monitor. Each render pixel of the session grid
  (``shape``, 40 x 64 by default: the monitor's 16:10) samples the 31 x 31 image at its AE
  position (bilinear; mean gray 127/255 outside). The template's row 0 is taken as the top.
* Trial: ``gray_frames`` of gray (10: the twin's recurrent burn-in; in the experiment the
  previous scene preceded it, back to back), then ``image_frames`` of the scene (8 frames =
  0.27 s, the 250 ms presentation).
* Responses: only the mean dF/F over the presentation is known, so it is put on every image
  frame and 0 (the dF/F baseline) on the gray frames; then each neuron is shifted by
  ``response_offset`` = max(0, -its minimum) (a neuron coordinate) so that responses are
  non-negative as the format requires. Units: dF/F in percent (AllenSDK
  ``mean_sweep_response``). Correlations are unchanged by the shift.
* Tiers: the preparer's split: the 18 test scenes -> ``test``; of the 100 training scenes,
  ``n_validation`` (10, drawn with ``seed``) -> ``validation``, the rest -> ``train``. One
  trial per scene, holding the response averaged over its ~50 presentations (repeat 0).
* Not used: ``Allen_test_output_big.npy``. Its 900 rows are single presentations drawn at
  random from all 5,900 (the preparer's ``np.random.permutation(5900)`` after seed 31, the
  same draw that made the 100/18 split), not the 18 test scenes x 50 repeats; which scene
  each row showed is in ``Allen_test_input_big.npy``, which the folder lacks. So the test
  tier has no repeats and no noise ceiling can be computed from this folder.
* Behaviour: the files carry none; running speed, pupil diameter and pupil centre are
  constant 0 (units "none (not recorded)"), so models see no behavioural modulation.
* Neurons: unit_id 0..211 (the files do not keep the cell specimen ids), area V1, depth
  275 um, layer L4 (the Brain Observatory's name for its 275 um plane), cell type
  "Cux2-CreERT2".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from ..geometry import Screen
from ..paths import shared_data
from .session import session_dataset

__all__ = ["ALLEN_SCREEN", "read_allen_natural_scenes", "render_scene", "FILES"]

_DIAGONAL_CM = 61.214
_ASPECT = 1920 / 1200
_HEIGHT_CM = _DIAGONAL_CM / float(np.sqrt(1 + _ASPECT**2))
ALLEN_SCREEN = Screen(
    width_cm=round(_HEIGHT_CM * _ASPECT, 3), height_cm=round(_HEIGHT_CM, 3), distance_cm=15.0,
    width_px=1920, height_px=1200, frame_rate_hz=30.0,
)
TEMPLATE_SHAPE = (918, 1174)  # natural-scene template (rows, cols), monitor pixels before the warp
GRAY = 127.0 / 255.0
FILES = {
    "all": "all_input_scenes_118_961.npy",
    "train_in": "Allen_train_input.npy",
    "train_out": "Allen_train_output.npy",
    "test_in": "Allen_test_input.npy",
    "test_out": "Allen_test_output.npy",
}


def render_scene(image: np.ndarray, shape: tuple[int, int] = (40, 64), screen: Screen = ALLEN_SCREEN) -> np.ndarray:
    """A 31 x 31 (any size) scene in 0-255 as the monitor showed it, on a render grid.

    Returns ``[H, W]`` float32 luminance in [0, 1].
    """
    from scipy.ndimage import map_coordinates

    image = np.asarray(image, dtype=np.float64)
    x_deg, y_deg = screen.deg_grid(shape)
    # template pixels per AE degree: Allen's warp maps arc length (distance x angle) linearly
    px_per_deg = screen.distance_cm * np.pi / 180.0 * screen.width_px / screen.width_cm
    col = TEMPLATE_SHAPE[1] / 2 + x_deg * px_per_deg
    row = TEMPLATE_SHAPE[0] / 2 - y_deg * px_per_deg
    r = row / TEMPLATE_SHAPE[0] * image.shape[0] - 0.5
    c = col / TEMPLATE_SHAPE[1] * image.shape[1] - 0.5
    # inside the scene's extent (pixel edges, not centres) sample it; the rest is mean gray
    inside = (r >= -0.5) & (r <= image.shape[0] - 0.5) & (c >= -0.5) & (c <= image.shape[1] - 0.5)
    out = map_coordinates(image, [r, c], order=1, mode="nearest")
    out = np.where(inside, out, GRAY * 255.0)
    return np.clip(out / 255.0, 0.0, 1.0).astype(np.float32)


def _load(folder: Path, key: str) -> np.ndarray:
    path = folder / FILES[key]
    if not path.is_file():
        raise InputError(f"{path}: missing file of the Allen natural-scene folder")
    return np.load(path)


def read_allen_natural_scenes(
    folder: str | os.PathLike | None = None,
    *,
    shape: tuple[int, int] = (40, 64),
    gray_frames: int = 10,
    image_frames: int = 8,
    n_validation: int = 10,
    seed: int = 0,
) -> xr.Dataset:
    """The Allen natural-scene recording as a session Dataset (choices in the module notes)."""
    folder = Path(folder) if folder is not None else shared_data("allen_natural_scenes")
    if not folder.is_dir():
        raise InputError(f"{folder}: the Allen natural-scene folder is not here")
    if gray_frames < 0 or image_frames < 1:
        raise InputError("gray_frames must be >= 0 and image_frames >= 1")
    scenes = _load(folder, "all")
    parts = []
    for split in ("train", "test"):
        inputs, outputs = _load(folder, f"{split}_in"), _load(folder, f"{split}_out")
        if len(inputs) != len(outputs):
            raise InputError(f"{folder / FILES[split + '_in']}: {len(inputs)} images but {len(outputs)} response rows")
        for row_in, row_out in zip(inputs, outputs):
            hit = np.flatnonzero((scenes == row_in).all(axis=1))
            if len(hit) != 1:
                raise InputError(f"{folder / FILES[split + '_in']}: an image is not (uniquely) in {FILES['all']}")
            parts.append((split, int(hit[0]), np.asarray(row_out, dtype=np.float64)))
    n_train = sum(1 for p in parts if p[0] == "train")
    if not 0 <= n_validation < n_train:
        raise InputError(f"n_validation must be in 0..{n_train - 1}, got {n_validation}")
    held = set(np.random.default_rng(seed).choice(n_train, n_validation, replace=False).tolist())
    side = int(round(np.sqrt(scenes.shape[1])))
    mean_dff = np.stack([p[2] for p in parts])  # [trial, neuron], dF/F in percent
    offset = np.maximum(0.0, -mean_dff.min(axis=0))
    per_trial = gray_frames + image_frames
    n_trials, n_neurons = mean_dff.shape
    frames = np.empty((n_trials * per_trial, *shape), dtype=np.float32)
    responses = np.empty((n_trials * per_trial, n_neurons), dtype=np.float32)
    image_id = np.empty(n_trials * per_trial, dtype=np.int64)
    tiers, ids = [], []
    for k, (split, img, dff) in enumerate(parts):
        a = k * per_trial
        frames[a : a + gray_frames] = GRAY
        frames[a + gray_frames : a + per_trial] = render_scene(scenes[img].reshape(side, side), shape)
        responses[a : a + gray_frames] = offset
        responses[a + gray_frames : a + per_trial] = dff + offset
        image_id[a : a + gray_frames] = -1
        image_id[a + gray_frames : a + per_trial] = img
        tiers.append("test" if split == "test" else ("validation" if k in held else "train"))
        ids.append(f"allen_scene_{img:03d}")
    n = len(frames)
    provenance = {
        "source": "Allen Brain Observatory, experiment container 511510667, natural scenes (session B, experiment 501498760)",
        "prepared_by": "psailamul/Allen_Brain_Observatory (31 x 31 scenes, AllenSDK mean_sweep_response)",
        "path": str(folder.resolve()),
        "reader": "twinlab.data.read_allen_natural_scenes",
        "settings": {"shape": list(shape), "gray_frames": gray_frames, "image_frames": image_frames,
                     "n_validation": n_validation, "seed": seed},
        "responses": "mean dF/F (%) over each presentation, averaged over repeats, on the image frames; 0 on gray; "
                     "plus the per-neuron response_offset",
        "not_used": "Allen_test_output_big.npy (random single presentations without image labels)",
        "behaviour": "not recorded in these files: constant 0",
    }
    ds = session_dataset(
        frames=frames,
        responses=responses,
        running_speed=np.zeros(n, np.float32),
        pupil_diameter=np.zeros(n, np.float32),
        pupil_center=np.zeros((n, 2), np.float32),
        trials={
            "tier": tiers,
            "domain": ["natural_image"] * n_trials,
            "stimulus_id": ids,
            "trial_frames": [per_trial] * n_trials,
            "source_split": [p[0] for p in parts],
        },
        neurons={
            "unit_id": np.arange(n_neurons),
            "area": ["V1"] * n_neurons,
            "depth_um": np.full(n_neurons, 275.0),
            "layer": ["L4"] * n_neurons,
            "cell_type": ["Cux2-CreERT2"] * n_neurons,
            "response_offset": offset,
        },
        attrs={
            "frame_rate_hz": 30.0,
            "screen": ALLEN_SCREEN,
            "mouse_id": "222420",
            "session_id": "allen_501498760_natural_scenes",
            "provenance": json.dumps(provenance),
            "pupil_center_units": "none (not recorded)",
            "pupil_diameter_units": "none (not recorded)",
        },
        frame_coords={"image_id": image_id},
    )
    ds["responses"].attrs["units"] = "dF/F (%) + response_offset"
    return ds
