"""A Sensorium-style benchmark: which twin to trust, as a leaderboard.

Every model predicts the held-out test tier of every session store; the predictions are
scored per stimulus domain with single-trial correlation (first 50 frames skipped),
correlation to the average over repeats, FEVE and CC_norm, and the medians over neurons go
on a leaderboard (CSV and a plot). Two tracks: ``stimulus`` (behaviour held at the median,
no eye position) and ``behavior`` (the recorded behaviour). Models: twin checkpoints, the
linear-nonlinear baseline ``ln``, and submission files (per-trial predictions written by any
model, anywhere, scored later).

>>> result = run_benchmark(["runs/a/model.safetensors", "ln"], ["mouse1.zarr"], track="stimulus")
>>> write_leaderboard(result.table, result.scores, "board/")
>>> write_submission(predictions, open_session("mouse1.zarr"), "mine.nc", track="stimulus", model="mine")

Modules: ``score`` (the scores), ``tracks``, ``submission``, ``baselines`` (LN), ``predictors``
(twin / LN / submission behind one interface), ``run`` (one benchmark), ``leaderboard``.
"""

from .baselines import LNConfig, LNModel, fit_ln
from .leaderboard import RANK_BY, format_leaderboard, leaderboard_table, plot_leaderboard, write_leaderboard
from .predictors import LNPredictor, OraclePredictor, Predictor, SubmissionPredictor, TwinPredictor, resolve_predictors
from .run import BenchmarkResult, run_benchmark
from .score import METRICS, SKIP_FRAMES, score_predictions, score_store, summarize_scores, tier_trials
from .submission import is_submission, make_submission, read_submission, submission_predictions, write_submission
from .tracks import TRACKS, behavior_medians, track_view

__all__ = [
    "BenchmarkResult",
    "LNConfig",
    "LNModel",
    "LNPredictor",
    "METRICS",
    "OraclePredictor",
    "Predictor",
    "RANK_BY",
    "SKIP_FRAMES",
    "SubmissionPredictor",
    "TRACKS",
    "TwinPredictor",
    "behavior_medians",
    "fit_ln",
    "format_leaderboard",
    "is_submission",
    "leaderboard_table",
    "make_submission",
    "plot_leaderboard",
    "read_submission",
    "resolve_predictors",
    "run_benchmark",
    "score_predictions",
    "score_store",
    "submission_predictions",
    "summarize_scores",
    "tier_trials",
    "track_view",
    "write_leaderboard",
    "write_submission",
]
