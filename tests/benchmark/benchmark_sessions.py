"""Helpers of the benchmark tests (a module of its own: every test folder has a ``conftest``)."""

from __future__ import annotations

import numpy as np

H, W, POOL, LAG = 12, 16, 4, 2        # frames 12 x 16, the LN pools 4 x 4 -> a 3 x 4 grid
N_NEURONS, BETA = 6, 0.8               # neurons; log-gain per std of running speed
SIM_TESTS = ('session.test_domains=[{name="natural_movie", preset="natural_movies", n_stimuli=2, repeats=3, '
             'max_trial_s=1.0, overrides=["source=photos"]}, {name="gabor", preset="gabor", n_stimuli=1, '
             'repeats=3, max_trial_s=1.0}]')


def _softplus(x):
    return np.logaddexp(0.0, x)


def planted_rates(blocks: np.ndarray, running: np.ndarray, filters: np.ndarray, mean_run: float, sd_run: float):
    """Expected responses ``[T, N]`` of the planted neurons for one trial: blocks ``[T, 12]`` (the
    3 x 4 grid's luminance), running ``[T]``; each neuron sees the grid ``LAG`` frames back."""
    x = np.zeros_like(blocks)
    x[LAG:] = blocks[:-LAG] - 0.5                    # gray before the trial began
    drive = 4.0 * x @ filters.T
    return _softplus(drive + BETA * (running[:, None] - mean_run) / sd_run)


def make_twin(store, path, n_neurons=None, key=None):
    """An untrained small twin with a readout for ``store``'s session (or ``n_neurons`` other neurons)."""
    from twinlab.data import open_session, session_statistics
    from twinlab.data.clips import response_scale
    from twinlab.model import SessionInfo, Twin, TwinConfig, save_checkpoint
    from twinlab.train.evaluate import session_key
    from twinlab.train.loop import set_statistics

    ds = open_session(store)
    info = SessionInfo.from_dataset(ds, key=key or session_key(ds.attrs))
    stats = session_statistics(ds)
    ds.close()
    if n_neurons is not None:
        info = SessionInfo(info.key, n_neurons, info.screen, None, info.mouse_id)
        stats = {**stats, "responses": {k: v[:n_neurons] for k, v in stats["responses"].items()}}
    twin = Twin(TwinConfig.small(), [info], seed=0)
    set_statistics(twin, info.key, stats, response_scale(stats))
    return save_checkpoint(twin, path)
