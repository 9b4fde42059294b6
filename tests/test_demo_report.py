"""The demo's index page: the numbers a reader looks for, in tables, with missing values marked."""

from twinlab.demo import DemoConfig, _write_index


def test_index_tabulates_recovery_and_accuracy(tmp_path):
    truth = {"in_vivo": {"neurons_osi_gt_0.3": 34, "median_orientation_error_deg": 8.96,
                         "neurons_rf_r2_gt_0.5": 45, "median_rf_location_error_deg": 4.17},
             "in_silico": {"neurons_osi_gt_0.3": 0, "median_orientation_error_deg": None,
                           "neurons_rf_r2_gt_0.5": 37, "median_rf_location_error_deg": 37.2}}
    accuracy = [{"domain": "natural_movie", "median_cc_norm": 0.1689, "median_correlation": 0.0247,
                 "median_feve": -0.484, "n_repeats": 10}]
    _write_index(tmp_path, DemoConfig(), truth, accuracy, 3.3)
    text = (tmp_path / "README.md").read_text()
    assert "| in vivo | 34 | 9.0° | 45 | 4.2° |" in text
    assert "| in silico | 0 | — | 37 | 37.2° |" in text
    assert "| natural_movie | 0.169 | 0.025 | -0.484 | 10 |" in text
    assert "{" not in text  # no raw dict or JSON dumps
