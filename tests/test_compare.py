"""In vivo vs in silico comparison: matching, wrapping, thresholds, reports."""

import numpy as np
import pytest
import xarray as xr

from twinlab.compare import compare_distributions, load_tuning, load_tunings, match_tuning, threshold_table, write_report
from twinlab.errors import InputError


def _tuning(ids, osi, pref_ori, pref_dir, dsi=None):
    n = len(ids)
    return xr.Dataset(
        {"osi": ("neuron", np.asarray(osi, float)), "dsi": ("neuron", np.asarray(dsi if dsi is not None else osi, float)),
         "pref_orientation_deg": ("neuron", np.asarray(pref_ori, float)),
         "pref_direction_deg": ("neuron", np.asarray(pref_dir, float))},
        coords={"unit_id": ("neuron", np.asarray(ids))},
    ) if n else None


def test_matching_by_unit_id_and_wrapped_differences():
    vivo = _tuning([1, 2, 3, 4], [0.6, 0.2, 0.4, 0.9], [179, 10, 90, 45], [359, 10, 270, 45])
    silico = _tuning([4, 3, 1, 9], [0.8, 0.35, 0.7, 0.1], [40, 95, 1, 0], [40, 90, 1, 0])
    m = match_tuning(vivo, silico).set_index("unit_id")
    assert list(m.index) == [1, 3, 4]
    assert m.loc[1, "d_orientation_deg"] == pytest.approx(2)  # 179 vs 1, mod 180
    assert m.loc[1, "d_direction_deg"] == pytest.approx(2)  # 359 vs 1, mod 360
    assert m.loc[3, "d_direction_deg"] == pytest.approx(180)
    t = threshold_table(m.reset_index()).set_index(["quantity", "threshold"])
    assert t.loc[("orientation", 0.5), "n"] == 2  # in-silico OSI 0.8 and 0.7
    assert t.loc[("orientation", 0.5), "median"] == pytest.approx(np.median([5, 2]))
    assert t.loc[("orientation", 0.3), "n"] == 3


def test_no_common_neurons_is_an_input_error(tmp_path):
    a = _tuning([1, 2], [0.5, 0.5], [0, 0], [0, 0])
    b = _tuning([3, 4], [0.5, 0.5], [0, 0], [0, 0])
    with pytest.raises(InputError, match="no neuron"):
        write_report(a, b, tmp_path / "rep")
    assert not (tmp_path / "rep").exists()


def test_distributions_detect_a_shift_and_accept_a_match():
    rng = np.random.default_rng(0)
    a = xr.Dataset({"osi": ("neuron", rng.beta(2, 6, 3000)), "dsi": ("neuron", rng.beta(1.5, 8, 3000))})
    same = xr.Dataset({"osi": ("neuron", rng.beta(2, 6, 3000)), "dsi": ("neuron", rng.beta(1.5, 8, 3000))})
    shifted = xr.Dataset({"osi": ("neuron", rng.beta(4, 4, 3000)), "dsi": ("neuron", rng.beta(1.5, 8, 3000))})
    ok = compare_distributions(a, same).set_index("index")
    bad = compare_distributions(a, shifted).set_index("index")
    assert ok.loc["osi", "ks_pvalue"] > 0.01 and abs(ok.loc["osi", "cliffs_delta"]) < 0.05
    assert bad.loc["osi", "ks_pvalue"] < 1e-10 and bad.loc["osi", "cliffs_delta"] > 0.4
    assert ok.loc["osi", "median_vivo"] == pytest.approx(np.median(a.osi.values))


def test_npy_folder_and_report(tmp_path):
    folder = tmp_path / "mouseX"
    folder.mkdir()
    rng = np.random.default_rng(1)
    np.save(folder / "OSI.npy", rng.random(200).astype(np.float32))
    np.save(folder / "DSI.npy", rng.random(200).astype(np.float32) / 2)
    np.save(folder / "orientation_selective.npy", rng.random(200) > 0.4)
    vivo = load_tuning(folder)
    assert vivo.attrs["identities"] == "unmatched" and vivo.sizes["neuron"] == 200
    silico = xr.Dataset({"osi": ("neuron", rng.random(50)), "dsi": ("neuron", rng.random(50) / 2)},
                        coords={"unit_id": ("neuron", np.arange(50))})
    # no unit ids: pairing neurons is refused unless the unmatched comparison is asked for
    with pytest.raises(InputError, match="cannot be matched; compare the distributions instead with --unmatched"):
        write_report(vivo, silico, tmp_path / "rep")
    assert not (tmp_path / "rep").exists()
    out = write_report(vivo, silico, tmp_path / "rep", unmatched=True)
    text = (out / "summary.md").read_text()
    assert "Unmatched comparison" in text
    assert (out / "distributions.csv").exists() and (out / "distributions.png").exists()
    frac = compare_distributions(vivo, silico).set_index("index").loc["osi", "selective_fraction_vivo"]
    assert frac == pytest.approx(np.mean(np.load(folder / "orientation_selective.npy")))


def test_merging_tables_of_the_same_neurons(tmp_path):
    a = _tuning([5, 6], [0.5, 0.1], [10, 20], [10, 200])
    b = xr.Dataset({"ssi": ("neuron", [9.0, 4.0])}, coords={"unit_id": ("neuron", [5, 6])})
    a.to_netcdf(tmp_path / "a.nc")
    b.to_netcdf(tmp_path / "b.nc")
    merged = load_tunings([tmp_path / "a.nc", tmp_path / "b.nc"])
    assert set(merged.data_vars) >= {"osi", "ssi"}
    c = xr.Dataset({"ssi": ("neuron", [9.0, 4.0])}, coords={"unit_id": ("neuron", [6, 5])})
    c.to_netcdf(tmp_path / "c.nc")
    with pytest.raises(InputError, match="same neurons"):
        load_tunings([tmp_path / "a.nc", tmp_path / "c.nc"])


def test_neurons_of_different_mice_are_not_matched(tmp_path):
    ids = {"unit_id": ("neuron", np.arange(5))}
    vivo = xr.Dataset({"osi": ("neuron", np.linspace(0, 1, 5))}, coords=ids, attrs={"mouse_id": "mA"})
    silico = xr.Dataset({"osi": ("neuron", np.linspace(0, 1, 5)), "dsi": ("neuron", np.zeros(5))}, coords=ids,
                        attrs={"mouse_id": "mB"})
    vivo["dsi"] = ("neuron", np.zeros(5))
    with pytest.raises(InputError, match="of mouse 'mA' but the in-silico one of mouse 'mB'"):
        write_report(vivo, silico, tmp_path / "rep")
    assert not (tmp_path / "rep").exists()
    assert (write_report(vivo, silico, tmp_path / "rep", unmatched=True) / "distributions.csv").exists()
    with pytest.raises(InputError, match="different mice"):
        load_tunings_of(tmp_path, vivo, silico)


def load_tunings_of(tmp_path, *parts):
    paths = []
    for k, p in enumerate(parts):
        paths.append(tmp_path / f"t{k}.nc")
        p.to_netcdf(paths[-1], engine="scipy")
    return load_tunings(paths)
