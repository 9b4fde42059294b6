"""Training settings: the paper's recipe as defaults and presets, overrides, refusals."""

import pytest

from twinlab.errors import InputError
from twinlab.train import TrainConfig, resolve_train_config, train_config_to_toml, train_preset_names
from twinlab.train.config import train_config_from_dict


def test_paper_preset_is_the_papers_recipe_and_the_defaults():
    cfg = resolve_train_config("paper")
    assert cfg == TrainConfig()
    assert (cfg.loss, cfg.optimizer, cfg.nesterov, cfg.momentum, cfg.lr, cfg.weight_decay) == ("poisson", "sgd", True, 0.9, 0.1, 1e-4)
    assert (cfg.epochs, cfg.iterations, cfg.batch_size, cfg.clip_frames, cfg.burn_in) == (200, 512, 5, 70, 10)
    # 10 epochs warm-up, 90 cosine, restart, 100 cosine
    assert cfg.schedule.warmup * cfg.epochs == pytest.approx(10)
    assert cfg.schedule.first_cycle * cfg.epochs == pytest.approx(90)
    assert cfg.schedule.restart
    assert {"paper", "small", "gpu"} <= set(train_preset_names())


def test_overrides_reach_nested_tables_and_toml_round_trips(tmp_path):
    cfg = resolve_train_config("small", ["epochs=7", "schedule.restart=false", "loss=mse"])
    assert (cfg.epochs, cfg.schedule.restart, cfg.loss) == (7, False, "mse")
    path = tmp_path / "mine.toml"
    path.write_text(train_config_to_toml(cfg, "a header"))
    assert resolve_train_config(str(path)) == cfg


def test_a_model_preset_file_as_config_gives_the_papers_recipe_for_it():
    from twinlab.model.config import MODELS

    path = str(MODELS.path("small"))
    cfg = resolve_train_config(path)
    assert cfg.model.endswith("small.toml") and cfg.epochs == 200


@pytest.mark.parametrize("overrides, words", [
    (["learning_rate=0.1"], "unknown key 'learning_rate'"),
    (["schedule.warmpu=0.1"], "unknown key 'warmpu'"),
    (["loss=l1"], "loss must be one of"),
    (["burn_in=80"], "burn_in (80)"),
    (["epochs=two"], "epochs = 'two'"),
])
def test_bad_settings_are_refused_in_one_line_naming_them(overrides, words):
    with pytest.raises(InputError) as e:
        resolve_train_config("paper", overrides)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_unknown_preset_and_bad_file(tmp_path):
    with pytest.raises(InputError, match="unknown training preset 'nope'"):
        resolve_train_config("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = [")
    with pytest.raises(InputError, match="not valid TOML"):
        resolve_train_config(str(bad))
    with pytest.raises(InputError, match="must be a table"):
        train_config_from_dict({"schedule": 3})
