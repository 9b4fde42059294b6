"""Real cortex: a twin trained on the Allen natural-scene session against a linear-nonlinear
baseline, both scored on the 18 held-out scenes against the noise ceiling.

Data (``../shared/data/allen_natural_scenes``, see :mod:`twinlab.data.allen`): 212 V1 neurons
(Cux2-CreERT2 x Ai93, 275 um), each scene's mean dF/F averaged over its ~50 presentations;
90 scenes train, 10 validation, 18 test (the preparer's split). Both models see the same
training scenes and are scored the same way.

* Twin: ``twinlab.train.train_individual`` on the session store (the ``small`` architecture
  with 40 x 64 input frames; clips of one whole trial, 10 gray frames of burn-in, so only the
  8 scene frames are scored; Poisson loss). Its response to a scene = the mean predicted
  response over the 8 scene frames.
* LN baseline, per neuron: ridge regression on the scene's pixels as shown (the 40 x 64
  render, 2 x 2 block-averaged to 20 x 32, standardised), the ridge strength chosen per neuron
  by leave-one-out error over the 100 train + validation scenes, then a softplus output
  nonlinearity ``a * softplus(b * x + c)`` fitted per neuron by least squares.

Scores over the 18 test scenes, per neuron: CC_abs = Pearson correlation of the model's and
the recorded trial-averaged responses. The noise ceiling: CC_max = sqrt(1 - (sigma^2 / R) /
Var(y_mean)) with R = 50 repeats and sigma^2 the single-presentation noise variance. The
folder holds no single presentations of the test scenes (``Allen_test_output_big.npy`` is
900 single presentations drawn from all 118 scenes without their labels; see
:mod:`twinlab.data.allen`), so sigma^2 is bounded, not measured: the variance of those single
presentations (signal plus noise) is an upper bound on it, which gives a lower bound on
CC_max, hence ``CC_norm`` between ``CC_abs`` (ceiling 1) and ``CC_abs / CC_max_low``; the
variance decomposition sigma^2 ~ (Var(single) - Var(means over all scenes)) * R / (R - 1)
gives the point estimate reported as ``cc_norm``.

    .venv/bin/python analyses/allen_real_neurons.py [--out allen_results] [--steps 600] [--core models/foundation.safetensors]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twinlab import metrics  # noqa: E402
from twinlab.data import open_session, read_allen_natural_scenes, session_statistics, trial_table, write_session  # noqa: E402
from twinlab.data.clips import response_scale  # noqa: E402
from twinlab.model import load_checkpoint  # noqa: E402
from twinlab.paths import shared_data  # noqa: E402
from twinlab.train import finetune, predict_trials, resolve_train_config, train_individual  # noqa: E402

REPEATS = 50  # presentations per scene in the Brain Observatory's natural-scene stimulus
GRAY_FRAMES = 10


def scene_table(ds) -> pd.DataFrame:
    """One row per trial (scene) with its tier and first scene frame."""
    t = trial_table(ds)
    t["scene_start"] = t["trial_start"] + GRAY_FRAMES
    return t


def recorded(ds, table: pd.DataFrame) -> np.ndarray:
    """``[scene, neuron]`` mean dF/F (with the store's non-negative offset) per scene."""
    resp = np.asarray(ds["responses"].values)
    return np.stack([resp[int(a)] for a in table["scene_start"]])


def pixels(ds, table: pd.DataFrame) -> np.ndarray:
    """``[scene, 640]`` the scene as shown, 2 x 2 block-averaged."""
    frames = np.asarray(ds["frames"].values, dtype=np.float64)
    img = np.stack([frames[int(a)] for a in table["scene_start"]])
    s, h, w = img.shape
    return img.reshape(s, h // 2, 2, w // 2, 2).mean((2, 4)).reshape(s, -1)


def ridge_loo(x: np.ndarray, y: np.ndarray, lambdas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-neuron ridge with the strength picked by leave-one-out error; -> weights, bias, lambda."""
    xm, ym = x.mean(0), y.mean(0)
    xc, yc = x - xm, y - ym
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    uty = u.T @ yc
    best_err = np.full(y.shape[1], np.inf)
    best_lam = np.zeros(y.shape[1])
    for lam in lambdas:
        d = s**2 / (s**2 + lam)
        fit = u @ (d[:, None] * uty)
        hat = (u**2 * d).sum(1) + 1.0 / len(x)  # leverage, with the intercept
        err = (((yc - fit) / (1 - hat)[:, None]) ** 2).mean(0)
        better = err < best_err
        best_err[better], best_lam[better] = err[better], lam
    w = np.zeros((x.shape[1], y.shape[1]))
    for lam in np.unique(best_lam):
        cols = best_lam == lam
        w[:, cols] = vt.T @ ((s / (s**2 + lam))[:, None] * uty[:, cols])
    return w, ym - xm @ w, best_lam


def fit_softplus(lin: np.ndarray, y: np.ndarray, steps: int = 300) -> np.ndarray:
    """Per neuron ``a * softplus(b * lin + c)`` by least squares; -> params ``[3, neuron]``."""
    lin_t = torch.tensor(lin, dtype=torch.float64)
    y_t = torch.tensor(y, dtype=torch.float64)
    sd = lin_t.std(0).clamp_min(1e-9)
    z = (lin_t - lin_t.mean(0)) / sd
    p = torch.zeros(3, y.shape[1], dtype=torch.float64)
    p[0] = y_t.std(0).clamp_min(1e-6)
    p[1] = 1.0
    p[2] = 0.0
    p.requires_grad_(True)
    opt = torch.optim.LBFGS([p], max_iter=steps, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        out = ((p[0] * torch.nn.functional.softplus(p[1] * z + p[2]) - y_t) ** 2).mean(0).sum()
        out.backward()
        return out

    opt.step(loss)
    return p.detach().numpy(), lin_t.mean(0).numpy(), sd.numpy()


def ln_baseline(ds, table: pd.DataFrame) -> np.ndarray:
    """Predicted ``[test scene, neuron]`` responses of the per-neuron LN model."""
    x, y = pixels(ds, table), recorded(ds, table)
    fit = (table["tier"] != "test").to_numpy()
    mu, sd = x[fit].mean(0), x[fit].std(0) + 1e-6
    xs = (x - mu) / sd
    w, b, lam = ridge_loo(xs[fit], y[fit], np.logspace(0, 5, 21))
    lin = xs @ w + b
    p, m, s = fit_softplus(lin[fit], y[fit])
    z = (lin[~fit] - m) / s
    return p[0] * np.log1p(np.exp(p[1] * z + p[2]))


def twin_predictions(model: Path, ds, table: pd.DataFrame, store: Path) -> np.ndarray:
    twin = load_checkpoint(model)
    key = next(iter(twin.sessions))
    test = table.index[table["tier"] == "test"].to_numpy()
    scale = response_scale(session_statistics(store))
    preds = predict_trials(twin, key, ds, test, scale=scale)
    return np.stack([p[GRAY_FRAMES:].mean(0) for p in preds])


def noise_ceiling(folder: Path, y_test: np.ndarray, y_all: np.ndarray) -> dict[str, np.ndarray]:
    """Bounds and estimate of CC_max over the test scenes (see the module docstring)."""
    single = np.load(folder / "Allen_test_output_big.npy")  # random single presentations, all scenes
    var_single = single.var(0, ddof=1)
    var_test = y_test.var(0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.sqrt(np.clip(1 - (var_single / REPEATS) / var_test, 0, 1))
        noise = np.clip((var_single - y_all.var(0, ddof=1)) * REPEATS / (REPEATS - 1), 0, None)
        est = np.sqrt(np.clip(1 - (noise / REPEATS) / var_test, 0, 1))
    return {"cc_max_low": low, "cc_max_est": est}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="allen_results", help="folder for the tables and the trained twin")
    ap.add_argument("--steps", type=int, default=600, help="training steps of the twin")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="training setting KEY=VALUE")
    ap.add_argument("--core", default=None, help="a trained twin checkpoint: transfer its frozen core instead of "
                                                 "training everything from scratch")
    args = ap.parse_args()
    folder = shared_data("allen_natural_scenes")
    if not folder.is_dir():
        print(f"skipping: the Allen natural-scene data is not at {folder} (set TWINLAB_DATA)")
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="allen_"))
    try:
        store = work / "allen.nc"
        write_session(read_allen_natural_scenes(folder), store, progress=False)
        ds = open_session(store).load()
        table = scene_table(ds)
        y = recorded(ds, table)
        test = (table["tier"] == "test").to_numpy()

        t0 = time.perf_counter()
        iterations = 50
        cfg = resolve_train_config("small", [
            f"epochs={max(1, args.steps // iterations)}", f"iterations={iterations}", "clip_frames=18",
            f"burn_in={GRAY_FRAMES}", "batch_size=8", "validate_every=0", "log_every=50", "checkpoint_every=0",
            *args.overrides])
        run = out / "twin_run"
        if run.exists():
            shutil.rmtree(run)
        if args.core:
            finetune(args.core, store, run, cfg, progress=True, evaluate=False)
        else:
            train_individual(store, run, cfg, model_overrides=["frame_height=40"], progress=True, evaluate=False)
        train_s = time.perf_counter() - t0
        p_twin = twin_predictions(run / "model.safetensors", ds, table, store)
        t1 = time.perf_counter()
        p_ln = ln_baseline(ds, table)
        ln_s = time.perf_counter() - t1

        ceiling = noise_ceiling(folder, y[test], y)
        rows = {}
        for name, p in (("twin", p_twin), ("ln_baseline", p_ln)):
            cc_abs = metrics.correlation(p, y[test])
            with np.errstate(divide="ignore", invalid="ignore"):
                rows[name] = {
                    "cc_abs": cc_abs,
                    "cc_norm": np.where(ceiling["cc_max_est"] > 0, cc_abs / ceiling["cc_max_est"], np.nan),
                    "cc_norm_upper": np.where(ceiling["cc_max_low"] > 0, cc_abs / ceiling["cc_max_low"], np.nan),
                }
        per_neuron = pd.DataFrame({"unit_id": ds["unit_id"].values, "cc_max_low": ceiling["cc_max_low"],
                                   "cc_max_est": ceiling["cc_max_est"],
                                   **{f"{m}_{k}": v for m, r in rows.items() for k, v in r.items()}})
        per_neuron.to_csv(out / "allen_per_neuron.csv", index=False, float_format="%.5g")
        summary = {
            "n_neurons": int(len(per_neuron)), "n_test_scenes": int(test.sum()), "repeats": REPEATS,
            "median_cc_max_low": float(np.nanmedian(ceiling["cc_max_low"])),
            "median_cc_max_est": float(np.nanmedian(ceiling["cc_max_est"])),
            "twin_train_seconds_cpu": round(train_s, 1), "ln_fit_seconds_cpu": round(ln_s, 2),
            "train_config": cfg.to_dict(), "core": args.core,
        }
        for m, r in rows.items():
            for k, v in r.items():
                summary[f"{m}_median_{k}"] = float(np.nanmedian(v))
            summary[f"{m}_fraction_cc_abs_positive"] = float(np.mean(r["cc_abs"] > 0))
        wins = np.nanmean(rows["twin"]["cc_abs"] > rows["ln_baseline"]["cc_abs"])
        summary["fraction_neurons_twin_beats_ln"] = float(wins)
        (out / "allen_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        print("\nAllen natural scenes, 18 held-out scenes, 212 V1 neurons (medians over neurons)")
        print(f"  noise ceiling CC_max: estimate {summary['median_cc_max_est']:.3f}, lower bound {summary['median_cc_max_low']:.3f}")
        for m in rows:
            print(f"  {m:<12} CC_abs {summary[m + '_median_cc_abs']:.3f}  CC_norm {summary[m + '_median_cc_norm']:.3f}"
                  f" (at most {summary[m + '_median_cc_norm_upper']:.3f})")
        print(f"  twin better than LN for {100 * wins:.0f} % of neurons; twin trained in {train_s:.0f} s on the CPU")
        print(f"wrote {out / 'allen_summary.json'} and {out / 'allen_per_neuron.csv'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
