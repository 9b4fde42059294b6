"""``twinlab figures``: reproduce the paper's figures (CSV of the plotted numbers, PNG, PDF)."""

from __future__ import annotations

import time

import click

from . import friendly, main


@main.command()
@click.argument("name", required=False)
@click.option("--quick", is_flag=True, help="Tiny twins on the CPU in about a minute per figure (numbers are noisy).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting (repeatable), e.g. sim.n_mice=2 or procs=4; with 'all', prefix a figure: fig2.procs=4.")
@click.option("--out", default="figures", show_default=True, type=click.Path(file_okay=False),
              help="Result folder (CSV, PNG, PDF; work/ holds the training runs, data/ the simulated mice).")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA if available), cpu, cuda, cuda:1 ...")
@click.option("--list", "list_", is_flag=True, help="List the figures and exit.")
@click.option("--show-settings", is_flag=True, help="Print the resolved settings as TOML and exit.")
@click.option("--quiet", is_flag=True, help="No progress on the terminal.")
@friendly
def figures(name, quick, overrides, out, device, list_, show_settings, quiet) -> None:
    """Reproduce figure NAME of the paper (fig2, fig3, fig4, fig5, ed3, ed5) or 'all'."""
    from ..errors import InputError
    from ..paper import FIGURES, figure_config_to_toml, figure_module, resolve_figure_config, run_all, run_figure

    if list_:
        for n in FIGURES:
            try:
                click.echo(f"{n:<5} {figure_module(n).TITLE}")
            except InputError:
                click.echo(f"{n:<5} (not available)")
        return
    if not name:
        raise InputError("name a figure (fig2, fig3, fig4, fig5, ed3, ed5) or 'all'; --list shows them")
    if show_settings:
        if name == "all":
            raise InputError("--show-settings takes one figure")
        click.echo(figure_config_to_toml(resolve_figure_config(name, quick, overrides)), nl=False)
        return
    t0 = time.perf_counter()
    if name == "all":
        results = run_all(out, quick=quick, settings=overrides, device=device, progress=not quiet)
    else:
        results = {name: run_figure(name, out, quick=quick, settings=overrides, device=device, progress=not quiet)}
    for n in results:
        click.echo(f"{n}: {out}/{n}.csv, {out}/{n}.png, {out}/{n}.pdf")
    click.echo(f"done in {time.perf_counter() - t0:.0f} s", err=True)
