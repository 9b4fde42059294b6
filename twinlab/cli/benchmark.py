"""``twinlab benchmark``: score twins, the LN baseline and submission files on held-out test trials.

Every ``--model`` predicts the test tier of every ``--data`` store; the leaderboard (medians
over neurons per stimulus domain of single-trial correlation, correlation to average, FEVE
and CC_norm) is printed and, with ``--out``, written as ``leaderboard.csv``,
``leaderboard.png`` and ``scores.nc``. ``--submission`` also writes each model's per-trial
predictions, which ``--model FILE.nc`` scores later.
"""

from __future__ import annotations


import click

from ..storage import check_new_folder
from . import friendly, main


@main.command()
@click.option("--model", "models", multiple=True, required=True,
              help="A twin checkpoint (.safetensors), 'ln' (the linear-nonlinear baseline, fitted on each store's "
                   "train tier), 'oracle' (virtual-mouse sessions: the mouse itself) or a submission file "
                   "(.nc/.zarr) to score (repeatable).")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(),
              help="Session store (.zarr/.nc) with a test tier, or a folder of them (repeatable).")
@click.option("--track", type=click.Choice(["stimulus", "behavior"]), default="stimulus", show_default=True,
              help="stimulus: behaviour held at its train-tier median, no eye position; behavior: as recorded.")
@click.option("--skip", default=50, show_default=True, type=int,
              help="Frames at each trial's start not scored (50 frames = 1.67 s at 30 Hz; a short trial keeps its last frame).")
@click.option("--submission", default=None, type=click.Path(),
              help="Also write the per-trial predictions: one .nc/.zarr file (one model, one store) or a folder "
                   "(MODEL__SESSION.nc for each).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder (new or empty) for leaderboard.csv, leaderboard.png and scores.nc.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@friendly
def benchmark(models, data, track, skip, submission, out, device, quiet) -> None:
    """Put models on a Sensorium-style leaderboard: scores per stimulus domain on the test tier."""
    from ..benchmark import format_leaderboard, run_benchmark, write_leaderboard
    from ..train.distributed import pick_device
    from ..train.loop import discover_stores

    if out:
        check_new_folder(out)
    stores = discover_stores(data)
    result = run_benchmark(list(models), stores, track=track, skip=skip, device=pick_device(device),
                           submission=submission, progress=not quiet)
    click.echo(format_leaderboard(result.table, None))
    for path in result.submissions:
        click.echo(f"wrote {path}", err=True)
    if out:
        for path in write_leaderboard(result.table, result.scores, out).values():
            click.echo(f"wrote {path}", err=True)
