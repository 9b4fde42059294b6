"""``twinlab stimulus`` and ``twinlab demo``."""

from __future__ import annotations

import contextlib
import os

import click

from ..errors import InputError
from . import friendly, main


@main.command()
@click.argument("name", required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a spec field (repeatable); screen.KEY reaches the monitor.")
@click.option("--out", type=click.Path(dir_okay=True), help="Write the stimulus (.zarr streams; .nc for short ones).")
@click.option("--preview", type=click.Path(dir_okay=False), help="Contact sheet (.png/.pdf) or animation (.gif).")
@click.option("--list", "list_", is_flag=True, help="List the stimulus presets and exit.")
@click.option("--show-spec", is_flag=True, help="Print the resolved spec as TOML and exit.")
@click.option("--quiet", is_flag=True, help="No progress bar, warnings or messages.")
@friendly
def stimulus(name, overrides, out, preview, list_, show_spec, quiet) -> None:
    """Render stimulus NAME (a preset in stimuli/, a family, or a .toml file)."""
    from .. import stimuli
    from ..figures import preview as make_preview
    from ..stimuli.io import NC_LIMIT_BYTES, NC_WARN_BYTES, load_stimulus, save_stimulus, stimulus_size
    from ..storage import check_writable, output_format

    if list_:
        for p in stimuli.preset_names():
            click.echo(p)
        return
    if not name:
        raise InputError("name a stimulus (twinlab stimulus --list shows them)")
    spec = stimuli.resolve_spec(name, overrides)
    if show_spec:
        click.echo(stimuli.spec_to_toml(spec), nl=False)
        return
    if not out and not preview:
        raise InputError("nothing to do: give --out FILE and/or --preview FILE")
    if preview:
        check_writable(preview)
        if not preview.lower().endswith((".png", ".pdf", ".svg", ".gif")):
            raise InputError(f"{preview}: preview must end in .png, .pdf, .svg or .gif")
    say = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    if out:
        size = stimulus_size(spec)
        what = (f"{size['trials']} trials, {size['frames']} frames of {size['height_px']} x {size['width_px']} px "
                f"({size['seconds']:.1f} s at {spec.frame_rate_hz:g} Hz, {size['bytes'] / 2**20:.0f} MiB)")
        output_format(out)
        check_writable(out)
        if str(out).endswith(".nc") and NC_WARN_BYTES < size["bytes"] <= NC_LIMIT_BYTES:
            say(f"warning: {out} will hold {size['bytes'] / 2**20:.0f} MiB of frames, gathered in memory before "
                "writing; a .zarr store streams trial by trial")
        save_stimulus(spec, out, progress=not quiet)
        say(f"wrote {out}: {what}")
        first = load_stimulus(out)
    else:
        first = next(stimuli.iter_trials(spec))
    if preview:
        make_preview(first.isel(frame=slice(0, 600)).load(), preview)
        say(f"wrote {preview}")


@main.command()
@click.option("--out", default="demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--no-gallery", is_flag=True, help="Skip rendering the stimulus gallery.")
@click.option("--quiet", is_flag=True, help="No progress bars or messages on stderr (results still go to stdout).")
@friendly
def demo(out, no_gallery, quiet) -> None:
    """The main job on embedded defaults: a virtual mouse, its twin, scans, tuning, comparison."""
    from ..demo import DemoConfig, run_demo

    with open(os.devnull, "w") as sink, contextlib.ExitStack() as stack:
        if quiet:  # the demo narrates on stdout and draws progress bars on stderr
            stack.enter_context(contextlib.redirect_stdout(sink))
            stack.enter_context(contextlib.redirect_stderr(sink))
        path = run_demo(out, DemoConfig(gallery=not no_gallery))
    click.echo(str(path / "README.md"))
