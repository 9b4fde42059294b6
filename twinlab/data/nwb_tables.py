"""Stimulus presentations of an NWB file, described by parameter tables, rendered into frames.

In: the ``TimeIntervals`` tables of ``nwbfile.intervals`` (``start_time``, ``stop_time`` in s
and one row per presentation), each recognised by its name or, failing that, its columns:

=====================  ====================================================================
kind (trial domain)    columns (aliases; ``[...]`` optional)
=====================  ====================================================================
drifting_gratings      ``direction`` | ``direction_deg`` | ``orientation`` (drift direction,
                       deg), ``spatial_frequency`` | ``sf_cpd`` (cycles/deg),
                       ``temporal_frequency`` | ``tf_hz`` (Hz), [``contrast``,
                       ``phase`` (cycles) | ``phase_deg``, ``blank_sweep`` | ``blank``]
static_gratings        ``orientation`` | ``orientation_deg`` (deg), ``spatial_frequency`` |
                       ``sf_cpd``, [``phase`` (cycles) | ``phase_deg``, ``contrast``,
                       ``blank_sweep`` | ``blank``]
dots                   ``x_deg`` | ``dot_x_deg``, ``y_deg`` | ``dot_y_deg`` (AE degrees of the
                       centre), ``polarity`` (+1 on, -1 off) | ``color`` (1/white, -1/black),
                       [``sigma_deg`` | ``size_deg`` (= 2 sigma), ``contrast``]
                       (``locally_sparse_noise``-style flashed spots, drawn as Gaussian dots)
natural_scenes         ``image_index`` | ``template_index`` | ``frame`` into a
                       ``stimulus_template`` (``ImageSeries`` or ``Images``; -1 = gray)
=====================  ====================================================================

Angles follow :mod:`twinlab.geometry` (0 = rightward, counter-clockwise); a grating's
``orientation`` is the direction of its wave vector (for drifting gratings, the drift
direction). NaN parameters or a true blank column make a gray presentation. Allen's
bookkeeping columns (:data:`BOOKKEEPING`) are ignored; any other column is an error naming
the table and the known keys, as is a table that fits no kind.

Out: :class:`Presentations`, the time line of every table together: which presentation is on
at any time, and ``render(t)`` -> frames ``[n, H, W]`` (luminance in [0, 1], gray 0.5, drawn
through the :mod:`twinlab.stimuli` families on the session's :class:`~twinlab.geometry.Screen`)
with per-frame conditions (``direction_deg``, ``sf_cpd``, ``tf_hz``, ``orientation_deg``,
``phase_deg``, ``contrast``, ``polarity``, ``dot_x_deg``, ``dot_y_deg``, ``image_index``,
``blank``, ``presentation`` = global presentation number or -1 on gray).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..geometry import Screen
from ..stimuli import FAMILIES, Canvas, GaborSpec, GaussianDotsSpec

__all__ = ["Presentations", "read_presentations", "read_table", "BOOKKEEPING", "KINDS", "DEFAULT_DOT_SIGMA_DEG"]

GRAY = 0.5
DEFAULT_DOT_SIGMA_DEG = 4.0
# columns of AllenSDK / NWB presentation tables that say nothing about what is drawn
BOOKKEEPING = frozenset({
    "start_time", "stop_time", "id", "tags", "timeseries", "stimulus_name", "stimulus_block", "stimulus_index",
    "stimulus_condition_id", "units", "mask", "opacity", "size", "x_position", "y_position", "color_triplet",
    "duration", "stimulus_template", "template", "tier", "domain", "stimulus_id", "repeat", "trial",
})
SKIPPED_TABLES = frozenset({"trials", "epochs", "invalid_times"})
INDEX_COLUMNS = ("image_index", "template_index", "frame")
_FILL = {"f": np.nan, "i": -1, "u": 0, "b": False, "U": "", "O": ""}


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    domain: str
    required: tuple[tuple[str, ...], ...]  # each entry: aliases of one required parameter
    optional: tuple[tuple[str, ...], ...]
    hints: tuple[str, ...]  # words in a table name that say which kind it is
    passthrough: bool = False  # further columns are per-frame conditions (twinlab's own export)

    def known(self) -> list[str]:
        return [a for group in self.required + self.optional for a in group]


_SF = ("spatial_frequency", "sf_cpd")
_PHASE = ("phase", "phase_deg")
_BLANK = ("blank_sweep", "blank")
KINDS = (
    Kind("drifting_gratings", "drifting_grating", (("direction", "direction_deg", "orientation"), _SF,
                                                    ("temporal_frequency", "tf_hz")),
         (("contrast",), _PHASE, _BLANK), ("drifting",)),
    Kind("static_gratings", "static_grating", (("orientation", "orientation_deg"), _SF), (("contrast",), _PHASE, _BLANK),
         ("static",)),
    Kind("dots", "gaussian_dots", (("x_deg", "dot_x_deg"), ("y_deg", "dot_y_deg"), ("polarity", "color")),
         (("sigma_deg", "size_deg"), ("contrast",)), ("sparse_noise", "dot", "spot")),
    Kind("natural_scenes", "natural_image", (INDEX_COLUMNS,), (), ("scene", "image", "natural")),
    Kind("twinlab_frames", "unknown", (("frame",),), (), ("twinlab_frames",), passthrough=True),
)


_CANON = {"direction": "direction_deg", "orientation": "orientation_deg", "spatial_frequency": "sf_cpd",
          "temporal_frequency": "tf_hz", "x_deg": "dot_x_deg", "y_deg": "dot_y_deg", "color": "polarity",
          "phase": "phase_deg", "size_deg": "sigma_deg", "blank_sweep": "blank"}
# Allen gives phase as a fraction of a cycle; a dot's size is its diameter (2 sigma)
_SCALE = {"phase": 360.0, "size_deg": 0.5}


def _canon(col: str, kind: Kind) -> str:
    """The twinlab condition name of a column (a drifting grating's orientation is its direction)."""
    name = _CANON.get(col, col)
    return "direction_deg" if kind.name == "drifting_gratings" and name == "orientation_deg" else name


def _known_text() -> str:
    return "; ".join(f"{k.name}: {', '.join('|'.join(g) for g in k.required)}" for k in KINDS)


def _column(table, name: str) -> np.ndarray:
    values = np.asarray(table[name].data[:])
    if values.dtype.kind in "OSU":
        values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
    return values


def _pick(cols: dict, aliases: tuple[str, ...]) -> tuple[str, np.ndarray] | None:
    for a in aliases:
        if a in cols:
            return a, cols[a]
    return None


def _kind_of(name: str, colnames: set[str], where: str) -> Kind | None:
    """The kind a table is, by its name first and its columns second (None: no stimulus at all)."""
    params = colnames - BOOKKEEPING
    fits = [k for k in KINDS if all(any(a in colnames for a in g) for g in k.required)]
    by_name = [k for k in fits if any(h in name.lower() for h in k.hints)]
    if by_name:
        return by_name[0]
    fits = [k for k in fits if not k.passthrough]
    if fits:
        return fits[0]
    if not params:
        return None  # e.g. spontaneous activity: gray
    raise InputError(f"{where}: columns {sorted(params)} describe no stimulus twinlab knows; known tables: {_known_text()}")


def _float(values: np.ndarray, where: str, col: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: column {col!r} must be numbers") from None


def _polarity(values: np.ndarray, where: str) -> np.ndarray:
    if values.dtype.kind in "US":
        words = {"white": 1.0, "on": 1.0, "1": 1.0, "black": -1.0, "off": -1.0, "-1": -1.0, "": np.nan, "nan": np.nan}
        bad = sorted(set(values) - set(words))
        if bad:
            raise InputError(f"{where}: polarity/color {bad[0]!r} is not one of white/black, on/off, 1/-1")
        return np.array([words[v] for v in values])
    v = _float(values, where, "polarity")
    ok = np.isnan(v) | np.isin(v, (-1.0, 1.0))
    if not ok.all():
        raise InputError(f"{where}: polarity/color must be +1 (white) or -1 (black), found {v[~ok][0]:g}")
    return v


class _Table:
    """One presentation table: its kind, times and per-row parameters (NaN = gray)."""

    def __init__(self, name: str, table, kind: Kind, templates: dict[str, np.ndarray], where: str):
        self.name, self.kind, self.where = name, kind, where
        cols = {c: _column(table, c) for c in table.colnames if c not in ("start_time", "stop_time")}
        self.extra = {c: v for c, v in cols.items() if c != "frame"} if kind.passthrough else {}
        unknown = sorted(set(cols) - set(kind.known()) - BOOKKEEPING - set(self.extra))
        if unknown:
            raise InputError(f"{where}: unknown column(s) {unknown} for a {kind.name} table; "
                             f"known: {', '.join(kind.known())} (and bookkeeping: {', '.join(sorted(BOOKKEEPING))})")
        self.start = _float(table["start_time"].data[:], where, "start_time")
        self.stop = _float(table["stop_time"].data[:], where, "stop_time")
        if (self.stop <= self.start).any():
            k = int(np.flatnonzero(self.stop <= self.start)[0])
            raise InputError(f"{where}: row {k} stops at {self.stop[k]:g} s, not after its start {self.start[k]:g} s")
        n = len(self.start)
        p: dict[str, np.ndarray] = {}
        if kind.name in ("natural_scenes", "twinlab_frames"):
            col, idx = _pick(cols, INDEX_COLUMNS)
            tname = name if name in templates else next(iter(templates), None)
            for c in ("stimulus_template", "template"):
                if c in cols:
                    tname = str(cols[c][0])
            if tname is None:
                raise InputError(f"{where}: indexes images ({col}) but the file has no stimulus_template")
            if tname not in templates:
                raise InputError(f"{where}: names template {tname!r}, not in stimulus_template ({', '.join(templates)})")
            self.images = templates[tname]
            idx = np.asarray(idx, dtype=np.int64)
            if (idx >= len(self.images)).any():
                raise InputError(f"{where}: image index {int(idx.max())} but template {tname!r} has {len(self.images)} images")
            p["image_index"] = idx.astype(np.float64)
            self.gray = idx < 0
        else:
            for group in kind.required + kind.optional:
                hit = _pick(cols, group)
                if hit is None:
                    continue
                col, values = hit
                canon = _canon(col, kind)
                if canon == "polarity":
                    p[canon] = _polarity(values, where)
                else:
                    p[canon] = _float(values, where, col) * _SCALE.get(col, 1.0)
            gray = np.zeros(n, dtype=bool)
            for group in kind.required:
                gray |= ~np.isfinite(p[_canon(_pick(cols, group)[0], kind)])
            if "blank" in p:
                gray |= p.pop("blank") > 0
            p.setdefault("contrast", np.ones(n))
            if kind.name == "dots":
                p.setdefault("sigma_deg", np.full(n, DEFAULT_DOT_SIGMA_DEG))
            else:
                p.setdefault("phase_deg", np.zeros(n))
            if kind.name == "static_gratings":
                p["tf_hz"] = np.zeros(n)
            bad = ~gray & ~((p["contrast"] > 0) & (p["contrast"] <= 1))
            if bad.any():
                raise InputError(f"{where}: contrast must lie in (0, 1], found {p['contrast'][bad][0]:g}")
            self.gray = gray
        for v in p.values():
            v[self.gray] = np.nan
        self.params = p


class Presentations:
    """Every presentation of a file on one time line (see the module notes).

    ``start``, ``stop`` ``[P]`` (s, sorted by start), ``table`` ``[P]`` (index into
    :attr:`tables`), ``row`` ``[P]`` (row of that table), ``gray`` ``[P]``.
    """

    def __init__(self, tables: list[_Table], screen: Screen, shape: tuple[int, int]):
        self.tables, self.screen, self.shape = tables, screen, (int(shape[0]), int(shape[1]))
        self.canvas = Canvas(screen, self.shape)
        start = np.concatenate([t.start for t in tables])
        stop = np.concatenate([t.stop for t in tables])
        table = np.concatenate([np.full(len(t.start), i) for i, t in enumerate(tables)])
        row = np.concatenate([np.arange(len(t.start)) for t in tables])
        order = np.argsort(start, kind="stable")
        self.start, self.stop, self.table, self.row = start[order], stop[order], table[order], row[order]
        self.gray = np.concatenate([t.gray for t in tables])[order]
        # twinlab's own export carries its per-frame conditions; nothing is derived for it
        self.own = all(t.kind.passthrough for t in tables)
        self.names = [] if self.own else sorted({k for t in tables for k in t.params})
        self.extra = {k: v.dtype for t in tables for k, v in t.extra.items()}
        self._images = {i: _resize(t.images, self.shape) for i, t in enumerate(tables) if hasattr(t, "images")}

    def domain(self, k: int) -> str:
        return self.tables[int(self.table[k])].kind.domain

    def index_at(self, t: np.ndarray) -> np.ndarray:
        """The presentation on the monitor at each time ``t`` (s; -1 where none is)."""
        k = np.searchsorted(self.start, t + 1e-9, side="right") - 1
        kk = np.clip(k, 0, None)
        on = (k >= 0) & (t < self.stop[kk] - 1e-9)
        return np.where(on, kk, -1)

    def render(self, t: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Frames ``[len(t), H, W]`` shown at times ``t`` (s) and their per-frame conditions."""
        t = np.asarray(t, dtype=np.float64)
        k = self.index_at(t)
        frames = np.full((len(t), *self.shape), GRAY, dtype=np.float32)
        cond = {name: np.full(len(t), np.nan) for name in self.names}
        cond.update({name: np.full(len(t), _FILL.get(dt.kind, np.nan), dtype=dt) for name, dt in self.extra.items()})
        runs = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        for a, b in zip(runs, np.r_[runs[1:], len(t)]):
            p = int(k[a])
            if p < 0:
                continue
            tab, r = self.tables[int(self.table[p])], int(self.row[p])
            for name, values in tab.params.items():
                if name in cond:
                    cond[name][a:b] = values[r]
            for name, values in tab.extra.items():
                cond[name][a:b] = values[r]
            if self.gray[p]:
                continue
            frames[a:b] = self._draw(tab, int(self.table[p]), r, b - a, float(t[a] - self.start[p]))
        if self.own:
            return frames, cond
        cond["presentation"] = np.where(k >= 0, k, -1).astype(np.int64)
        cond["blank"] = (k < 0) | self.gray[np.clip(k, 0, None)]
        if "image_index" in cond:
            cond["image_index"] = np.where(np.isfinite(cond["image_index"]), cond["image_index"], -1).astype(np.int64)
        if "polarity" in cond:
            cond["polarity"] = np.where(np.isfinite(cond["polarity"]), cond["polarity"], 0).astype(np.int64)
        return frames, cond

    def _draw(self, tab: _Table, ti: int, r: int, n: int, offset_s: float) -> np.ndarray:
        p = {name: float(v[r]) for name, v in tab.params.items()}
        rng = np.random.default_rng(0)  # the families draw nothing random once a row is fixed
        if hasattr(tab, "images"):
            return np.broadcast_to(self._images[ti][int(p["image_index"])], (n, *self.shape))
        if tab.kind.name == "dots":
            spec = GaussianDotsSpec(sigma_deg=p["sigma_deg"], contrast=p["contrast"], screen=self.screen,
                                    height_px=self.shape[0], width_px=self.shape[1])
            row = {"n_frames": n, "blank": False, "dot_x_deg": p["dot_x_deg"], "dot_y_deg": p["dot_y_deg"],
                   "polarity": p["polarity"]}
            return FAMILIES["gaussian_dots"].render(spec, row, self.canvas, rng)
        # a full-field grating is a Gabor of infinite envelope; a presentation entered late
        # continues its drift (the phase advances by tf * offset)
        spec = GaborSpec(sigma_deg=float("inf"), contrast=p["contrast"], screen=self.screen,
                         height_px=self.shape[0], width_px=self.shape[1])
        direction = p.get("direction_deg", p.get("orientation_deg"))
        row = {"n_frames": n, "blank": False, "center_x_deg": 0.0, "center_y_deg": 0.0, "direction_deg": direction,
               "sf_cpd": p["sf_cpd"], "tf_hz": p["tf_hz"], "phase_deg": p["phase_deg"] - 360.0 * p["tf_hz"] * offset_s}
        return FAMILIES["gabor"].render(spec, row, self.canvas, rng)


def _resize(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Template images resampled (bilinear) onto the render grid, when their size differs."""
    if images.shape[1:] == tuple(shape):
        return images
    from scipy.ndimage import zoom

    f = (1, shape[0] / images.shape[1], shape[1] / images.shape[2])
    return np.clip(zoom(images, f, order=1), 0, 1).astype(np.float32)[:, : shape[0], : shape[1]]


def read_presentations(nwb, path: Path, templates: dict[str, np.ndarray], screen: Screen,
                       shape: tuple[int, int] | None) -> Presentations | None:
    """Every presentation table of an open NWB file (None if it has none).

    ``shape``: render grid ``(height_px, width_px)``; None takes the template's size, else
    36 x 64 (the Sensorium size).
    """
    tables = []
    for name, table in (nwb.intervals or {}).items():
        if name in SKIPPED_TABLES or len(table) == 0:
            continue
        where = f"{path}: intervals/{name}"
        kind = _kind_of(name, set(table.colnames), where)
        if kind is not None:
            tables.append(_Table(name, table, kind, templates, where))
    if not tables:
        return None
    if shape is None:
        sizes = [t.images.shape[1:] for t in tables if t.kind.name == "natural_scenes"]
        shape = sizes[0] if sizes else (36, 64)
    return Presentations(tables, screen, shape)


def read_table(name: str, table, kind: str, templates: dict[str, np.ndarray], where: str) -> _Table:
    """One presentation table of a known ``kind`` (a name of :data:`KINDS`)."""
    return _Table(name, table, next(k for k in KINDS if k.name == kind), templates, where)
