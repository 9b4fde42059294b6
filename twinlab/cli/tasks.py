"""``twinlab train-multitask``, ``twinlab decode``, ``twinlab forecast``, ``twinlab compare-tasks``:
one model for neural prediction, behaviour decoding and neural forecasting (twinlab.tasks)."""

from __future__ import annotations

import click

from ..errors import InputError
from . import friendly, main

_FMT = {"float_format": lambda v: f"{v:.3f}"}


def _device(name: str):
    from ..train.distributed import pick_device

    return pick_device(name)


def _one_store(data):
    from ..train.loop import discover_stores

    stores = discover_stores([data])
    if len(stores) != 1:
        raise InputError(f"--data {data}: give one session store (found {len(stores)})")
    return stores[0]


@main.command("train-multitask")
@click.option("--data", "data", multiple=True, type=click.Path(),
              help="Session store (.zarr/.nc), or a folder of them (repeatable).")
@click.option("--config", "config_name", default=None, help="Training preset (paper, small, gpu) or .toml. [default: paper]")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a training setting (repeatable).")
@click.option("--architecture", "model", default=None, help="Architecture: a model preset or .toml (overrides the config's).")
@click.option("--architecture-set", "model_overrides", multiple=True, metavar="KEY=VALUE", help="Override an architecture setting.")
@click.option("--task-set", "task_overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a multi-task setting (activity_features, trace_taus_s, behavior_hidden, ...).")
@click.option("--mask-set", "mask_overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a masking setting (stimulus, behavior, predict, decode, forecast, behavior_weight).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder (new or empty; or the run to --resume).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--max-minutes", type=float, default=None, help="Stop (with a checkpoint) after this much wall-clock time.")
@click.option("--no-eval", is_flag=True, help="Skip the neural-prediction evaluation at the end.")
@click.option("--quiet", is_flag=True, help="No progress on the terminal.")
@friendly
def train_multitask(data, config_name, overrides, model, model_overrides, task_overrides, mask_overrides, out, resume,
                    max_minutes, no_eval, quiet) -> None:
    """Train one multi-task twin (prediction, decoding, forecasting by input masking) on --data."""
    import dataclasses

    from ..model.multitask import MultiTaskConfig
    from ..settings import parse_overrides
    from ..train import resolve_train_config
    from ..train.multitask import MaskingConfig, resume_multitask
    from ..train.multitask import train_multitask as run

    if resume:
        given = {"data": data, "config": config_name, "set": overrides, "architecture": model, "architecture-set": model_overrides,
                 "task-set": task_overrides, "mask-set": mask_overrides}
        used = [k for k, v in given.items() if v]
        if used:
            raise InputError(f"--resume continues a run with its own settings; drop {', '.join('--' + u for u in used)}")
        result = resume_multitask(out, progress=not quiet, evaluate=not no_eval, max_minutes=max_minutes)
    else:
        if not data:
            raise InputError("give the training sessions with --data STORE (repeatable, or a folder of stores)")
        cfg = resolve_train_config(config_name or "paper", overrides)
        if model:
            cfg = dataclasses.replace(cfg, model=model)
        tasks = MultiTaskConfig.from_dict(parse_overrides(task_overrides), "--task-set")
        masking = MaskingConfig.from_dict(parse_overrides(mask_overrides), "--mask-set")
        result = run(list(data), out, cfg, masking=masking, tasks=tasks, model_overrides=model_overrides,
                     progress=not quiet, evaluate=not no_eval, max_minutes=max_minutes)
    state = "stopped early at" if result.stopped_early else "finished"
    click.echo(f"{state} step {result.steps}/{result.total_steps} in {result.seconds:.1f} s; run folder {result.out}",
               err=True)


_COMMON = [
    click.option("--model", "model_path", required=True, type=click.Path(), help="A multi-task twin checkpoint."),
    click.option("--data", "data", required=True, type=click.Path(), help="A session store of one of its mice."),
    click.option("--mouse", default=None, help="The twin's session that serves --data (default: the store's own)."),
    click.option("--tier", default="test", show_default=True, help="Which trials to score."),
    click.option("--max-trials", type=int, default=None, help="Score at most this many trials (default all)."),
    click.option("--device", default="auto", show_default=True),
    click.option("--out", default=None, type=click.Path(file_okay=False),
                 help="Folder (new or empty) for the table (.csv), the figure (.png) and the full result (.nc)."),
]


def _common(fn):
    for opt in reversed(_COMMON):
        fn = opt(fn)
    return fn


@main.command()
@_common
@click.option("--quiet", is_flag=True, help="No progress bars or messages on stderr (results still go to stdout).")
@friendly
def decode(model_path, data, mouse, tier, max_trials, device, out, quiet) -> None:
    """Decode behaviour (running, pupil, gaze) from activity, with and without the stimulus."""
    from ..tasks import decode_behavior, decoding_table, write_decoding
    from ..tasks.report import check_out_folder

    if out:
        check_out_folder(out)
    dev = _device(device)
    result = decode_behavior(model_path, _one_store(data), session=mouse, tier=tier, device=dev, max_trials=max_trials,
                             amp=dev.type == "cuda", progress=not quiet)
    table = decoding_table(result)
    click.echo(table[["predictor", "behavior", "correlation", "r2", "chance_correlation"]].to_string(index=False, **_FMT))
    if out:
        for path in write_decoding(result, out).values():
            if not quiet:
                click.echo(f"wrote {path}", err=True)


@main.command()
@_common
@click.option("--horizon", required=True, type=float, help="How far ahead to forecast, in seconds.")
@click.option("--context", default=1.0, show_default=True, type=float, help="Seconds of past activity before the first cut.")
@click.option("--stride", default=0.5, show_default=True, type=float, help="Seconds between cut points within a trial.")
@click.option("--quiet", is_flag=True, help="No progress bars or messages on stderr (results still go to stdout).")
@friendly
def forecast(model_path, data, mouse, tier, max_trials, device, out, horizon, context, stride, quiet) -> None:
    """Forecast activity --horizon seconds ahead from its past, against linear AR and last-value baselines."""
    from ..tasks import forecast_activity, forecast_table, write_forecast
    from ..tasks.report import check_out_folder

    if out:
        check_out_folder(out)
    dev = _device(device)
    result = forecast_activity(model_path, _one_store(data), horizon, session=mouse, tier=tier, context_s=context,
                               stride_s=stride, device=dev, max_trials=max_trials, amp=dev.type == "cuda", progress=not quiet)
    table = forecast_table(result)
    click.echo(table[["predictor", "median_correlation", "mean_mse", "beats_last_value"]].to_string(index=False, **_FMT))
    if out:
        for path in write_forecast(result, out).values():
            if not quiet:
                click.echo(f"wrote {path}", err=True)


@main.command("compare-tasks")
@click.option("--model", "model_path", required=True, type=click.Path(), help="A multi-task twin checkpoint.")
@click.option("--twin", "twin_path", default=None, type=click.Path(),
              help="A prediction-only twin of the same mice (the neural-prediction specialist).")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(), help="Session store(s) (repeatable).")
@click.option("--horizon", default=0.5, show_default=True, type=float, help="Forecasting horizon in seconds.")
@click.option("--tier", default="test", show_default=True)
@click.option("--max-trials", type=int, default=None)
@click.option("--device", default="auto", show_default=True)
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Folder (new or empty) for comparison.csv/.png.")
@click.option("--quiet", is_flag=True, help="No progress bars or messages on stderr (results still go to stdout).")
@friendly
def compare_tasks(model_path, twin_path, data, horizon, tier, max_trials, device, out, quiet) -> None:
    """One multi-task twin against a specialist per task, on the same stores and tier."""
    from ..tasks import compare_tasks as run
    from ..tasks import write_comparison
    from ..tasks.report import check_out_folder
    from ..train.loop import discover_stores

    if out:
        check_out_folder(out)
    dev = _device(device)
    table = run(model_path, discover_stores(data), specialist=twin_path, horizon_s=horizon, tier=tier, device=dev,
                max_trials=max_trials, amp=dev.type == "cuda")
    cols = ["task", "item", "metric", "multitask", "specialist", "specialist_name", "multitask_better"]
    click.echo(table[cols].to_string(index=False, **_FMT))
    if out:
        for path in write_comparison(table, out).values():
            if not quiet:
                click.echo(f"wrote {path}", err=True)
