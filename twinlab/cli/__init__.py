"""The ``twinlab`` command: thin click wrappers over the public API, no logic of their own.

One module per command group (``stimulus``, ...), each adding its commands to :data:`main`.
Bad input (an :class:`~twinlab.errors.InputError` from anywhere below) ends with one line
on stderr and exit status 2; writers are atomic, so no partial file remains. A command's
outputs (``--out``, ``--preview``, ``--submission``) are claimed for the whole command
(:func:`twinlab.storage.claim`): a second command writing the same output meanwhile is
refused with exit status 2 while the first continues.
"""

from __future__ import annotations

import contextlib
import functools
import sys

import click

from ..errors import InputError
from ..storage import claim

OUTPUT_OPTIONS = ("out", "preview", "submission")


def friendly(fn):
    """Turn an InputError into ``Error: ...`` on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with contextlib.ExitStack() as outputs:
                for name in OUTPUT_OPTIONS:
                    if kwargs.get(name):
                        outputs.enter_context(claim(kwargs[name]))
                return fn(*args, **kwargs)
        except InputError as e:
            # one line whatever the message holds (a library's multi-line text quoted in it)
            click.echo(f"Error: {' '.join(str(e).split())}", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="twinlab")
def main() -> None:
    """twinlab: a digital twin of the mouse visual cortex."""


# command modules register themselves on import; keep this list in the order of --help
from . import benchmark, data, figures, lab, mei, sim, stimulus, tasks, train  # noqa: E402,F401
