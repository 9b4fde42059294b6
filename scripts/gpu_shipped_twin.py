#!/usr/bin/env python3
"""One call of the shipped twin's training: continue models/twin.* on one GPU within --budget-minutes.

On one CUDA machine (16 cores, one GPU), in about ``--budget-minutes`` of wall clock
(``twinlab.shipped.run_job`` does the work; docs/shipped_twin.md):

1. record the seeded virtual cohorts ``shipped_cohort`` (8 foundation mice x 60 min x 1000
   neurons) and ``shipped_new_mice`` (2 held-out mice, the full test block), ``--procs`` mice at a
   time, responses on the GPU (the new mice while the core trains);
2. continue the foundation run from ``models/twin.safetensors`` + ``models/twin_state.safetensors``
   (weights, AdamW state, step, schedule, sampler position), or start it from ``models/shipped.toml``,
   for what the budget leaves; one CUDA graph per step;
3. transfer the frozen core to the new mice (``--transfer-minutes``), test CC_norm per domain;
4. Fig. 4 numbers of new mouse N00 against its noise-free truth;
5. write to ``--out`` (5 files, each < 16 MiB): ``twin.safetensors``, ``twin_state.safetensors``,
   ``twin.json`` (the card; its history gets this call), ``TWIN_CARD.md`` and ``job.log``.
   Copy the first four into ``models/`` and commit them.

Run from the repository root without installing twinlab (carry the zarr wheels in ``.whl``)::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl && export PYTHONPATH=/tmp/site:.; python3 scripts/gpu_shipped_twin.py --out $OUT --budget-minutes 8.5

``--quick`` is the same job at toy sizes on the CPU (about a minute).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from joblog import JOB, announce, run_main, say  # noqa: E402


def settings(args):
    from twinlab.shipped import QUICK, JobSettings

    base = dict(QUICK) if args.quick else {}
    given = {k: v for k, v in {"models": args.models, "work": args.work, "budget_minutes": args.budget_minutes,
                               "batch_size": args.batch, "transfer_minutes": args.transfer_minutes,
                               "fig4_mice": args.fig4_mice, "procs": args.procs, "startup_s": args.startup_s,
                               "horizon_steps": args.horizon, "device": args.device, "latest": args.latest,
                               "commit": args.commit, "foundation_eval_mice": args.foundation_eval_mice,
                               "refit_minutes": args.refit_minutes}.items()
             if v is not None}
    if args.train_only:
        given["score"] = False
    if args.cold_transfer:
        given["warm_transfer"] = False
    return dataclasses.replace(JobSettings(), **{**base, **given})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT", "shipped_out"))
    ap.add_argument("--models", default=None, help="Folder of the committed files (default: models/).")
    ap.add_argument("--work", default=None, help="Scratch folder (default /tmp/twinlab_shipped).")
    ap.add_argument("--budget-minutes", type=float, default=None, help="Wall clock of the whole call (default 8.5).")
    ap.add_argument("--batch", type=int, default=None, help="Clips per mouse per step of a fresh start (default 16).")
    ap.add_argument("--horizon", type=int, default=None, help="Schedule horizon (steps) of a fresh start (default 20000).")
    ap.add_argument("--transfer-minutes", type=float, default=None, help="Transfer training (default 1).")
    ap.add_argument("--fig4-mice", type=int, default=None, help="New mice with Fig. 4 numbers (default 1).")
    ap.add_argument("--procs", type=int, default=None, help="Mice recorded at a time (default 4).")
    ap.add_argument("--startup-s", type=float, default=None, help="Reserved before the first step (default 60).")
    ap.add_argument("--train-only", action="store_true",
                    help="Train the core only (no transfer, no scoring); the next scored call's card takes it over.")
    ap.add_argument("--latest", default=None, help="Where every call also leaves its files (default <work>/latest); "
                                                   "a call continues from there when it is further on than --models.")
    ap.add_argument("--commit", default=None, help="The commit the card records (default: the checkout's).")
    ap.add_argument("--foundation-eval-mice", type=int, default=None,
                    help="Foundation mice scored on their own test blocks (default 1).")
    ap.add_argument("--cold-transfer", action="store_true", help="Start the new mice afresh instead of continuing.")
    ap.add_argument("--refit-minutes", type=float, default=None,
                    help="Control: also fit the first foundation mouse afresh on the frozen core for this long.")
    ap.add_argument("--fig3", action="store_true",
                    help="Instead of training: Fig. 3 of the twin (transfer vs individual twins of the new mice at "
                         "--fig3-amounts minutes); writes the card with the bar's Fig. 3 line and fig3.csv/png.")
    ap.add_argument("--fig3-amounts", default="2,6,18,54", help="Minutes of new-mouse data (default 2,6,18,54).")
    ap.add_argument("--fig3-minutes", type=float, default=None, help="Wall clock of the Fig. 3 runs (default: "
                                                                     "the budget less 1.5 min).")
    ap.add_argument("--fig3-procs", type=int, default=8, help="Fig. 3 runs at a time (default 8).")
    ap.add_argument("--fig3-mice", type=int, default=2, help="New mice in Fig. 3 (default 2).")
    ap.add_argument("--device", default=None)
    ap.add_argument("--quick", action="store_true", help="CPU smoke test at toy sizes.")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    JOB.file = out / "job.log"
    from twinlab.shipped import check_outputs, run_job

    s = settings(args)
    announce(s.device, budget=f"{s.budget_minutes:g} min", models=s.models or "models/")
    if args.fig3:
        from twinlab.shipped.fig3 import Fig3Settings, run_fig3

        amounts = tuple(float(a) for a in args.fig3_amounts.split(",") if a.strip())
        minutes = args.fig3_minutes if args.fig3_minutes is not None else max(0.1, s.budget_minutes - 1.5)
        card = run_fig3(s, Fig3Settings(amounts, minutes, args.fig3_procs, args.fig3_mice), out, say=say,
                        started=JOB.t0)
        row = next(r for r in card["bar"] if r["key"] == "foundation_beats_individual")
        say(f"fig3 bar: {row['value']} amounts where the transfer wins ({row['note']}): "
            f"{'pass' if row['passes'] else 'FAIL'}; job done in {JOB.elapsed():.0f} s; copy twin.json and TWIN_CARD.md "
            "into models/, fig3.csv / fig3_summary.csv / fig3.png into analyses/results/")
        check_outputs(out)
        return
    card = run_job(s, out, say=say, started=JOB.t0)
    if not s.score:
        say(f"training only: step {card['steps']}; files in {out} (and {s.latest or s.work + '/latest'}); "
            f"job done in {JOB.elapsed():.0f} s")
        check_outputs(out)
        return
    for r in card["bar"]:
        ok = {True: "pass", False: "FAIL", None: "n/a"}[r["passes"]]
        value = "n/a" if r["value"] is None else f"{r['value']:.3f}"
        say(f"  bar: {r['label']:<62} {r['target']:>8}  {value:>7}  {ok}")
    say(f"card: {card['steps']} of {card['total_steps']} steps, {card['gpu_minutes']:.1f} GPU-minutes over "
        f"{card['calls']} call(s); meets the bar: {card['meets_bar']}")
    say(f"job done in {JOB.elapsed():.0f} s; files in {out}: copy twin.safetensors, twin_state.safetensors, twin.json, "
        "TWIN_CARD.md into models/")
    check_outputs(out)


if __name__ == "__main__":
    run_main(main)
