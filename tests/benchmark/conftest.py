"""Sessions for the benchmark tests: planted LN neurons (known filters, known behaviour gain),
one virtual mouse (twinlab.sim), and an untrained twin of that mouse's session."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark_sessions import N_NEURONS, POOL, SIM_TESTS, make_twin, planted_rates


@pytest.fixture(scope="session")
def planted(tmp_path_factory):
    """A session whose neurons are LN neurons: softplus(filter . grid[t - 2] + gain x running).

    Train: 40 trials x 40 frames, validation 4 x 40; test: two stimuli (domains ``noise_a``,
    ``noise_b``) x 6 repeats x 60 frames, each repeat with its own running. Responses are the
    expected rates times gamma noise (mean 1, CV 0.5).
    """
    from twinlab.data import session_dataset, write_session

    rng = np.random.default_rng(0)
    filters = rng.standard_normal((N_NEURONS, 12))
    filters /= np.linalg.norm(filters, axis=1, keepdims=True)

    def running(t):
        r = np.zeros(t)
        for i in range(1, t):
            r[i] = 0.9 * r[i - 1] + rng.normal(0, 2.0)
        return np.abs(r + rng.uniform(0, 10))

    tests = [rng.uniform(0, 1, (60, 12)) for _ in range(2)]
    plan = [("train", "noise", f"train{i}", rng.uniform(0, 1, (40, 12))) for i in range(40)]
    plan += [("validation", "noise", f"val{i}", rng.uniform(0, 1, (40, 12))) for i in range(4)]
    plan += [("test", f"noise_{'ab'[k]}", f"test{k}", tests[k]) for r in range(6) for k in range(2)]
    runs = [running(len(b)) for *_, b in plan]
    train_run = np.concatenate([r for (tier, *_), r in zip(plan, runs) if tier == "train"])
    mean_run, sd_run = float(train_run.mean()), float(train_run.std())
    rates = [planted_rates(b, r, filters, mean_run, sd_run) for (*_, b), r in zip(plan, runs)]
    resp = [q * rng.gamma(4.0, 0.25, q.shape) for q in rates]
    blocks = np.concatenate([b for *_, b in plan])
    frames = np.kron(blocks.reshape(-1, 3, 4), np.ones((1, POOL, POOL)))  # block-constant frames: pooled = grid
    n = len(blocks)
    ds = session_dataset(
        frames=frames, responses=np.concatenate(resp), running_speed=np.concatenate(runs),
        pupil_diameter=np.full(n, 3.0), pupil_center=np.zeros((n, 2)),
        trials={"tier": [p[0] for p in plan], "domain": [p[1] for p in plan], "stimulus_id": [p[2] for p in plan],
                "trial_frames": [len(p[3]) for p in plan]},
        neurons={"unit_id": np.arange(N_NEURONS) + 100},
        attrs={"frame_rate_hz": 30.0, "mouse_id": "P1", "session_id": "s0"})
    path = write_session(ds, tmp_path_factory.mktemp("planted") / "P1_s0.nc", progress=False)
    test_rows = [i for i, p in enumerate(plan) if p[0] == "test"]
    return {"path": path, "filters": filters, "truth": [rates[i].astype(np.float32) for i in test_rows]}


@pytest.fixture(scope="session")
def sim_store(tmp_path_factory):
    """One virtual mouse: 16 neurons, half a minute of natural movies, test block of 1-s trials x 3 repeats."""
    from twinlab.sim import record_cohort, resolve_cohort

    torch.set_num_threads(1)
    cfg = resolve_cohort("foundation_cohort", ["n_mice=1", "n_neurons=16", "minutes=0.5", "session.trial_s=2", SIM_TESTS])
    return record_cohort(cfg, tmp_path_factory.mktemp("sim") / "mice", progress=False)[0]


@pytest.fixture(scope="session")
def twin_ckpt(sim_store, tmp_path_factory):
    return make_twin(sim_store, tmp_path_factory.mktemp("twin") / "twin.safetensors")
