"""``twinlab simulate``: record a cohort of virtual mice in the twinlab session format."""

from __future__ import annotations

import click

from . import friendly, main


@main.command()
@click.argument("preset", required=False)
@click.option("--mice", type=int, help="Number of mice (preset: foundation_cohort 8, new_mice 4).")
@click.option("--neurons", type=int, help="Neurons per mouse.")
@click.option("--minutes", type=float,
              help="Minutes of natural-movie training data per session (the test block comes on top).")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the sessions (new, empty, or this cohort's).")
@click.option("--seed", type=int, help="Cohort seed (different seeds, different mice).")
@click.option("--areas", help="Comma-separated visual areas, e.g. V1,LM (default V1,LM,AL,RL).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override any setting (repeatable), e.g. session.height_px=72 or mouse.noise.latent_sd=0.")
@click.option("--device", default=None, help="torch device for the responses (cpu, cuda, ...).")
@click.option("--list", "list_", is_flag=True, help="List the simulation presets and exit.")
@click.option("--show-config", is_flag=True, help="Print the resolved settings as TOML and exit.")
@click.option("--quiet", is_flag=True, help="No progress bars or messages on stderr (results still go to stdout).")
@friendly
def simulate(preset, mice, neurons, minutes, out, seed, areas, overrides, device, list_, show_config, quiet) -> None:
    """Record virtual mice (PRESET: foundation_cohort, new_mice, or a .toml file) into --out."""
    from ..errors import InputError
    from ..sim.cohort_config import config_to_toml, preset_names, resolve_cohort
    from ..sim.cohort import record_cohort

    if list_:
        for name in preset_names():
            click.echo(name)
        return
    items = list(overrides)
    for key, value in (("n_mice", mice), ("n_neurons", neurons), ("minutes", minutes), ("seed", seed)):
        if value is not None:
            items.append(f"{key}={value}")
    if areas is not None:
        names = [a.strip() for a in areas.split(",") if a.strip()]
        items.append("mouse.population.areas=[" + ", ".join(f'"{a}"' for a in names) + "]")
    cfg = resolve_cohort(preset, items)
    if show_config:
        click.echo(config_to_toml(cfg), nl=False)
        return
    if not out:
        raise InputError("give --out DIR (a new or empty folder) for the recorded sessions")
    paths = record_cohort(cfg, out, device=device, progress=not quiet)
    for p in paths:
        click.echo(str(p))
