"""Shared fixtures of the MEI tests: a virtual mouse of one imaging site and a tiny twin of it.

The twin is trained on the CPU in seconds (300 AdamW steps on two minutes of natural
movies), so the mouse is made learnable at that budget, and says how:

* trial-to-trial noise almost off (tiny events, no latent gain, no scan resampling): the
  twin learns from the expected responses rather than from a few noisy repeats;
* the gaze held still (no saccades or drift): the twin need not learn its eye first;
* one imaging site: V1 neurons whose RFs cluster within +-12 x +-8 deg of the monitor centre
  (as in one two-photon field of view), where the twin's readouts start
  (``readout.init_position_range=0.15``), since a few hundred steps move a readout position
  only a few degrees;
* receptive fields as coarse as the twin's grid: frames are 18 x 32 (3.75 deg/px) and the
  retina 16 x 24 without pooling, so the mouse's RFs are large (sigma 8-24 deg) and of low
  spatial frequency (0.01-0.04 cpd).

Running, pupil and their gain on the responses, and the cell classes (simple, complex,
direction selective, untuned) are the defaults. Torch runs on one thread.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

H, W = 18, 32
CLIP_FRAMES = 12
TWIN_OVERRIDES = [f"frame_height={H}", f"frame_width={W}", "perspective.retina_height=16",
                  "perspective.retina_width=24", "feedforward.pools=[1,1,1]", "readout.init_position_range=0.15"]
TRAIN = ["optimizer=adamw", "lr=0.003", "clip_mode=norm", "clip_value=1.0", "epochs=1", "iterations=300",
         f"clip_frames={CLIP_FRAMES}", "burn_in=3", "validate_every=0", "checkpoint_every=0", "log_every=0"]


def imaging_site_mouse(seed: int = 5):
    """A MouseConfig as the module docstring says."""
    from twinlab.sim import BehaviorConfig, MouseConfig, NoiseConfig, PopulationConfig
    from twinlab.sim.config import AreaConfig

    site = AreaConfig("V1", 1.0, azimuth_deg=(-12.0, 12.0), elevation_deg=(-8.0, 8.0), scatter_deg=2.0,
                      rf_sigma_deg=14.0, sf_cpd=0.02)
    population = PopulationConfig(areas=("V1",), area_overrides=(site,), sf_range_cpd=(0.01, 0.04),
                                  rf_sigma_range_deg=(8.0, 24.0))
    noise = NoiseConfig(event_size=0.05, amplitude_cv=0.0, latent_factors=0, private_sd=0.0, scan_hz=0.0)
    still = BehaviorConfig(eye_drift_sd_deg=(0.0, 0.0), saccade_rate_hz=0.0, saccade_rate_running_hz=0.0,
                           saccade_sd_deg=(0.0, 0.0), eye_offset_sd_deg=0.0)
    return dataclasses.replace(MouseConfig(seed=seed), population=population, noise=noise, behavior=still)


@pytest.fixture(scope="session")
def trained_twin(tmp_path_factory):
    """``{"checkpoint", "store", "shape", "clip_frames"}`` of a tiny twin of :func:`imaging_site_mouse`."""
    from twinlab.sim import SessionConfig, VirtualMouse, record_session
    from twinlab.train import resolve_train_config, train_individual

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("mei_twin")
    seed = 5
    mouse = VirtualMouse(imaging_site_mouse(seed), n_neurons=48)
    session = SessionConfig(minutes=2.0, trial_s=5.0, validation_fraction=0.1, test_domains=(), height_px=H,
                            width_px=W)
    store = record_session(mouse, session, root / "mouse.zarr", session_id="m", seed=seed, progress=False)
    train_individual(store, root / "twin", resolve_train_config("small", TRAIN), progress=False, evaluate=False,
                     model_overrides=TWIN_OVERRIDES)
    return {"checkpoint": root / "twin" / "model.safetensors", "store": store, "shape": (H, W),
            "clip_frames": CLIP_FRAMES}
