"""The preset engine: every shipped preset round-trips, and the one coercion's rules and refusals."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal, Optional

import pytest

from twinlab.errors import InputError
from twinlab.model.config import MODELS
from twinlab.paper import FIGURE_SETTINGS, available_figures
from twinlab.settings import PresetKind, build_dataclass, merge, parse_overrides
from twinlab.sim.cohort_config import COHORTS
from twinlab.stimuli import STIMULI
from twinlab.train.config import TRAINING

KINDS = {"models": MODELS, "train": TRAINING, "sim": COHORTS, "stimuli": STIMULI, "figures": FIGURE_SETTINGS}


def _every_preset():
    root = resources.files("twinlab").joinpath("presets")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert folders == sorted(KINDS), f"a preset folder without a kind in this test: {folders}"
    return [(folder, name) for folder in folders for name in KINDS[folder].names()]


@pytest.mark.parametrize("folder, name", _every_preset())
def test_every_preset_round_trips_through_toml(folder, name):
    kind = KINDS[folder]
    if folder == "figures" and name not in available_figures():
        pytest.skip(f"figure {name} is not in this checkout")
    obj = kind.resolve(name)
    text = kind.to_toml(obj, header=f"{folder}/{name}")
    again = kind.from_dict(tomllib.loads(text), "written", name)
    assert again == obj and type(again) is type(obj)
    assert kind.to_toml(again, header=f"{folder}/{name}") == text  # and writing is deterministic


def test_kinds_list_their_folders():
    assert {"foundation", "small"} <= set(MODELS.names()) and {"paper", "small"} <= set(TRAINING.names())
    assert COHORTS.names() == ["foundation_cohort", "new_mice", "shipped_cohort", "shipped_new_mice"]
    assert "gabor" in STIMULI.names() and "fig2" in FIGURE_SETTINGS.names()


# -- the coercion rules, on a dataclass built for it -------------------------------------------


@dataclass(frozen=True)
class Inner:
    a: int = 1
    b: str = "x"


@dataclass(frozen=True)
class Outer:
    n: int = 0
    x: float = 0.5
    on: bool = False
    name: str = "s"
    many: tuple[float, ...] = (1.0, 2.0)
    pair: tuple[int, str] = (0, "a")
    maybe: Optional[int] = None  # noqa: UP045 - typing.Optional, as well as the | form below
    either: int | str = 3
    mode: Literal["fast", "slow"] = "fast"
    inner: Inner = field(default_factory=lambda: Inner(a=7, b="seven"))
    inners: tuple[Inner, ...] = ()

    def __post_init__(self) -> None:
        if self.n < 0:
            raise InputError(f"n must be non-negative, got {self.n}")


def test_values_are_coerced_to_their_type_hints():
    o = build_dataclass(Outer, {"n": 3.0, "x": 2, "many": [1, 2.5], "pair": [4, "b"], "maybe": 5, "either": "w",
                                "mode": "slow", "inners": [{"a": 2}, {}]}, "t")
    assert o.n == 3 and type(o.n) is int and o.x == 2.0 and type(o.x) is float
    assert o.many == (1.0, 2.5) and all(type(v) is float for v in o.many) and o.pair == (4, "b")
    assert o.maybe == 5 and o.either == "w" and o.mode == "slow"
    assert o.inners == (Inner(a=2), Inner())
    assert build_dataclass(Outer, {"many": 3, "either": 4, "maybe": None}, "t").many == (3.0,)  # one value: a list of one
    assert build_dataclass(Outer, {"either": 4}, "t").either == 4


def test_a_partial_table_fills_in_from_the_fields_default():
    o = build_dataclass(Outer, {"inner": {"a": 9}}, "t")
    assert o.inner == Inner(a=9, b="seven")  # b from the field's default, not from Inner()


@pytest.mark.parametrize("values, words", [
    ({"nope": 1}, "t: unknown key 'nope' (known: either, inner, inners, many, maybe, mode, n, name, on, pair, x)"),
    ({"inner": {"c": 1}}, "t [inner]: unknown key 'c' (known: a, b)"),
    ({"n": 1.5}, "t: n = 1.5 is not a valid int"),
    ({"n": True}, "t: n = True is not a valid int"),
    ({"on": 1}, "t: on = 1 is not a valid bool"),
    ({"x": "big"}, "t: x = 'big' is not a valid float"),
    ({"name": 3}, "t: name = 3 is not a valid str"),
    ({"many": [1, "a"]}, "t: many[1] = 'a' is not a valid float"),
    ({"pair": [1]}, "t: pair = [1] is not a valid list of 2 values"),
    ({"pair": ["a", "b"]}, "t: pair[0] = 'a' is not a valid int"),
    ({"maybe": "z"}, "t: maybe = 'z' is not a valid int or None"),
    ({"either": 1.5}, "t: either = 1.5 is not a valid int or str"),
    ({"mode": "medium"}, "t: mode = 'medium' is not a valid one of 'fast', 'slow'"),
    ({"inner": 3}, "t: inner must be a table of settings"),
    ({"inner": {"a": "q"}}, "t [inner]: a = 'q' is not a valid int"),
    ({"inners": [{"a": 1}, {"z": 0}]}, "t [inners[1]]: unknown key 'z' (known: a, b)"),
    ({"n": -1}, "t: n must be non-negative, got -1"),  # the dataclass's own check, named by its table
    ({"n": float("nan")}, "t: n = nan is not a valid int"),
    ({"x": float("inf")}, "t: x = inf must be a finite number"),
    ({"n": 2**70}, "t: n = 1180591620717411303424... is out of range (integers up to 2**63)"),
])
def test_bad_values_are_one_line_errors_naming_the_table(values, words):
    with pytest.raises(InputError) as e:
        build_dataclass(Outer, values, "t")
    assert str(e.value) == words


def test_overrides_parse_as_toml_and_merge_into_tables():
    extra = parse_overrides(["n=2", "inner.a=5", "many=[1, 2]", "name=plain words", "on=true"])
    assert extra == {"n": 2, "inner": {"a": 5}, "many": [1, 2], "name": "plain words", "on": True}
    assert merge({"inner": {"a": 1, "b": "k"}, "n": 0}, extra)["inner"] == {"a": 5, "b": "k"}
    for bad, words in [("n", "key=value"), ("=3", "key=value")]:
        with pytest.raises(InputError, match=words):
            parse_overrides([bad])
    with pytest.raises(InputError, match="'n' is not a table"):
        parse_overrides(["n=1", "n.a=2"])


def test_a_kind_resolves_names_paths_and_overrides(tmp_path):
    kind = PresetKind("models", "model", MODELS.cls, what="model config")
    small = kind.resolve("small", ["recurrent.kind=cvt_lstm"])
    assert small.recurrent.kind == "cvt_lstm" and small == dataclasses.replace(
        MODELS.resolve("small"), recurrent=dataclasses.replace(MODELS.resolve("small").recurrent, kind="cvt_lstm"))
    path = tmp_path / "mine.toml"
    path.write_text(kind.to_toml(small))
    assert kind.resolve(str(path)) == small
    with pytest.raises(InputError, match=r"unknown model preset 'huge' \(known: .*small"):
        kind.resolve("huge")
    with pytest.raises(InputError, match="model file .*missing.toml does not exist"):
        kind.resolve(str(tmp_path / "missing.toml"))
    path.write_text("frame_height = [")
    with pytest.raises(InputError, match="not valid TOML"):
        kind.resolve(str(path))


def test_stimulus_presets_dispatch_on_their_family():
    spec = STIMULI.from_dict({"family": "rdk", "n_dots": 10})
    assert type(spec).__name__ == "RDKSpec" and spec.n_dots == 10
    assert STIMULI.resolve("pink_noise").family == "pink_noise"  # a family name alone: its defaults
    assert STIMULI.to_toml(spec).startswith('family = "rdk"\n')
    with pytest.raises(InputError, match=r"unknown stimulus family 'movie' \(known: gabor, "):
        STIMULI.from_dict({"family": "movie"})
