"""``twinlab mei``: most exciting images / videos of a twin (or a virtual mouse), and the closed loop."""

from __future__ import annotations

import click

from . import friendly, main


def _natural_source(natural: str | None, verify_with: str | None) -> str:
    """The natural set: as given, else the session store behind ``--verify sim:STORE``, else photos."""
    if natural:
        return natural
    if verify_with and verify_with.startswith("sim:") and "=" not in verify_with[4:] and verify_with[4:]:
        return verify_with[4:]
    return "photos"


@main.command()
@click.option("--model", required=True,
              help="Twin checkpoint, or sim:seed=N,n_neurons=K / sim:SESSION (the ground truth's MEIs).")
@click.option("--mouse", default=None, help="Which mouse (session) of a multi-mouse checkpoint.")
@click.option("--neurons", default=None, help="0:100, 3,7,9, area=V1, unit_id=5,6 ... (default all).")
@click.option("--kind", type=click.Choice(["image", "video"]), default=None, help="Image (default) or video MEIs.")
@click.option("--steps", type=int, default=None, help="Gradient-ascent steps (default 200).")
@click.option("--norm", type=float, default=None,
              help="RMS contrast about gray, fixed exactly (default 0.3, that of the natural movies).")
@click.option("--constraint", type=click.Choice(["norm", "range"]), default=None,
              help="Fixed L2 norm (default), or luminance range (that of the natural stimuli unless "
                   "--set luminance_min=/luminance_max= say otherwise).")
@click.option("--frames", type=int, default=None,
              help="Stimulus frames (images: how long each is shown; videos: their length, "
                   "default the model's context).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Any MEIConfig field, e.g. jitter_px=1, blur_sigma_px=2, lr=0.05, batch_size=64.")
@click.option("--verify", "verify_with", default=None,
              help="Show the MEIs to this virtual mouse (sim:SESSION_STORE the twin was trained on, or sim:seed=...).")
@click.option("--natural", default=None,
              help="Natural stimuli to compare with: a session store, or 'photos' (default: the --verify store).")
@click.option("--natural-count", type=int, default=200, show_default=True, help="Natural stimuli in the set.")
@click.option("--device", default=None, help="auto (default), cpu, cuda, cuda:1 ...")
@click.option("--seed", type=int, default=None, help="Seed of the starting noise and the jitter (default 0).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (new or empty).")
@click.option("--quiet", is_flag=True, help="No progress bars or messages on stderr (results still go to stdout).")
@friendly
def mei(model, mouse, neurons, kind, steps, norm, constraint, frames, overrides, verify_with, natural, natural_count,
        device, seed, out, quiet) -> None:
    """Synthesize each neuron's most exciting input by gradient ascent; optionally verify in closed loop."""
    from ..errors import InputError
    from ..mei import checkpoint_context_frames, mei_config_from_dict, natural_range, natural_set, synthesize, verify
    from ..mei.io import write_output_folder
    from ..mei.objective import as_objective, resolve_neurons
    from ..mei.verify import match_neurons
    from ..responders import load_responder
    from ..settings import parse_overrides
    from ..storage import check_new_folder

    target = check_new_folder(out)
    values = parse_overrides(overrides)
    for key, value in (("kind", kind), ("steps", steps), ("norm", norm), ("constraint", constraint),
                       ("frames", frames), ("device", device), ("seed", seed)):
        if value is not None:
            values[key] = value
    config = mei_config_from_dict(values, "twinlab mei")
    if natural_count < 1:
        raise InputError(f"--natural-count must be at least 1, got {natural_count}")
    responder = load_responder(model, mouse)
    context = None if model.startswith("sim:") else checkpoint_context_frames(model)
    objective = as_objective(responder, context_frames=context)
    idx = resolve_neurons(objective.neurons, neurons)
    n_frames = config.check_length(objective.context_frames)
    shape = (config.height, config.width) if config.height else objective.native_shape()
    stimuli = None
    source = _natural_source(natural, verify_with)
    if config.constraint == "range" and not {"luminance_min", "luminance_max"} & set(values):
        # the range matched to the natural stimuli (1st to 99th percentile of their luminance)
        stimuli = natural_set(config.kind, n_frames, shape, source=source, n=natural_count, seed=config.seed)
        lo, hi = natural_range(stimuli)
        config = mei_config_from_dict({**config.to_dict(), "luminance_min": lo, "luminance_max": hi}, "twinlab mei")
    vmouse = None
    if verify_with is not None:
        vmouse = load_responder(verify_with)
        table = objective.neurons
        if "unit_id" not in table.columns:
            raise InputError(f"{model}: its neurons carry no unit_id to match with {verify_with}")
        match_neurons(table["unit_id"].to_numpy()[idx], as_objective(vmouse).neurons)  # fail before the work
    meis = synthesize(objective, idx, config)
    checked = None
    if vmouse is not None:
        if stimuli is None:
            stimuli = natural_set(config.kind, n_frames, shape, source=source, n=natural_count, seed=config.seed)
        checked = verify(meis, vmouse, stimuli, objective, device=config.device)
    write_output_folder(target, meis, checked)
    act = meis["activation"].values
    if quiet:
        return
    click.echo(f"wrote {out}: {meis.sizes['neuron']} {config.kind} MEIs (median activation {float(_median(act)):.3g})",
               err=True)
    if checked is not None:
        a = checked.attrs
        click.echo(f"closed loop on {a['mouse']}: median response to the MEI / to the best natural stimulus = "
                   f"{a['median_ratio']:.3g} ({100 * a['fraction_ratio_above_1']:.0f} % of neurons above 1)", err=True)


def _median(x):
    import numpy as np

    x = np.asarray(x, dtype=float)
    return np.median(x[np.isfinite(x)]) if np.isfinite(x).any() else float("nan")
