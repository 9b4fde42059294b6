"""The paper's quantitative figures, one command each (``twinlab figures NAME|all``).

Every figure is a module (``fig2``, ``fig3``, ``fig4``, ``fig5``, ``ed3``, ``ed5``) exposing
``NAME``, ``TITLE``, a frozen dataclass ``Config`` whose defaults are the full (GPU) sizes,
``QUICK`` (the field overrides of ``--quick``: tiny twins on the CPU) and
``run(cfg, out, *, device, progress) -> {part: DataFrame}``, which writes ``out/<NAME>.csv``
(more parts as ``<NAME>_<part>.csv``), ``<NAME>.png`` and ``<NAME>.pdf``.

Settings: ``twinlab/presets/figures/<NAME>.toml`` is the Config written down; a figure's
settings are its defaults, that file, ``QUICK`` (with ``quick=True``) and ``key=value``
overrides (``sim.n_mice=2``, ``fractions=[0.5, 1]``), in that order, built strictly by the
preset engine (:data:`FIGURE_SETTINGS`, a :class:`twinlab.settings.PresetKind` whose preset name
picks the figure's Config; an unknown key is a one-line InputError).

>>> tables = run_figure("fig2", "results/", quick=True)
>>> run_all("results/", quick=True)          # every figure into one folder
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Mapping

from ..errors import InputError
from ..settings import PresetKind, nest

__all__ = ["FIGURES", "FIGURE_SETTINGS", "figure_module", "available_figures", "resolve_figure_config", "figure_config_to_toml",
           "run_figure", "run_all", "script_main"]

# name -> module; imported on first use (fig4 and fig5 may be absent from a partial checkout)
FIGURES: dict[str, str] = {
    "fig2": "twinlab.paper.fig2",
    "fig3": "twinlab.paper.fig3",
    "fig4": "twinlab.paper.fig4",
    "fig5": "twinlab.paper.fig5",
    "ed3": "twinlab.paper.ed3",
    "ed5": "twinlab.paper.ed5",
}


def figure_module(name: str) -> ModuleType:
    """The module of figure ``name`` (a one-line InputError for an unknown or missing figure)."""
    if name not in FIGURES:
        raise InputError(f"unknown figure {name!r} (known: {', '.join(FIGURES)}, or 'all')")
    try:
        return importlib.import_module(FIGURES[name])
    except ModuleNotFoundError as e:
        if e.name == FIGURES[name]:
            raise InputError(f"figure {name} is not available in this installation ({FIGURES[name]} is missing)") from None
        raise


def available_figures() -> list[str]:
    """Names of the figures whose modules are present."""
    out = []
    for name in FIGURES:
        try:
            figure_module(name)
        except InputError:
            continue
        out.append(name)
    return out


# the preset's name (the figure's) picks its dataclass, the figure's Config
FIGURE_SETTINGS = PresetKind("figures", "figure", named=lambda name: figure_module(name).Config,
                             what="figure settings")


def resolve_figure_config(name: str, quick: bool = False, settings: Iterable[str] | Mapping = ()) -> Any:
    """The Config of figure ``name``: defaults, its TOML preset, ``QUICK`` if asked, then ``settings``."""
    return FIGURE_SETTINGS.resolve(name, settings, [nest(figure_module(name).QUICK)] if quick else [])


def figure_config_to_toml(cfg: Any, header: str = "") -> str:
    """A figure's Config as its preset file (read back by :func:`resolve_figure_config`)."""
    return FIGURE_SETTINGS.to_toml(cfg, header)


def run_figure(name: str, out: str | Path, quick: bool = False, settings: Iterable[str] | Mapping = (),
               device: str = "auto", progress: bool = True) -> dict:
    """Compute figure ``name`` into folder ``out`` (CSV + PNG + PDF); -> its tables by part."""
    mod = figure_module(name)
    cfg = resolve_figure_config(name, quick, settings)
    return mod.run(cfg, Path(out), device=device, progress=progress)


def _split_settings(names: list[str], settings: Iterable[str]) -> dict[str, list[str]]:
    """``fig2.x=1`` goes to fig2 only; ``x=1`` to every figure whose Config has a field ``x``."""
    per: dict[str, list[str]] = {n: [] for n in names}
    for item in settings:
        key = item.partition("=")[0].strip()
        head, _, rest = key.partition(".")
        if head in FIGURES and rest:
            if head in per:
                per[head].append(item[len(head) + 1:])
            continue
        takers = [n for n in names if head in {f.name for f in dataclasses.fields(figure_module(n).Config)}]
        if not takers:
            raise InputError(f"--set {item}: no figure has a setting {head!r} (prefix a figure: fig2.{key}=...)")
        for n in takers:
            per[n].append(item)
    return per


def run_all(out: str | Path, quick: bool = False, settings: Iterable[str] = (), device: str = "auto",
            progress: bool = True, names: Iterable[str] | None = None) -> dict[str, dict]:
    """Every available figure (or ``names``) into one folder; simulated mice are shared through
    ``<out>/data``. Settings prefixed ``NAME.`` reach that figure only."""
    names = list(names) if names is not None else available_figures()
    for n in names:
        figure_module(n)
    per = _split_settings(names, list(settings))
    configs = {n: resolve_figure_config(n, quick, per[n]) for n in names}  # all refused before any work
    results = {}
    for n in names:
        results[n] = figure_module(n).run(configs[n], Path(out), device=device, progress=progress)
    return results


def script_main(name: str, argv: list[str] | None = None, doc: str | None = None) -> int:
    """The command line of ``analyses/<name>.py``: ``[--quick] [--out DIR] [--set k=v ...] [--device D]``."""
    ap = argparse.ArgumentParser(prog=f"analyses/{name}.py", description=doc or f"Reproduce figure {name} of the paper.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny twins on the CPU (minutes; noisy numbers)")
    ap.add_argument("--out", default="results", help="result folder (default: results)")
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting (repeatable), e.g. sim.n_mice=2")
    ap.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda ...")
    ap.add_argument("--quiet", action="store_true", help="no progress on the terminal")
    args = ap.parse_args(argv)
    try:
        run_figure(name, args.out, quick=args.quick, settings=args.settings, device=args.device,
                   progress=not args.quiet)
    except InputError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    print(f"{name}: {args.out}/{name}.csv, {args.out}/{name}.png, {args.out}/{name}.pdf")
    return 0
