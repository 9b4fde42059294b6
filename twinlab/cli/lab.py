"""``twinlab scan``, ``twinlab tuning`` and ``twinlab compare-tuning``: the in-silico lab."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from . import friendly, main


@main.command()
@click.option("--stimulus", "stimulus_name", required=True,
              help="Stimulus preset, .toml spec, a stimulus store (.zarr/.nc), or a session store: its grating "
                   "and dot trials, exactly as the mouse saw them.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a stimulus spec field.")
@click.option("--model", default=None,
              help="Twin checkpoint, or sim:seed=N,n_neurons=K / sim:SESSION for a virtual mouse "
                   "[default: the shipped twin, models/twin.safetensors].")
@click.option("--mouse", default=None, help="Which mouse (session) of a multi-mouse checkpoint.")
@click.option("--neurons", default=None, help="0:100, 3,7,9, area=V1, unit_id=5,6 ... (default all).")
@click.option("--repeats", default=1, show_default=True, type=int)
@click.option("--behavior", type=click.Choice(["median", "recorded"]), default="median", show_default=True)
@click.option("--noise/--no-noise", default=None, help="Noisy draws (default: yes for a virtual mouse, no for a twin).")
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", required=True, type=click.Path(), help="Scan store (.zarr or .nc).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@friendly
def scan(stimulus_name, overrides, model, mouse, neurons, repeats, behavior, noise, device, seed, out, quiet) -> None:
    """Show a stimulus to a twin (or a virtual mouse) and record its responses."""
    from ..scan import ScanConfig, iter_scan, neuron_table, select_neurons
    from ..responders import load_responder
    from ..stimuli import resolve_spec
    from ..tuning.session import load_scan_stimulus
    from ..storage import check_writable, output_format, write_chunks

    output_format(out)
    check_writable(out)
    config = ScanConfig(repeats=repeats, behavior=behavior, noise=noise, device=device, seed=seed)
    if stimulus_name.endswith((".zarr", ".nc")) and Path(stimulus_name).exists():
        if overrides:
            raise InputError("--set applies to stimulus specs, not to a stimulus file")
        stimulus = load_scan_stimulus(stimulus_name)
    else:
        stimulus = resolve_spec(stimulus_name, overrides)
    responder = load_responder(model, mouse)
    idx = select_neurons(neuron_table(responder), neurons)
    write_chunks(iter_scan(responder, stimulus, config, idx, progress=not quiet), out, dim="frame")
    if not quiet:
        click.echo(f"wrote {out}", err=True)


@main.command()
@click.argument("source", metavar="SCAN_OR_SESSION")
@click.option("--out", required=True, type=click.Path(), help="Tuning table (.nc or .zarr).")
@click.option("--lag-s", "lag_s", default=None, type=float,
              help="Response delay in seconds [default: estimated, 0-0.5 s, the lag that makes presentations differ most].")
@click.option("--domain", default=None,
              help="Session only: the domain whose directions give the orientation tuning "
                   "[default: the first of drifting_grating, pink_noise, gabor, rdk present].")
@click.option("--quiet", is_flag=True, help="No progress messages.")
@friendly
def tuning(source, out, lag_s, domain, quiet) -> None:
    """Fit tuning (OSI/DSI/von Mises and/or STA/SSI/Gaussian RF) to every neuron of a scan or a
    recorded session (imported or simulated), with the same code for both."""
    from ..tuning.run import tuning_of

    result = tuning_of(source, out, lag_s=lag_s, domain=domain)
    if not quiet:
        who = f"mouse {result.attrs.get('mouse_id') or '?'}, session {result.attrs.get('session_id') or '?'}"
        unfit = result.attrs.get("n_unfit", 0)
        click.echo(f"wrote {out} ({who}: {result.attrs.get('analysis')} tuning of {result.sizes['neuron']} neurons, "
                   f"{unfit} without a usable fit)", err=True)


@main.command(name="compare-tuning")
@click.option("--in-vivo", "in_vivo", required=True, multiple=True, type=click.Path(),
              help="Tuning table(s), a recorded session, or a folder of OSI.npy/DSI.npy (repeatable: merged).")
@click.option("--in-silico", "in_silico", required=True, multiple=True, type=click.Path(),
              help="Tuning table(s) or scan(s) of the twin (repeatable: merged).")
@click.option("--unmatched", is_flag=True,
              help="Compare OSI/DSI distributions without pairing neurons (for different mice, or no unit ids).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder (must not exist or be empty).")
@click.option("--quiet", is_flag=True, help="No progress messages.")
@friendly
def compare_tuning(in_vivo, in_silico, unmatched, out, quiet) -> None:
    """Neuron-by-neuron agreement of in-vivo and in-silico tuning of one mouse (matched by
    unit_id), or with --unmatched the agreement of their distributions. Scans and sessions
    are measured on the way, with the code of ``twinlab tuning``."""
    from ..compare import load_tunings, write_report

    write_report(load_tunings(in_vivo), load_tunings(in_silico), out, unmatched=unmatched)
    if not quiet:
        click.echo(f"wrote {out}/summary.md", err=True)
