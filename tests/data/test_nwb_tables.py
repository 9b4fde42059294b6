"""NWB parameter tables: every kind is rendered as the stimulus families draw it; bad tables
and files without responses are refused with one line, exit 2, nothing written."""

from datetime import datetime, timezone

import numpy as np
import pytest
from click.testing import CliRunner
from handmade_recordings import plane_segmentation

from twinlab.cli import main
from twinlab.data import read_nwb
from twinlab.geometry import Screen
from twinlab.stimuli import FAMILIES, Canvas, GaborSpec, GaussianDotsSpec

FR = 30.0


def _file(path, tables: dict, *, responses: bool = True, images=None, notes=None, duration_s: float = 4.0):
    """A minimal NWB file: ROI responses (no behaviour at all) and the given interval tables."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.epoch import TimeIntervals
    from pynwb.image import ImageSeries
    from pynwb.ophys import DfOverF, RoiResponseSeries

    nwb = NWBFile(session_description="t", identifier="t1", session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc),
                  stimulus_notes=notes)
    if responses:
        ophys, ps = plane_segmentation(nwb)
        for k in range(3):
            ps.add_roi(image_mask=np.eye(4)[k : k + 1].repeat(4, 0))
        region = ps.create_roi_table_region(region=[0, 1, 2], description="all")
        dff = DfOverF()
        ophys.add(dff)
        t = np.arange(int(duration_s * FR)) / FR
        dff.add_roi_response_series(RoiResponseSeries(name="dff", data=np.ones((len(t), 3), np.float32), rois=region,
                                                      unit="a.u.", timestamps=t))
    if images is not None:
        nwb.add_stimulus_template(ImageSeries(name="scenes", data=images, unit="NA", format="raw", rate=1.0))
    for name, rows in tables.items():
        table = TimeIntervals(name=name, description=name)
        for col in rows[0]:
            if col not in ("start_time", "stop_time"):
                table.add_column(name=col, description=col)
        for row in rows:
            table.add_interval(**row)
        nwb.add_time_intervals(table)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_each_kind_is_drawn_by_its_stimulus_family_on_the_files_monitor(tmp_path):
    screen = Screen(width_cm=40.0, height_cm=30.0, distance_cm=20.0)
    notes = '{"screen": {"width_cm": 40.0, "height_cm": 30.0, "distance_cm": 20.0}}'
    images = (np.arange(2 * 9 * 16).reshape(2, 9, 16) % 256).astype(np.uint8)
    tables = {
        "drifting_gratings": [dict(start_time=0.0, stop_time=1.0, orientation=45.0, spatial_frequency=0.04,
                                   temporal_frequency=2.0, phase=0.25)],
        "static_gratings": [dict(start_time=1.0, stop_time=1.5, orientation=90.0, spatial_frequency=0.08, phase=0.0)],
        "locally_sparse_noise": [dict(start_time=1.5, stop_time=2.0, x_deg=10.0, y_deg=-5.0, color="black",
                                      size_deg=10.0)],
        "natural_scenes": [dict(start_time=2.0, stop_time=2.5, frame=1), dict(start_time=2.5, stop_time=3.0, frame=-1)],
    }
    path = _file(tmp_path / "k.nwb", tables, images=images, notes=notes)
    ds = read_nwb(path, frame_size=(9, 16), trial_s=0)
    assert ds.sizes["trial"] == 5 and ds.attrs["screen"] == ds.attrs["screen"]
    assert list(ds.domain.values) == ["drifting_grating", "static_grating", "gaussian_dots", "natural_image",
                                      "natural_image"]
    assert '"distance_cm": 20.0' in ds.attrs["screen"]
    canvas = Canvas(screen, (9, 16))
    f = ds.frames.values
    # drifting grating: a Gabor of infinite envelope, Allen phase in cycles
    g = GaborSpec(sigma_deg=float("inf"), screen=screen, height_px=9, width_px=16)
    row = dict(n_frames=30, blank=False, center_x_deg=0.0, center_y_deg=0.0, direction_deg=45.0, sf_cpd=0.04,
               tf_hz=2.0, phase_deg=90.0)
    np.testing.assert_allclose(f[:30], FAMILIES["gabor"].render(g, row, canvas, None), atol=1e-6)
    np.testing.assert_array_equal(ds.direction_deg.values[:30], 45.0)
    # static grating: no drift, its orientation kept as orientation_deg
    still = FAMILIES["gabor"].render(g, {**row, "n_frames": 15, "direction_deg": 90.0, "sf_cpd": 0.08, "tf_hz": 0.0,
                                         "phase_deg": 0.0}, canvas, None)
    np.testing.assert_allclose(f[30:45], still, atol=1e-6)
    assert np.isnan(ds.direction_deg.values[30:45]).all() and (ds.orientation_deg.values[30:45] == 90).all()
    # a black dot of size 10 deg = 2 sigma
    d = GaussianDotsSpec(sigma_deg=5.0, screen=screen, height_px=9, width_px=16)
    dot = FAMILIES["gaussian_dots"].render(d, dict(n_frames=15, blank=False, dot_x_deg=10.0, dot_y_deg=-5.0,
                                                   polarity=-1), canvas, None)
    np.testing.assert_allclose(f[45:60], dot, atol=1e-6)
    assert (ds.polarity.values[45:60] == -1).all()
    # natural scene 1 from the template, then gray for -1
    np.testing.assert_allclose(f[60:75], np.broadcast_to(images[1] / 255.0, (15, 9, 16)), atol=1e-6)
    np.testing.assert_array_equal(f[75:90], 0.5)
    # behaviour absent from the file: listed, not pretended
    assert ds.attrs["absent_behavior"] == '["running_speed", "pupil_diameter", "pupil_center"]'


def test_screen_options_override_the_file(tmp_path):
    tables = {"drifting_gratings": [dict(start_time=0.0, stop_time=1.0, direction=0.0, spatial_frequency=0.04,
                                         temporal_frequency=1.0)]}
    path = _file(tmp_path / "s.nwb", tables, notes='{"screen": {"distance_cm": 20.0}}')
    ds = read_nwb(path, screen={"distance_cm": "12", "width_cm": "50"})
    assert '"distance_cm": 12.0' in ds.attrs["screen"] and '"width_cm": 50.0' in ds.attrs["screen"]
    assert ds.frames.shape[1:] == (36, 64)


def _digest(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("case, message", [
    ("unknown_column", "intervals/drifting_gratings: unknown column(s) ['speed_of_light'] for a drifting_gratings "
                       "table; known: direction, direction_deg, orientation"),
    ("unknown_table", "intervals/odd: columns ['wobble'] describe no stimulus twinlab knows; known tables: "
                      "drifting_gratings"),
    ("no_responses", "no RoiResponseSeries"),
    ("bad_screen", "unknown screen field(s) ['depth_cm']"),
])
def test_bad_files_one_line_exit_2_nothing_written(tmp_path, case, message):
    row = dict(start_time=0.0, stop_time=1.0, direction=0.0, spatial_frequency=0.04, temporal_frequency=1.0)
    tables = {"drifting_gratings": [row]}
    if case == "unknown_column":
        tables = {"drifting_gratings": [{**row, "speed_of_light": 3.0}]}
    if case == "unknown_table":
        tables = {"odd": [dict(start_time=0.0, stop_time=1.0, wobble=1.0)]}
    path = _file(tmp_path / "bad.nwb", tables, responses=case != "no_responses")
    before = _digest(tmp_path)
    extra = ["--screen", "depth_cm=3"] if case == "bad_screen" else []
    res = CliRunner().invoke(main, ["import", "nwb", str(path), "--out", str(tmp_path / "m.zarr"), "--quiet", *extra])
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1 and message in res.output
    assert _digest(tmp_path) == before
