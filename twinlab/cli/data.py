"""``twinlab import sensorium|nwb`` and ``twinlab info``: recordings into session stores."""

from __future__ import annotations

import contextlib
import logging

import click

from . import friendly, main


class _EchoHandler(logging.Handler):
    """Log records as plain lines on the current stderr (one line per importer run)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


@contextlib.contextmanager
def _log_lines():
    """Show the importers' log line (trials kept and dropped) while a command runs."""
    log = logging.getLogger("twinlab.data")
    handler, level = _EchoHandler(), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@main.group("import")
def import_() -> None:
    """Convert recordings (Sensorium 2023 folders, NWB files) into session stores."""


@import_.command("sensorium")
@click.argument("folder", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Session store to write (.zarr, or .nc for small ones).")
@click.option("--area", default="unknown", show_default=True, help="Area of the neurons if meta/neurons/area.npy is absent.")
@click.option("--max-gap", default=10, show_default=True, help="Longest eye-tracking gap (frames) to interpolate.")
@click.option("--drop-bad-trials", is_flag=True, help="Drop trials with an all-NaN behaviour channel instead of failing.")
@click.option("--allow-pickle", is_flag=True, help="Read label files stored as pickled objects (only from trusted folders).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@friendly
def import_sensorium_cmd(folder, out, area, max_gap, drop_bad_trials, allow_pickle, quiet) -> None:
    """Convert a Sensorium 2023 dynamic dataset FOLDER (data/, meta/) into a session store."""
    from ..data.sensorium import import_sensorium

    with _log_lines():
        import_sensorium(folder, out, area=area, max_gap=max_gap, drop_bad_trials=drop_bad_trials,
                         allow_pickle=allow_pickle, progress=not quiet)
    click.echo(f"wrote {out}", err=True)


@import_.command("nwb")
@click.argument("file", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Session store to write (.zarr, or .nc for small ones).")
@click.option("--frame-rate", "frame_rate_hz", default=30.0, show_default=True, help="Frame rate of the session (Hz).")
@click.option("--responses", default=None, help="Name or path of the RoiResponseSeries to use.")
@click.option("--negative", type=click.Choice(["clip", "shift"]), default="clip", show_default=True,
              help="Negative responses (dF/F): set to 0, or shift each neuron by its minimum.")
@click.option("--domain", default="unknown", show_default=True, help="Stimulus domain if the trials table has none.")
@click.option("--max-gap", default=10, show_default=True, help="Longest eye-tracking gap (frames) to interpolate.")
@click.option("--allow-missing-behavior", is_flag=True, help="Fill absent running/pupil series with 0 instead of failing.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@friendly
def import_nwb_cmd(file, out, frame_rate_hz, responses, negative, domain, max_gap, allow_missing_behavior, quiet) -> None:
    """Convert an NWB FILE (two-photon ROI responses, running, pupil, stimulus) into a session store."""
    from ..data.nwb import import_nwb

    with _log_lines():
        import_nwb(file, out, frame_rate_hz=frame_rate_hz, responses=responses, negative=negative, domain=domain,
                   max_gap=max_gap, allow_missing_behavior=allow_missing_behavior, progress=not quiet)
    click.echo(f"wrote {out}", err=True)


@main.command()
@click.argument("stores", nargs=-1, required=True, type=click.Path())
@friendly
def info(stores) -> None:
    """Summarise session STORES: mice, neurons per area, minutes per tier and domain, behaviour."""
    from ..data.info import summarize

    click.echo(summarize(stores))
