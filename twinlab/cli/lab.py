"""``twinlab scan``, ``twinlab tuning`` and ``twinlab compare-tuning``: the in-silico lab."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from . import friendly, main


@main.command()
@click.option("--stimulus", "stimulus_name", required=True,
              help="Stimulus preset, .toml spec, or a stimulus store (.zarr/.nc).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a stimulus spec field.")
@click.option("--model", required=True, help="Twin checkpoint, or sim:seed=N,n_neurons=K / sim:SESSION for a virtual mouse.")
@click.option("--mouse", default=None, help="Which mouse (session) of a multi-mouse checkpoint.")
@click.option("--neurons", default=None, help="0:100, 3,7,9, area=V1, unit_id=5,6 ... (default all).")
@click.option("--repeats", default=1, show_default=True, type=int)
@click.option("--behavior", type=click.Choice(["median", "recorded"]), default="median", show_default=True)
@click.option("--noise/--no-noise", default=None, help="Noisy draws (default: yes for a virtual mouse, no for a twin).")
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", required=True, type=click.Path(), help="Scan store (.zarr or .nc).")
@friendly
def scan(stimulus_name, overrides, model, mouse, neurons, repeats, behavior, noise, device, seed, out) -> None:
    """Show a stimulus to a twin (or a virtual mouse) and record its responses."""
    from ..scan import ScanConfig, iter_scan, neuron_table, select_neurons
    from ..responders import load_responder
    from ..stimuli import resolve_spec
    from ..stimuli.io import load_stimulus
    from ..storage import check_writable, output_format, write_chunks

    output_format(out)
    check_writable(out)
    config = ScanConfig(repeats=repeats, behavior=behavior, noise=noise, device=device, seed=seed)
    if stimulus_name.endswith((".zarr", ".nc")) and Path(stimulus_name).exists():
        if overrides:
            raise InputError("--set applies to stimulus specs, not to a stimulus file")
        stimulus = load_stimulus(stimulus_name)
    else:
        stimulus = resolve_spec(stimulus_name, overrides)
    responder = load_responder(model, mouse)
    idx = select_neurons(neuron_table(responder), neurons)
    write_chunks(iter_scan(responder, stimulus, config, idx), out, dim="frame")
    click.echo(f"wrote {out}", err=True)


@main.command()
@click.argument("scan_path", metavar="SCAN")
@click.option("--out", required=True, type=click.Path(), help="Tuning table (.nc or .zarr).")
@click.option("--lag-frames", default=None, type=int, help="Response delay (default: estimated).")
@friendly
def tuning(scan_path, out, lag_frames) -> None:
    """Fit tuning (OSI/DSI/von Mises, or STA/SSI/Gaussian RF) to every neuron of a scan."""
    from ..storage import check_writable, load_dataset, output_format, write_dataset
    from ..tuning import measure_tuning

    output_format(out)
    check_writable(out)
    result = measure_tuning(load_dataset(scan_path), lag_frames=lag_frames)
    write_dataset(result, out)
    unfit = result.attrs.get("n_unfit", 0)
    click.echo(f"wrote {out} ({result.sizes['neuron']} neurons, {unfit} without a usable fit)", err=True)


@main.command(name="compare-tuning")
@click.option("--in-vivo", "in_vivo", required=True, multiple=True, type=click.Path(),
              help="Tuning store(s), or a folder of OSI.npy/DSI.npy (repeat to merge pink noise and dots).")
@click.option("--in-silico", "in_silico", required=True, multiple=True, type=click.Path(),
              help="Tuning store(s) of the twin (repeatable).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder (must not exist or be empty).")
@friendly
def compare_tuning(in_vivo, in_silico, out) -> None:
    """Neuron-by-neuron (or distribution) agreement of in-vivo and in-silico tuning."""
    from ..compare import load_tunings, write_report

    write_report(load_tunings(in_vivo), load_tunings(in_silico), out)
    click.echo(f"wrote {out}/summary.md", err=True)
