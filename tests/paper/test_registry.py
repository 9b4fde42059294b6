"""The figure registry: presets are the dataclass defaults, settings resolve in order, bad input is refused,
runs are planned into a wall-clock budget and a failed run does not take the figure down."""

import tomllib
from importlib import resources

import pytest
from click.testing import CliRunner

from twinlab.errors import InputError
from twinlab.paper import (FIGURES, available_figures, figure_config_to_toml, figure_module, resolve_figure_config,
                           script_main)
from twinlab.paper import _split_settings
from twinlab.paper.common import Job, plan_minutes, run_jobs
from twinlab.settings import build_dataclass

MINE = ("fig2", "fig3", "ed3", "ed5")


def test_six_figures_are_registered():
    assert set(FIGURES) == {"fig2", "fig3", "fig4", "fig5", "ed3", "ed5"}
    assert set(MINE) <= set(available_figures())
    for name in available_figures():
        mod = figure_module(name)
        assert mod.NAME == name and mod.TITLE and callable(mod.run) and isinstance(mod.QUICK, dict)


@pytest.mark.parametrize("name", list(FIGURES))
def test_preset_is_the_dataclass_defaults(name):
    if name not in available_figures():
        pytest.skip(f"{name} is not in this checkout yet")
    mod = figure_module(name)
    preset = resources.files("twinlab").joinpath("presets", "figures", f"{name}.toml")
    assert preset.is_file(), f"twinlab/presets/figures/{name}.toml is missing"
    assert build_dataclass(mod.Config, tomllib.loads(preset.read_text()), name) == mod.Config()
    # and written back, the same again
    assert build_dataclass(mod.Config, tomllib.loads(figure_config_to_toml(mod.Config())), name) == mod.Config()


def test_settings_resolve_defaults_then_quick_then_overrides():
    full = resolve_figure_config("fig3")
    quick = resolve_figure_config("fig3", quick=True)
    assert full.foundation_sim.preset == "foundation_cohort" and full.foundation_sim.n_mice == 8
    # a quick change of one nested field keeps the table's other values (preset stays the foundation cohort)
    assert quick.foundation_sim.preset == "foundation_cohort" and quick.foundation_sim.n_mice == 2
    assert quick.sim.height_px == 18 and quick.train.steps == 16
    mine = resolve_figure_config("fig3", quick=True, settings=["foundation_sim.n_mice=3", "amounts=[1, 2]"])
    assert mine.foundation_sim.n_mice == 3 and mine.amounts == (1.0, 2.0) and mine.sim.height_px == 18


def test_bad_settings_are_one_line_errors():
    with pytest.raises(InputError, match="unknown key 'nope'"):
        resolve_figure_config("fig2", settings=["nope=1"])
    with pytest.raises(InputError, match="n_mice"):
        resolve_figure_config("fig2", settings=["sim.n_mice=many"])
    with pytest.raises(InputError, match="unknown figure"):
        resolve_figure_config("fig9")


def test_run_all_settings_reach_their_figures():
    per = _split_settings(list(MINE), ["fig2.procs=3", "budget_minutes=2", "fig3.amounts=[1]"])
    assert per["fig2"] == ["procs=3", "budget_minutes=2"] and per["fig3"] == ["budget_minutes=2", "amounts=[1]"]
    assert per["ed3"] == ["budget_minutes=2"]
    with pytest.raises(InputError, match="no figure has a setting"):
        _split_settings(list(MINE), ["nonsense=1"])


def test_cli_lists_shows_and_refuses(tmp_path):
    import twinlab.cli.figures  # noqa: F401 - registers the command
    from twinlab.cli import main

    res = CliRunner().invoke(main, ["figures", "--list"])
    assert res.exit_code == 0 and all(n in res.output for n in FIGURES)
    res = CliRunner().invoke(main, ["figures", "ed5", "--quick", "--show-settings", "--set", "amounts=[3]"])
    assert res.exit_code == 0
    shown = build_dataclass(figure_module("ed5").Config, tomllib.loads(res.output), "shown")
    assert shown == resolve_figure_config("ed5", quick=True, settings=["amounts=[3]"])
    res = CliRunner().invoke(main, ["figures", "fig9", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "Error: unknown figure 'fig9'" in res.output
    res = CliRunner().invoke(main, ["figures", "fig2", "--set", "procs=x", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "Error:" in res.output and not (tmp_path / "o").exists()


def test_analyses_script_refuses_bad_settings(tmp_path, capsys):
    assert script_main("ed3", ["--quick", "--out", str(tmp_path / "o"), "--set", "variants=[\"bogus\"]"]) == 2
    assert "Error: ed3: variants" in capsys.readouterr().err


def _jobs(weights, after=None):
    return [Job(f"j{i}", "individual", [], "", None, weight=w, after=(after or {}).get(i, [])) for i, w in enumerate(weights)]


def test_runs_are_planned_into_the_budget():
    # 4 equal runs, 2 at a time: two waves of (u + 10 s overhead) in 100 s -> u = 40 s
    assert plan_minutes(_jobs([1, 1, 1, 1]), procs=2, seconds=100, overhead_s=10) * 60 == pytest.approx(40, abs=0.01)
    # a 3x run first (the foundation), then 4 runs after it on 4 workers: (3u + 10) + (u + 10) = 100 -> u = 20 s
    jobs = _jobs([3, 1, 1, 1, 1], after={i: ["j0"] for i in range(1, 5)})
    assert plan_minutes(jobs, procs=4, seconds=100, overhead_s=10) * 60 == pytest.approx(20, abs=0.01)


def test_a_failed_run_is_reported_and_its_dependents_skipped(tmp_path):
    jobs = [Job("bad", "bogus", [], str(tmp_path / "bad"), None), Job("later", "individual", [], str(tmp_path / "l"),
                                                                        None, after=["bad"])]
    done = run_jobs(jobs, progress=False)
    assert not done["bad"]["ok"] and "bogus" in done["bad"]["error"] and (tmp_path / "bad" / "error.txt").is_file()
    assert not done["later"]["ok"] and done["later"]["error"].startswith("skipped")
