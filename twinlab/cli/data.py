"""``twinlab import sensorium|nwb|images``, ``twinlab export nwb`` and ``twinlab info``: recordings in and out."""

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
    """Show the importers' log line (trials kept and dropped) while a command runs (a result:
    shown with --quiet too, which silences progress only)."""
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
    """Convert recordings (Sensorium 2023 folders, NWB files, static-image data sets) into session stores."""


@import_.command("sensorium")
@click.argument("folder", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Session store to write (.zarr, or .nc for small ones).")
@click.option("--area", default="unknown", show_default=True, help="Area of the neurons if meta/neurons/area.npy is absent.")
@click.option("--max-gap", default=10, show_default=True,
              help="Longest eye-tracking gap to interpolate, in frames (10 frames = 0.33 s at 30 Hz).")
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


def _screen_fields(items) -> dict:
    """``--screen width_cm=52 --screen distance_cm=15`` -> a dict of Screen fields."""
    from ..errors import InputError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--screen {item}: expected KEY=VALUE (a twinlab.Screen field, e.g. distance_cm=15)")
        out[key.strip()] = value.strip()
    return out


def _frame_size(text):
    from ..errors import InputError

    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--frame-size {text}: expected HEIGHTxWIDTH in pixels, e.g. 36x64") from None
    return h, w


@import_.command("nwb")
@click.argument("file", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Session store to write (.zarr, or .nc for small ones).")
@click.option("--frame-rate", "frame_rate_hz", default=None, type=float,
              help="Frame rate of the session in Hz [default: the file's (stimulus_notes), else 30].")
@click.option("--responses", default=None, help="Name or path of the RoiResponseSeries to use (default: deconvolved/events, else the first).")
@click.option("--screen", "screen", multiple=True, metavar="KEY=VALUE",
              help="Monitor geometry (twinlab.Screen fields: width_cm, height_cm, distance_cm, ...) over the file's own.")
@click.option("--frame-size", default=None, metavar="HxW",
              help="Render grid of parameter-table stimuli in pixels [default: the template's size, else 36x64].")
@click.option("--trial-s", "trial_s", default=10.0, show_default=True,
              help="Without a trials table: group presentations into trials of at most this many seconds (0: one each).")
@click.option("--split-seed", default=0, show_default=True, help="Seed of the 80/10/10 tier split used without a tier column.")
@click.option("--negative", type=click.Choice(["clip", "shift"]), default="clip", show_default=True,
              help="Negative responses (dF/F): set to 0, or shift each neuron by its minimum.")
@click.option("--domain", default=None, help="Stimulus domain of every trial [default: from the trials table or the presentation tables].")
@click.option("--max-gap", default=10, show_default=True,
              help="Longest eye-tracking gap to interpolate, in frames (10 frames = 0.33 s at 30 Hz).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@friendly
def import_nwb_cmd(file, out, frame_rate_hz, responses, screen, frame_size, trial_s, split_seed, negative, domain, max_gap,
                   quiet) -> None:
    """Convert an NWB FILE (two-photon ROI responses, stimulus tables, optional running/pupil) into a session store."""
    from ..data.nwb import import_nwb

    with _log_lines():
        import_nwb(file, out, frame_rate_hz=frame_rate_hz, responses=responses, screen=_screen_fields(screen),
                   frame_size=_frame_size(frame_size), trial_s=trial_s, split_seed=split_seed, negative=negative,
                   domain=domain, max_gap=max_gap, progress=not quiet)
    click.echo(f"wrote {out}", err=True)


@import_.command("images")
@click.option("--images", "images", required=True, type=click.Path(),
              help="A .npy of images [n, height, width(, 3)] (8-bit or 0-1 floats) or a folder of image files.")
@click.option("--responses", required=True, type=click.Path(),
              help="A .npy [n_images, repeats, neurons]: one response per presentation, NaN for a missing repeat.")
@click.option("--out", required=True, type=click.Path(), help="Session store to write (.zarr, or .nc for small ones).")
@click.option("--width-deg", required=True, type=float, help="Visual angle the images spanned horizontally (degrees).")
@click.option("--height-deg", required=True, type=float, help="Visual angle the images spanned vertically (degrees).")
@click.option("--distance-cm", default=15.0, show_default=True, help="Eye-to-monitor distance (cm).")
@click.option("--image-s", default=0.5, show_default=True, help="How long each image was shown (seconds): the trial length.")
@click.option("--frame-rate", "frame_rate_hz", default=30.0, show_default=True, help="Frame rate of the session (Hz).")
@click.option("--frame-size", default=None, metavar="HxW", help="Render grid in pixels [default: the images' size].")
@click.option("--response-lag-s", default=0.0, show_default=True,
              help="Where the data set's response window starts after image onset (seconds; recorded).")
@click.option("--response-window-s", default=None, type=float,
              help="Length of the data set's response window (seconds; recorded) [default: --image-s].")
@click.option("--split-seed", default=0, show_default=True, help="Seed of the 80/10/10 split of the images into tiers.")
@click.option("--mouse-id", default="unknown", show_default=True, help="Who was recorded.")
@click.option("--session-id", default="images", show_default=True, help="Name of the session.")
@click.option("--area", default="unknown", show_default=True, help="Visual area of the neurons.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@friendly
def import_images_cmd(images, responses, out, width_deg, height_deg, distance_cm, image_s, frame_rate_hz, frame_size,
                      response_lag_s, response_window_s, split_seed, mouse_id, session_id, area, quiet) -> None:
    """Convert a static-image recording (images + one response per presentation) into a session store."""
    from ..data.images import import_images

    import_images(images, responses, out, width_deg=width_deg, height_deg=height_deg, distance_cm=distance_cm,
                  image_s=image_s, frame_rate_hz=frame_rate_hz, frame_size=_frame_size(frame_size),
                  response_lag_s=response_lag_s, response_window_s=response_window_s, split_seed=split_seed,
                  mouse_id=mouse_id, session_id=session_id, area=area, progress=not quiet)
    if not quiet:
        click.echo(f"wrote {out}", err=True)


@main.group("export")
def export() -> None:
    """Write session stores in standard formats (NWB)."""


@export.command("nwb")
@click.argument("session", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="NWB file to write (.nwb).")
@click.option("--quiet", is_flag=True, help="No messages.")
@friendly
def export_nwb_cmd(session, out, quiet) -> None:
    """Write a SESSION store (virtual or imported) as an NWB file that `twinlab import nwb` reads back unchanged."""
    from ..data.nwb_export import export_nwb

    export_nwb(session, out)
    if not quiet:
        click.echo(f"wrote {out}", err=True)


@main.command()
@click.argument("stores", nargs=-1, required=True, type=click.Path())
@click.option("--quiet", is_flag=True, help="Accepted for symmetry: info writes nothing but its summary (stdout).")
@friendly
def info(stores, quiet) -> None:
    """Summarise session STORES: mice, neurons per area, minutes per tier and domain, behaviour."""
    from ..data.info import summarize

    click.echo(summarize(stores))
