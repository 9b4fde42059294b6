"""``twinlab train``, ``twinlab finetune`` and ``twinlab evaluate``: fitting twins and scoring them.

``python -m twinlab train ...`` works under ``torchrun --nproc-per-node N`` (one process per
GPU, DistributedDataParallel); only rank 0 writes and prints.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from ..errors import InputError
from ..storage import check_new_folder
from . import friendly, main

_RUN_OPTIONS = [
    click.option("--config", "config_name", default=None,
                 help="Training preset (paper, small, gpu) or .toml; a models/NAME.toml gives the paper's recipe for that architecture. [default: paper]"),
    click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                 help="Override a training setting (repeatable), e.g. epochs=20 or schedule.warmup=0.1."),
    click.option("--architecture-set", "model_overrides", multiple=True, metavar="KEY=VALUE",
                 help="Override an architecture setting (repeatable), e.g. recurrent.kind=conv_lstm."),
    click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder (new or empty; or the run to --resume)."),
    click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint."),
    click.option("--max-minutes", type=float, default=None, help="Stop (with a checkpoint) after this much wall-clock time."),
    click.option("--no-eval", is_flag=True, help="Skip the test-tier evaluation at the end."),
    click.option("--quiet", is_flag=True, help="No progress on the terminal (the run folder's train.log still has it)."),
]


def _run_options(fn):
    for opt in reversed(_RUN_OPTIONS):
        fn = opt(fn)
    return fn


def _config(config_name, overrides, model):
    from ..train import resolve_train_config

    cfg = resolve_train_config(config_name or "paper", overrides)
    if model:
        cfg = dataclasses.replace(cfg, model=model)
    return cfg


def _report(result) -> None:
    from ..train.distributed import env_world

    if env_world()[0] != 0:
        return
    s = result.summary
    state = "stopped early at" if result.stopped_early else "finished"
    click.echo(f"{state} step {result.steps}/{result.total_steps} in {result.seconds:.1f} s; run folder {result.out}", err=True)
    for row in s.get("evaluation", []):
        if row["session"] == "all" or len({r["session"] for r in s["evaluation"]}) == 1:
            click.echo(f"  {row['domain']:<14} median CC_norm {row['median_cc_norm']:.3f}  "
                       f"median correlation {row['median_correlation']:.3f}  ({row['n_neurons']} neurons)")


def _no_settings_on_resume(**given) -> None:
    used = [name for name, value in given.items() if value]
    if used:
        raise InputError(f"--resume continues a run with its own settings; drop {', '.join('--' + u.replace('_', '-') for u in used)}")


@main.command()
@click.option("--data", "data", multiple=True, type=click.Path(),
              help="Session store (.zarr/.nc), or a folder of them (repeatable): one perspective/modulation/readout each.")
@click.option("--architecture", "model", default=None,
              help="Architecture: a model preset (foundation, small, ...) or .toml (overrides the config's).")
@_run_options
@friendly
def train(data, model, config_name, overrides, model_overrides, out, resume, max_minutes, no_eval, quiet) -> None:
    """Train a foundation twin (one shared core) on the sessions of --data."""
    from ..train import resume_run, train_foundation

    if resume:
        _no_settings_on_resume(data=data, architecture=model, config=config_name, set=overrides, architecture_set=model_overrides)
        result = resume_run(out, progress=not quiet, evaluate=not no_eval, max_minutes=max_minutes)
    else:
        if not data:
            raise InputError("give the training sessions with --data STORE (repeatable, or a folder of stores)")
        cfg = _config(config_name, overrides, model)
        result = train_foundation(list(data), out, cfg, model_overrides=model_overrides, progress=not quiet,
                                  evaluate=not no_eval, max_minutes=max_minutes)
    _report(result)


@main.command()
@click.option("--core", default=None, type=click.Path(), help="A trained twin (or core) checkpoint whose core is reused, frozen.")
@click.option("--individual", is_flag=True, help="No core: train every part on this one session (the control).")
@click.option("--data", "data", multiple=True, type=click.Path(),
              help="The new mouse's session store (with --core: repeatable, one run fits several new mice).")
@click.option("--minutes", type=float, default=None, help="Use the first M minutes of its training data (default all).")
@click.option("--architecture", "model", default=None, help="--individual: the architecture (model preset or .toml).")
@_run_options
@friendly
def finetune(core, individual, data, minutes, model, config_name, overrides, model_overrides, out, resume, max_minutes,
             no_eval, quiet) -> None:
    """Fit a new mouse: on a frozen core (--core CKPT), or from scratch (--individual)."""
    from ..train import finetune as finetune_run
    from ..train import resume_run, train_individual

    if resume:
        _no_settings_on_resume(core=core, individual=individual, data=data, minutes=minutes, architecture=model,
                               config=config_name, set=overrides, architecture_set=model_overrides)
        result = resume_run(out, progress=not quiet, evaluate=not no_eval, max_minutes=max_minutes)
        _report(result)
        return
    if bool(core) == bool(individual):
        raise InputError("give either --core CKPT (transfer to a frozen core) or --individual (train from scratch)")
    if not data:
        raise InputError("give the new mouse's session store with --data STORE")
    cfg = _config(config_name, overrides, model)
    if core:
        if model or model_overrides:
            raise InputError("--architecture/--architecture-set do not apply with --core: the architecture is the core's")
        result = finetune_run(core, list(data), out, cfg, minutes=minutes, progress=not quiet, evaluate=not no_eval,
                              max_minutes=max_minutes)
    else:
        if len(data) != 1:
            raise InputError("--individual trains one mouse: give one --data STORE")
        result = train_individual(data[0], out, cfg, minutes=minutes, model_overrides=model_overrides, progress=not quiet,
                                  evaluate=not no_eval, max_minutes=max_minutes)
    _report(result)


@main.command()
@click.option("--model", "model_path", required=True, type=click.Path(), help="A trained twin checkpoint (.safetensors).")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(),
              help="Session store(s) of the twin's mice (repeatable, or a folder of stores).")
@click.option("--mouse", default=None, help="The twin's session that serves --data (default: the store's own).")
@click.option("--tier", default="test", show_default=True, help="Which trials to score.")
@click.option("--skip", default=10, show_default=True, type=int,
              help="Frames at each trial's start not scored (burn-in; 10 frames = 0.33 s at 30 Hz).")
@click.option("--device", default="auto", show_default=True)
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder (new or empty) for evaluation.nc, evaluation.csv, evaluation_summary.csv.")
@click.option("--quiet", is_flag=True, help="No progress bars or messages on stderr (results still go to stdout).")
@friendly
def evaluate(model_path, data, mouse, tier, skip, device, out, quiet) -> None:
    """Score a twin on held-out trials: correlation and CC_norm per neuron and stimulus domain."""
    from ..train import evaluate as run_evaluate
    from ..train import summarize, write_evaluation
    from ..train.distributed import pick_device
    from ..train.loop import discover_stores

    if skip < 0:
        raise InputError(f"--skip must be non-negative, got {skip}")
    if out:
        check_new_folder(out)
    stores = discover_stores(data)
    dev = pick_device(device)
    result = run_evaluate(model_path, stores, session=mouse, tier=tier, skip=skip, device=dev, amp=dev.type == "cuda",
                          progress=not quiet)
    table = summarize(result)
    cols = ["session", "domain", "n_neurons", "n_repeats", "median_correlation", "median_cc_norm", "median_feve"]
    click.echo(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if out:
        Path(out).mkdir(exist_ok=True)
        for path in write_evaluation(result, out).values():
            if not quiet:
                click.echo(f"wrote {path}", err=True)
