import dataclasses
import json
import math
from pathlib import Path

import pytest

from her.config import DEMO_PRESET, OPTIONS, RECIPES, Config, ConfigError, build_config

# A valid value different from the default for every key, so each override can be seen to land.
NON_DEFAULT = {
    "env": "FetchPush",
    "seed": 7,
    "num_timesteps": None,
    "n_epochs": 3,
    "rollout_batch_size": 3,
    "log_path": "somewhere",
    "load_path": "policy.npz",
    "demo_file": "demos.npz",
    "policy_save_interval": 2,
    "layers": 2,
    "hidden": 64,
    "layer_norm": True,
    "learner": "twin",
    "target_noise": 0.2,
    "target_noise_clip": 0.4,
    "Q_lr": 0.002,
    "pi_lr": 0.003,
    "buffer_size": 5000,
    "polyak": 0.9,
    "action_l2": 0.5,
    "max_u": 0.5,
    "clip_obs": 100.0,
    "norm_eps": 0.02,
    "norm_clip": 4.0,
    "gamma": 0.95,
    "clip_return": False,
    "n_cycles": 7,
    "n_batches": 9,
    "batch_size": 512,
    "n_test_rollouts": 4,
    "test_with_polyak": True,
    "random_eps": 0.2,
    "noise_eps": 0.1,
    "replay_strategy": "none",
    "replay_k": 8,
    "replay_priority": "energy",
    "energy_clip": 0.25,
    "desired_share": 0.5,
    "bc_loss": True,
    "q_filter": True,
    "num_demo": 50,
    "demo_batch_size": 64,
    "prm_loss_weight": 0.01,
    "aux_loss_weight": 0.02,
    "demo_relabel": False,
    "demo_legacy": True,
    "demo_reset_p": 0.25,
    "buffer_save_interval": 2,
    "tensorboard": False,
    "tf_threads": 1,
    "stop_success_rate": 0.9,
    "stop_patience": 3,
    "gym_packages": "json",
    "env_kwargs": '{"reward_type": "dense"}',
    "recipe": "stack",
}


def test_every_option_is_covered_by_this_table():
    assert set(NON_DEFAULT) == {f.name for f in OPTIONS}


@pytest.mark.parametrize("key", [k for k, v in NON_DEFAULT.items() if v is not None])
def test_every_key_can_be_overridden_as_a_string(key):
    value = NON_DEFAULT[key]
    user = {key: str(int(value)) if isinstance(value, bool) else str(value)}
    if key in (
        "bc_loss",
        "q_filter",
        "num_demo",
        "demo_batch_size",
        "prm_loss_weight",
        "aux_loss_weight",
        "demo_relabel",
        "demo_reset_p",
        "recipe",
    ):
        user["demo_file"] = "demos.npz"  # demo keys only make sense with demonstrations
    if key == "q_filter":
        user["bc_loss"] = "1"
    if key == "target_noise":
        user["learner"] = "twin"  # the twin learner's key
    config = build_config(user)
    assert getattr(config, key) == value


def test_defaults_match_the_reference():
    c = build_config({"env": "FetchPush"})
    assert (c.layers, c.hidden, c.Q_lr, c.pi_lr, c.buffer_size, c.polyak, c.action_l2) == (
        3,
        256,
        1e-3,
        1e-3,
        1_000_000,
        0.95,
        1.0,
    )
    assert (c.n_cycles, c.n_batches, c.batch_size, c.n_test_rollouts, c.rollout_batch_size) == (50, 40, 256, 10, 2)
    assert (c.random_eps, c.noise_eps, c.replay_k, c.norm_eps, c.norm_clip, c.clip_obs) == (0.3, 0.2, 4, 0.01, 5, 200)
    assert c.T == 50 and c.gamma == pytest.approx(0.98) and c.return_clip == pytest.approx(50.0)
    assert c.relabel_p == pytest.approx(0.8) and not c.bc_loss and not c.q_filter
    # The departures that a fast recipe may switch on are off.
    assert (c.learner, c.layer_norm, c.target_noise, c.replay_priority) == ("ddpg", False, 0.0, "uniform")


def test_task_override_applies_to_every_reach_version_and_user_flags_win():
    assert build_config({"env": "FetchReach"}).n_cycles == 10
    assert build_config({"env": "FetchReach-v4"}).n_cycles == 10
    assert build_config({"env": "FetchReach", "n_cycles": 3}).n_cycles == 3
    assert build_config({"env": "FetchPush"}).n_cycles == 50


def test_demo_preset_then_user_flags():
    c = build_config({"env": "FetchPickAndPlace", "demo_file": "d.npz"})
    for key, value in DEMO_PRESET.items():
        assert getattr(c, key) == value
    c = build_config({"env": "FetchPickAndPlace", "demo_file": "d.npz", "batch_size": 256, "q_filter": "0"})
    assert c.batch_size == 256 and not c.q_filter and c.bc_loss


def test_a_recipe_comes_after_the_demo_preset_and_before_the_users_flags():
    plain = build_config({"env": "FetchStack2", "demo_file": "d.npz"})
    stack = build_config({"env": "FetchStack2", "demo_file": "d.npz", "recipe": "stack"})
    changed = {k for k, v in stack.to_dict().items() if plain.to_dict()[k] != v}
    assert changed == {"recipe", *RECIPES["stack"]}
    assert (stack.make_kwargs, stack.demo_reset_p, stack.random_eps, stack.num_demo) == (
        {"reward_type": "step"},
        0.5,
        0.0,
        1000,
    )
    assert stack.batch_size == DEMO_PRESET["batch_size"] and stack.q_filter  # the demo preset still applies
    mine = build_config({"env": "FetchStack2", "demo_file": "d.npz", "recipe": "stack", "random_eps": 0.1})
    assert mine.random_eps == 0.1 and mine.demo_reset_p == 0.5
    assert build_config({"env": "FetchPush"}).recipe == ""  # faithful unless asked for


def test_the_fast_recipe_changes_its_keys_only_and_halves_the_demo_presets_batches():
    plain, fast = build_config({"env": "FetchPush"}), build_config({"env": "FetchPush", "recipe": "fast"})
    changed = {k for k, v in fast.to_dict().items() if plain.to_dict()[k] != v}
    assert changed == {"recipe", "hidden", "replay_priority"}
    assert (fast.hidden, fast.replay_priority, fast.batch_size) == (128, "energy", 256)
    demos = build_config({"env": "FetchPickAndPlace", "demo_file": "d.npz", "recipe": "fast"})
    assert (demos.batch_size, demos.demo_batch_size, demos.n_cycles, demos.hidden) == (512, 64, 20, 128)
    mine = build_config({"env": "FetchPickAndPlace", "demo_file": "d.npz", "recipe": "fast", "batch_size": 1024})
    assert (mine.batch_size, mine.demo_batch_size) == (1024, 64)  # the user's flags still win


def test_an_unknown_recipe_is_one_line():
    with pytest.raises(ConfigError, match="unknown recipe 'quick': use one of stack, fast, or none"):
        build_config({"env": "FetchStack2", "demo_file": "d.npz", "recipe": "quick"})


@pytest.mark.parametrize(
    "steps, cycles, rbs, epochs",
    [
        (5000, 10, 1, 10),  # the reference README's FetchReach example
        (2.5e6, 50, 1, 1000),  # the demo command of the reference README (without the preset's n_cycles)
        (1e5, 50, 2, 20),
    ],
)
def test_timesteps_to_epochs_per_mpi_process(steps, cycles, rbs, epochs):
    c = build_config({"env": "FetchPush", "num_timesteps": steps, "n_cycles": cycles, "num_env": rbs}, mpi_size=4)
    assert c.n_epochs == epochs and c.mpi_size == 4


def test_num_env_is_an_alias_of_rollout_batch_size():
    assert build_config({"num_env": 3}).rollout_batch_size == 3
    with pytest.raises(ConfigError, match="same key"):
        build_config({"num_env": 3, "rollout_batch_size": 2})


def test_replay_strategy_none_means_no_relabelling():
    assert build_config({"replay_strategy": "none"}).relabel_p == 0.0
    assert build_config({"replay_k": 8}).relabel_p == pytest.approx(8 / 9)


@pytest.mark.parametrize(
    "user, message",
    [
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"replay_k": -1}, "replay_k must be >= 0"),
        (
            {"replay_strategy": "sometimes"},
            "replay_strategy must be one of 'future', 'final', 'episode', 'none', got 'sometimes'",
        ),
        ({"replay_priority": "td"}, "replay_priority must be one of 'uniform', 'energy', got 'td'"),
        ({"energy_clip": 0}, "energy_clip must be > 0"),
        ({"polyak": 1.5}, r"polyak must be in \[0, 1\]"),
        ({"gamma": 1.0}, r"gamma must be in \(0, 1\)"),
        ({"noise_eps": -0.1}, "noise_eps"),
        ({"random_eps": 2}, "random_eps"),
        ({"n_epochs": 2, "num_timesteps": 1e5}, "not both"),
        ({"num_timesteps": 100}, "zero epochs"),
        ({"n_epochs": 0}, "n_epochs must be >= 1"),
        ({"demo_file": "d.npz", "demo_batch_size": 1024}, r"demo_batch_size must be in \[1, batch_size=1024\)"),
        ({"bc_loss": 1}, "bc_loss needs demonstrations"),
        ({"env": "FetchDance"}, "unknown task 'FetchDance'"),
        ({"batchsize": 3}, "did you mean --batch_size"),
        ({"hidden": "wide"}, "hidden must be an integer, got 'wide'"),
        ({"hidden": 2.5}, "hidden must be an integer"),
        ({"clip_return": "maybe"}, "clip_return must be 0/1 or true/false"),
        ({"Q_lr": float("nan")}, "Q_lr must be a positive number"),
        ({"T": 10}, "unknown configuration key --T"),
    ],
)
def test_bad_values_are_one_line_errors(user, message):
    with pytest.raises(ConfigError, match=message) as info:
        build_config(user)
    assert "\n" not in str(info.value)


def test_config_is_frozen_and_serialisable():
    c = build_config({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.seed = 3
    d = c.to_dict()
    assert Config(**d) == c
    assert all(not isinstance(v, float) or math.isfinite(v) for v in d.values())


# ---- property-based: whatever the user types, validation answers with a ConfigError or a valid Config ----

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NUMERIC_KEYS = [f.name for f in OPTIONS if f.name not in ("env", "log_path", "load_path", "demo_file")]
ANY_VALUE = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["1e5", "-0", "nan", "inf", "true", "0x10", " 3 ", ""]),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(NUMERIC_KEYS + ["bogus_key", "num_env"]), ANY_VALUE, max_size=4))
def test_random_values_get_a_config_error_or_a_valid_config(user):
    try:
        config = build_config({**user, "log_path": "unused"})
    except ConfigError as e:
        assert "\n" not in str(e) and str(e)
    else:
        assert config.batch_size >= 1 and 0 < config.gamma < 1 and config.n_epochs >= 1


def test_a_recorded_configuration_rebuilds_to_the_same_config():
    from her.config import config_from_dict

    config = build_config({"env": "FetchPush", "batch_size": 64, "log_path": "x"})
    assert config_from_dict(config.to_dict()) == config
    assert config_from_dict(config.to_dict(), n_epochs=7).n_epochs == 7
    with pytest.raises(ConfigError, match="keys \\['T'\\] are missing"):
        config_from_dict({k: v for k, v in config.to_dict().items() if k != "T"})
    with pytest.raises(ConfigError, match="not a configuration"):
        config_from_dict([1, 2])
    # A run recorded before demo_reset_p existed trained without demo resets, and still resumes.
    older = {k: v for k, v in config.to_dict().items() if k != "demo_reset_p"}
    assert config_from_dict(older) == config and config.demo_reset_p == 0.0


def test_runs_recorded_before_later_keys_still_load():
    """A key added to Config needs the value older runs trained with in ADDED_KEYS: without it, resuming them,
    playing their policies and --config from their params.json all break."""
    from her.config import ADDED_KEYS, config_from_dict

    root = Path(__file__).resolve().parents[1]
    # Recorded before demo_reset_p, gym_packages, env_kwargs and recipe existed; the committed results span more.
    records = [
        root / "tests/data/params_before_added_keys.json",
        *sorted((root / "experiment/results").glob("*/seed*/params.json")),
    ]
    oldest = json.loads(records[0].read_text())
    assert set(ADDED_KEYS) <= {f.name for f in dataclasses.fields(Config)} - set(oldest)
    for path in records:
        config = config_from_dict(json.loads(path.read_text()))
        for key, value in ADDED_KEYS.items():
            if key not in json.loads(path.read_text()):
                assert getattr(config, key) == value, (path, key)


def test_a_default_log_folder_taken_in_the_same_second_gets_a_suffix(tmp_path, monkeypatch):
    # Two runs started within one second (a script, a test of the README's commands) must not share a folder.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("her.config.time.strftime", lambda fmt: "20261207-020536")
    assert build_config({"env": "FetchPush"}).log_path == "runs/FetchPush-20261207-020536"
    (tmp_path / "runs" / "FetchPush-20261207-020536").mkdir(parents=True)
    assert build_config({"env": "FetchPush"}).log_path == "runs/FetchPush-20261207-020536-2"
    (tmp_path / "runs" / "FetchPush-20261207-020536-2").mkdir()
    assert build_config({"env": "FetchPush"}).log_path == "runs/FetchPush-20261207-020536-3"
