"""In vivo vs in silico: how well a twin's tuning agrees with the mouse's, neuron by neuron.

In: two tuning Datasets over ``neuron`` (from :mod:`twinlab.tuning`, or a folder of real
in-vivo indices such as ``sensorium2023/tuning/mouseB``, see :func:`load_tuning`). Out:

* :func:`match_tuning` -> a table (``pandas.DataFrame``, one row per neuron present in both,
  matched by ``unit_id``) of both sides' OSI, DSI, SSI and preferences and their
  differences: preferred orientation (mod 180), direction (mod 360), location (degrees and
  monitor widths);
* :func:`threshold_table` -> medians and counts of the absolute differences among neurons
  selective *in silico* above each threshold (the paper's Fig. 4 statistics);
* :func:`compare_distributions` -> when identities cannot be matched (real mice vs a
  twin of another mouse): OSI/DSI distributions, medians, selective fractions, a two-sample
  Kolmogorov-Smirnov test and Cliff's delta as effect size.

Angles in degrees, locations in AE degrees and monitor widths.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .errors import InputError
from .storage import load_dataset
from .tuning import angular_difference
from .tuning.run import load_measured

__all__ = [
    "load_tuning",
    "load_tunings",
    "match_tuning",
    "threshold_table",
    "compare_distributions",
    "check_same_mouse",
    "write_report",
    "OSI_THRESHOLDS",
    "DSI_THRESHOLDS",
    "SSI_THRESHOLDS",
]

OSI_THRESHOLDS = (0.0, 0.3, 0.5)
DSI_THRESHOLDS = (0.0, 0.3, 0.5)
SSI_THRESHOLDS = (0.0, 6.0, 8.0)

_SIDE_VARS = ("osi", "dsi", "ssi", "pref_orientation_deg", "pref_direction_deg", "rf_x_deg", "rf_y_deg",
              "rf_x_mw", "rf_y_mw", "orientation_selective", "direction_selective")


def load_tuning(path: str | os.PathLike) -> xr.Dataset:
    """A tuning store written by ``twinlab tuning``, a folder of per-neuron ``.npy`` indices,
    or a scan / session store, whose tuning is measured here (:func:`twinlab.tuning.run.load_measured`).

    Folder layout (the Sensorium 2023 derived tuning): ``OSI.npy``, ``DSI.npy`` and
    optionally ``orientation_selective.npy``, ``direction_selective.npy``,
    ``tuning_curve.npy`` ``[neuron, 8]`` (0-315 deg in 45 deg steps), ``unit_ids.npy``.
    Such folders get ``attrs["identities"] = "unmatched"`` unless unit ids are given.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir() and (path / "OSI.npy").exists():
        return _load_npy_folder(path)
    ds = load_dataset(path)
    if "responses" in ds.variables:
        return load_measured(path)
    if "neuron" not in ds.dims:
        raise InputError(f"{path}: not a tuning table (no 'neuron' dimension)")
    return ds


def load_tunings(paths) -> xr.Dataset:
    """Several tuning tables of the same neurons (e.g. pink noise and dots) merged into one."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise InputError("no tuning table given")
    parts = [load_tuning(p) for p in paths]
    if len(parts) == 1:
        return parts[0]
    ids = [np.asarray(p.unit_id.values) if "unit_id" in p.coords else None for p in parts]
    if any(i is None for i in ids) or any(not np.array_equal(ids[0], i) for i in ids[1:]):
        raise InputError("tuning tables to merge must hold the same neurons (unit_id) in the same order")
    attrs = {}
    for p in parts:
        attrs.update(p.attrs)
    mice = {str(p.attrs.get("mouse_id", "")) for p in parts} - {""}
    if len(mice) > 1:
        raise InputError(f"tuning tables to merge are of different mice ({', '.join(sorted(mice))})")
    merged = xr.merge([p.drop_vars(["sta"], errors="ignore") for p in parts], compat="override", join="override")
    merged.attrs = attrs
    return merged


def _load_npy_folder(path: Path) -> xr.Dataset:
    def read(name):
        f = path / f"{name}.npy"
        return np.load(f, allow_pickle=False) if f.exists() else None

    osi, dsi = read("OSI"), read("DSI")
    if dsi is None or len(dsi) != len(osi):
        raise InputError(f"{path}: DSI.npy is missing or does not match OSI.npy in length")
    data = {"osi": ("neuron", osi.astype(np.float64)), "dsi": ("neuron", dsi.astype(np.float64))}
    for name in ("orientation_selective", "direction_selective"):
        v = read(name)
        if v is not None:
            data[name] = ("neuron", v.astype(bool))
    curve = read("tuning_curve")
    coords = {}
    if curve is not None:
        dirs = np.arange(curve.shape[1]) * 360.0 / curve.shape[1]
        data["curve"] = (("neuron", "direction_deg"), curve.astype(np.float64))
        coords["direction_deg"] = dirs
    ids = read("unit_ids")
    coords["unit_id"] = ("neuron", ids if ids is not None else np.arange(len(osi)))
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(source=str(path), identities="matched" if ids is not None else "unmatched",
                    osi_definition="vector sum (as provided)", dsi_definition="vector sum (as provided)")
    return ds


def _ids(ds: xr.Dataset, side: str) -> np.ndarray:
    if "unit_id" in ds.coords:
        return np.asarray(ds.unit_id.values)
    raise InputError(f"{side} tuning has no 'unit_id' to match neurons by")


def match_tuning(in_vivo: xr.Dataset, in_silico: xr.Dataset) -> pd.DataFrame:
    """One row per neuron present on both sides, with both values and their differences."""
    a_ids, b_ids = _ids(in_vivo, "in-vivo"), _ids(in_silico, "in-silico")
    common, ia, ib = np.intersect1d(a_ids, b_ids, return_indices=True)
    if len(common) == 0:
        raise InputError("no neuron of the in-vivo tuning matches an in-silico neuron by unit_id")
    table = pd.DataFrame({"unit_id": common})
    for name in _SIDE_VARS:
        for side, ds, idx in (("vivo", in_vivo, ia), ("silico", in_silico, ib)):
            if name in ds:
                table[f"{name}_{side}"] = np.asarray(ds[name].values)[idx]
    if "area" in in_silico.coords:
        table["area"] = np.asarray(in_silico.area.values)[ib]
    if {"pref_orientation_deg_vivo", "pref_orientation_deg_silico"} <= set(table):
        table["d_orientation_deg"] = np.abs(angular_difference(
            table.pref_orientation_deg_silico, table.pref_orientation_deg_vivo, 180.0))
    if {"pref_direction_deg_vivo", "pref_direction_deg_silico"} <= set(table):
        table["d_direction_deg"] = np.abs(angular_difference(
            table.pref_direction_deg_silico, table.pref_direction_deg_vivo, 360.0))
    if {"rf_x_deg_vivo", "rf_x_deg_silico"} <= set(table):
        table["d_location_deg"] = np.hypot(table.rf_x_deg_silico - table.rf_x_deg_vivo,
                                           table.rf_y_deg_silico - table.rf_y_deg_vivo)
    if {"rf_x_mw_vivo", "rf_x_mw_silico"} <= set(table):
        table["d_location_mw"] = np.hypot(table.rf_x_mw_silico - table.rf_x_mw_vivo,
                                          table.rf_y_mw_silico - table.rf_y_mw_vivo)
    return table


def threshold_table(matched: pd.DataFrame) -> pd.DataFrame:
    """Median absolute differences among neurons above each in-silico selectivity threshold.

    Rows: (quantity, index, threshold) with the count, the fraction of matched neurons, and
    the median / 25th / 75th percentile of the difference; NaN results are counted apart.
    """
    rows = []
    plans = [("orientation", "osi", "d_orientation_deg", OSI_THRESHOLDS),
             ("direction", "dsi", "d_direction_deg", DSI_THRESHOLDS),
             ("location (deg)", "ssi", "d_location_deg", SSI_THRESHOLDS),
             ("location (monitor widths)", "ssi", "d_location_mw", SSI_THRESHOLDS)]
    for quantity, index, diff, thresholds in plans:
        col = f"{index}_silico"
        if diff not in matched or col not in matched:
            continue
        for thr in thresholds:
            sel = matched[matched[col] > thr] if thr > 0 else matched
            d = sel[diff].to_numpy(dtype=np.float64)
            ok = np.isfinite(d)
            rows.append({
                "quantity": quantity, "index": index, "threshold": thr, "n": int(ok.sum()),
                "n_nan": int((~ok).sum()), "fraction": ok.sum() / max(len(matched), 1),
                "median": float(np.median(d[ok])) if ok.any() else np.nan,
                "q25": float(np.percentile(d[ok], 25)) if ok.any() else np.nan,
                "q75": float(np.percentile(d[ok], 75)) if ok.any() else np.nan,
            })
    return pd.DataFrame(rows)


def _cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """P(a > b) - P(a < b), from ranks (O(n log n))."""
    ranks = stats.rankdata(np.concatenate([a, b]))
    u = ranks[: len(a)].sum() - len(a) * (len(a) + 1) / 2
    return float(2 * u / (len(a) * len(b)) - 1)


def compare_distributions(in_vivo: xr.Dataset, in_silico: xr.Dataset, selective_threshold: float = 0.3) -> pd.DataFrame:
    """Unmatched comparison of OSI and DSI distributions (medians, fractions, KS, Cliff's delta).

    ``selective fraction`` uses the side's own boolean ``orientation_selective`` /
    ``direction_selective`` where present, else index > ``selective_threshold``.
    """
    rows = []
    for index, flag in (("osi", "orientation_selective"), ("dsi", "direction_selective")):
        if index not in in_vivo or index not in in_silico:
            continue
        a = np.asarray(in_vivo[index].values, dtype=np.float64)
        b = np.asarray(in_silico[index].values, dtype=np.float64)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) == 0 or len(b) == 0:
            raise InputError(f"no finite {index.upper()} values on one side")
        ks = stats.ks_2samp(a, b)

        def frac(ds, values):
            if flag in ds:
                return float(np.mean(np.asarray(ds[flag].values, dtype=bool)))
            return float(np.mean(values > selective_threshold))

        rows.append({
            "index": index, "n_vivo": len(a), "n_silico": len(b),
            "median_vivo": float(np.median(a)), "median_silico": float(np.median(b)),
            "selective_fraction_vivo": frac(in_vivo, a), "selective_fraction_silico": frac(in_silico, b),
            "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
            "cliffs_delta": _cliffs_delta(b, a),
        })
    if not rows:
        raise InputError("neither OSI nor DSI is present on both sides")
    return pd.DataFrame(rows)


def check_same_mouse(in_vivo: xr.Dataset, in_silico: xr.Dataset) -> None:
    """Refuse to match neurons by ``unit_id`` across mice, or without identities (one line)."""
    hint = "compare the distributions instead with --unmatched"
    if in_vivo.attrs.get("identities", "matched") == "unmatched":
        where = in_vivo.attrs.get("source", "the in-vivo table")
        raise InputError(f"{where} has no unit ids, so its neurons cannot be matched; {hint}")
    a, b = str(in_vivo.attrs.get("mouse_id", "")), str(in_silico.attrs.get("mouse_id", ""))
    if a and b and a != b:
        raise InputError(f"the in-vivo tuning is of mouse {a!r} but the in-silico one of mouse {b!r}: neurons of "
                         f"different mice cannot be matched by unit_id; {hint}")


def write_report(in_vivo: xr.Dataset, in_silico: xr.Dataset, out: str | os.PathLike, unmatched: bool = False) -> Path:
    """Write the comparison (CSV tables, PNG + PDF figures, ``summary.md``) into folder ``out``.

    Neurons are matched by ``unit_id`` (both sides must be of the same mouse, see
    :func:`check_same_mouse`); with ``unmatched`` only the distributions are compared and
    the summary says so. All or nothing: the folder appears only when every file is written.
    """
    from .figures import agreement_figure, distribution_figure, save_figure
    from .storage import atomic_output

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} already exists and is not empty")
    if not unmatched:
        check_same_mouse(in_vivo, in_silico)
    matched_ids = not unmatched
    with atomic_output(out) as tmp:
        tmp.mkdir()
        lines = ["# In vivo vs in silico tuning", "",
                 f"In vivo: mouse {in_vivo.attrs.get('mouse_id') or 'unknown'}, session "
                 f"{in_vivo.attrs.get('session_id') or 'unknown'}. In silico: mouse "
                 f"{in_silico.attrs.get('mouse_id') or 'unknown'} ({in_silico.attrs.get('source_responder') or 'twin'}).",
                 ""]
        if matched_ids:
            table = match_tuning(in_vivo, in_silico)
            thresholds = threshold_table(table)
            table.to_csv(tmp / "matched_neurons.csv", index=False)
            thresholds.to_csv(tmp / "agreement_by_threshold.csv", index=False)
            save_figure(agreement_figure(table, OSI_THRESHOLDS, DSI_THRESHOLDS, SSI_THRESHOLDS), tmp / "agreement")
            lines += [f"Neurons matched by unit_id: {len(table)} "
                      f"(in vivo {in_vivo.sizes['neuron']}, in silico {in_silico.sizes['neuron']}).", "",
                      "| quantity | threshold | n | median abs. difference |", "| --- | --- | --- | --- |"]
            for _, r in thresholds.iterrows():
                lines.append(f"| {r.quantity} | {r['index'].upper()} > {r.threshold:g} | {r.n} | {r['median']:.3g} |")
            n_nan = int(table.filter(like="_silico").isna().any(axis=1).sum())
            lines += ["", f"Neurons with an unfit (NaN) value on the in-silico side: {n_nan}."]
        else:
            lines += ["Unmatched comparison (--unmatched): neurons are not paired, the distributions are compared.", ""]
        dist = compare_distributions(in_vivo, in_silico)
        dist.to_csv(tmp / "distributions.csv", index=False)
        save_figure(distribution_figure(in_vivo, in_silico, dist), tmp / "distributions")
        lines += ["", "| index | median in vivo | median in silico | selective in vivo | selective in silico "
                  "| KS D (p) | Cliff's delta |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for _, r in dist.iterrows():
            lines.append(f"| {r['index'].upper()} | {r.median_vivo:.3f} | {r.median_silico:.3f} | "
                         f"{r.selective_fraction_vivo:.2f} | {r.selective_fraction_silico:.2f} | "
                         f"{r.ks_statistic:.3f} ({r.ks_pvalue:.2g}) | {r.cliffs_delta:.3f} |")
        (tmp / "summary.md").write_text("\n".join(lines) + "\n")
    return out
