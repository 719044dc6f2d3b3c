"""Demo file loader (decision D11): the plain format round-trips, and every bad file gets a DemoFileError."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from her.demo import EPISODE_KEYS, GENERATOR, GOAL_KEY, DemoFileError, demo_state, load_demos, save_demos
from her.envs import task_name

DIMS = {"o": 25, "g": 3, "u": 4}
REACH_DIMS = {"o": 10, "g": 3, "u": 4}
T = 5
ENV = "FetchPush-v4"


def episodes(n: int, dims=DIMS, T: int = T, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "o": rng.normal(size=(n, T + 1, dims["o"])).astype(np.float32),
        "ag": rng.normal(size=(n, T + 1, dims["g"])).astype(np.float32),
        "g": rng.normal(size=(n, T, dims["g"])).astype(np.float32),
        "u": rng.uniform(-1, 1, size=(n, T, dims["u"])).astype(np.float32),
        "info_is_success": rng.integers(0, 2, size=(n, T, 1)).astype(np.float32),
    }


def load(path, **overrides):
    kwargs = dict(env_id=ENV, dims=DIMS, T=T, num_demo=3)
    kwargs.update(overrides)
    return load_demos(path, **kwargs)


def error(path, **overrides) -> str:
    with pytest.raises(DemoFileError) as info:
        load(path, **overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("compresslevel", [1, None])
def test_round_trip_returns_the_first_num_demo_episodes(tmp_path, compresslevel):
    path = tmp_path / "demos.npz"
    data = episodes(4)
    save_demos(path, data, ENV, compresslevel=compresslevel)
    out = load(path, num_demo=3)
    assert set(out) == set(EPISODE_KEYS)
    for key in EPISODE_KEYS:
        assert out[key].dtype == np.float32
        np.testing.assert_array_equal(out[key], data[key][:3])
    assert out["o"].shape == (3, T + 1, 25) and out["u"].shape == (3, T, 4)
    assert out["info_is_success"].shape == (3, T, 1)
    with np.load(path) as raw:  # plain arrays only: readable without pickle
        # Without state/ keys the file is version 1.
        assert str(raw["env_id"]) == ENV and str(raw["format"]) == "her-tf2-demos" and int(raw["version"]) == 1


def test_actions_are_clipped_not_refused(tmp_path):
    path = tmp_path / "demos.npz"
    data = episodes(3)
    data["u"][0, 0] = [1.8, -3.0, 0.5, 1.0]
    save_demos(path, data, ENV)
    np.testing.assert_array_equal(load(path)["u"][0, 0], [1.0, -1.0, 0.5, 1.0])


def test_other_version_and_dense_variant_of_the_same_task_load(tmp_path):
    path = tmp_path / "demos.npz"
    save_demos(path, episodes(3), "FetchPush-v4")
    assert load(path, env_id="FetchPushDense-v4")["o"].shape[0] == 3
    assert load(path, env_id="FetchPush-v2")["o"].shape[0] == 3


def test_missing_file_and_directory(tmp_path):
    assert "does not exist" in error(tmp_path / "nope.npz")
    assert "is a directory" in error(tmp_path)


@pytest.mark.parametrize("content", [b"", b"\x00\x01 random bytes \xff" * 50, b"PK\x03\x04 truncated zip"])
def test_not_an_npz(tmp_path, content):
    path = tmp_path / "demos.npz"
    path.write_bytes(content)
    assert "not a readable .npz" in error(path)


def test_truncated_archive(tmp_path):
    path = tmp_path / "demos.npz"
    save_demos(path, episodes(3), ENV)
    path.write_bytes(path.read_bytes()[:-200])
    message = error(path)
    assert "damaged" in message or "not a readable .npz" in message


def test_single_npy_array(tmp_path):
    path = tmp_path / "demos.npy"
    np.save(path, np.zeros(3))
    assert "single .npy array" in error(path)


def test_missing_keys(tmp_path):
    path = tmp_path / "demos.npz"
    data = episodes(3)
    np.savez(path, o=data["o"], u=data["u"])
    message = error(path)
    assert "lacks ag, g, info_is_success" in message and "make one with her-demos" in message


def test_demos_for_another_task_name_both(tmp_path):
    path = tmp_path / "demos.npz"
    save_demos(path, episodes(3), "FetchPush-v4")
    message = error(path, env_id="FetchReach-v4", dims=REACH_DIMS)
    assert "FetchPush-v4" in message and "FetchReach-v4" in message


def test_wrong_shapes_say_which_key_and_what_was_expected(tmp_path):
    path = tmp_path / "demos.npz"
    np.savez(path, **episodes(3))  # no env_id: only the shapes can tell
    message = error(path, env_id="FetchReach-v4", dims=REACH_DIMS)
    assert "'o' has shape (3, 6, 25)" in message and "needs (episodes, 6, 10)" in message


def test_wrong_episode_length_names_the_task_the_file_was_made_for(tmp_path):
    path = tmp_path / "demos.npz"
    save_demos(path, episodes(3, T=7), ENV)
    message = error(path)
    assert "T=5" in message and "made for FetchPush-v4" in message


def test_num_demo_larger_than_the_file(tmp_path):
    path = tmp_path / "demos.npz"
    save_demos(path, episodes(3), ENV)
    message = error(path, num_demo=100)
    assert "holds 3 episodes" in message and "--num_demo 3" in message
    assert "at least 1" in error(path, num_demo=0)


def test_nan_and_inf(tmp_path):
    path = tmp_path / "demos.npz"
    data = episodes(3)
    data["g"][1, 2, 0] = np.nan
    data["o"][2, 0, 0] = np.inf
    save_demos(path, data, ENV)
    message = error(path)
    assert "'o'" in message and "episode(s) 2" in message
    # Only the episodes actually loaded matter.
    data["g"][1, 2, 0] = data["o"][2, 0, 0] = 0.0
    data["u"][2, 0, 0] = np.nan
    save_demos(path, data, ENV)
    assert load(path, num_demo=2)["u"].shape[0] == 2


def test_inconsistent_episode_counts(tmp_path):
    path = tmp_path / "demos.npz"
    data = episodes(3)
    data["g"] = data["g"][:2]
    np.savez(path, **data)
    assert "different numbers of episodes" in error(path, num_demo=2)


def test_pickled_objects_in_a_plain_key(tmp_path):
    path = tmp_path / "demos.npz"
    data = episodes(3)
    data["o"] = np.array([{"evil": 1}] * 3, dtype=object)
    np.savez(path, **data)
    assert "pickled objects" in error(path)


def test_foreign_format_and_newer_version(tmp_path):
    path = tmp_path / "demos.npz"
    np.savez(path, **episodes(3), format=np.array("something-else"))
    assert "not a her-tf2-demos file" in error(path)
    np.savez(path, **episodes(3), format=np.array("her-tf2-demos"), version=np.array(3))
    assert "version 3" in error(path)


# ---- version 2: simulator states ----


def states(n: int, T: int = T, seed: int = 2) -> dict[str, np.ndarray]:
    """state/ arrays as the generator writes them, with values that float32 would round."""
    rng = np.random.default_rng(seed)
    return {
        "state/time": np.cumsum(np.full((n, T + 1, 1), 0.04), axis=1) + rng.normal(size=(n, 1, 1)) * 1e-9,
        "state/qpos": rng.normal(size=(n, T + 1, 22)),
        "state/qvel": rng.normal(size=(n, T + 1, 21)),
        "state/mocap_quat": rng.normal(size=(n, T + 1, 4)),
        "state/act": np.zeros((n, T + 1, 0)),
        "state/replay_substeps": np.ones((n, T + 1, 1)),
        GOAL_KEY: np.repeat(rng.normal(size=(n, 1, 3)), T + 1, axis=1),
    }


def version_1_file(path, n: int = 3) -> dict[str, np.ndarray]:
    """A file as the version-1 save_demos wrote it: the episode arrays and three scalars, no states."""
    data: dict[str, Any] = episodes(n)
    np.savez(path, **data, env_id=np.array(ENV), format=np.array("her-tf2-demos"), version=np.array(1))
    return data


def test_version_1_files_still_load(tmp_path):
    path = tmp_path / "v1.npz"
    data = version_1_file(path)
    out = load(path)
    assert set(out) == set(EPISODE_KEYS)
    for key in EPISODE_KEYS:
        np.testing.assert_array_equal(out[key], data[key])


def test_states_round_trip_bit_for_bit_and_only_on_request(tmp_path):
    path = tmp_path / "v2.npz"
    data = {**episodes(4), **states(4)}
    save_demos(path, data, ENV)
    assert set(load(path)) == set(EPISODE_KEYS)  # what training gets: no states
    out = load(path, num_demo=3, need_states=True)
    assert set(out) == set(data)
    for key, array in states(4).items():
        assert out[key].dtype == np.float64 and out[key].shape == (3, *array.shape[1:])
        np.testing.assert_array_equal(out[key], array[:3])  # float64 kept: no rounding to float32
    for key in EPISODE_KEYS:
        np.testing.assert_array_equal(out[key], data[key][:3])
    state, goal = demo_state(out, 2, 4)
    assert set(state) == {"time", "qpos", "qvel", "mocap_quat", "act", "replay_substeps"}
    np.testing.assert_array_equal(state["qpos"], data["state/qpos"][2, 4])
    np.testing.assert_array_equal(goal, data[GOAL_KEY][2, 4])


def test_asking_for_states_from_a_v1_file_gives_the_regenerate_command(tmp_path):
    path = tmp_path / "v1.npz"
    version_1_file(path)
    message = error(path, need_states=True)
    assert "version-1" in message and "simulator states" in message
    assert message.endswith(f"{GENERATOR} --env {ENV} --num_episodes 3 --output {path}")


def test_asking_for_states_from_a_file_without_them(tmp_path):
    path = tmp_path / "v1.npz"
    save_demos(path, episodes(5), ENV)  # without state/ keys, as for synthetic episodes: version 1
    message = error(path, need_states=True)
    assert "version-1" in message and f"--num_episodes 5 --output {path}" in message
    # As --play wrote them before it saved states: marked version 2, without states.
    with np.load(path) as data:
        np.savez(tmp_path / "v2.npz", **{**{key: data[key] for key in data.files}, "version": np.array(2)})
    assert "version-2" in error(tmp_path / "v2.npz", need_states=True)


def test_a_file_without_states_that_says_why_repeats_it(tmp_path):
    path = tmp_path / "played.npz"
    save_demos(path, episodes(3), ENV, no_states="MyEnv-v0 is not a MuJoCo env")
    message = error(path, need_states=True)
    assert "holds no simulator states (MyEnv-v0 is not a MuJoCo env)" in message and "--demo_reset_p" in message


def test_asking_for_states_from_a_legacy_file_refuses_before_unpickling(tmp_path):
    path = tmp_path / "data_fetch_random_100.npz"
    legacy_file(path)
    for allow_legacy in (False, True):
        message = error(path, need_states=True, allow_legacy=allow_legacy)
        assert "legacy layout" in message and f"{GENERATOR} --env {ENV} --num_episodes 3" in message


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d.update({"state/qpos": d["state/qpos"][:, :T]}), "'state/qpos'"),
        (lambda d: d.update({"state/qvel": d["state/qvel"][:2]}), "'state/qvel'"),
        (lambda d: d.pop(GOAL_KEY), "lacks state/goal"),
        (lambda d: d.update({GOAL_KEY: d[GOAL_KEY][:, :, :2]}), "goals of size 2"),
        (lambda d: d["state/qvel"].__setitem__((2, 1, 0), np.nan), "'state/qvel' holds NaN"),
    ],
)
def test_damaged_states(tmp_path, change, expected):
    path = tmp_path / "v2.npz"
    data = {**episodes(3), **states(3)}
    change(data)
    save_demos(path, data, ENV)
    assert expected in error(path, need_states=True)
    assert set(load(path)) == set(EPISODE_KEYS)  # the episodes alone still load


# ---- the reference's legacy layout (§11) ----


def legacy_file(path, n: int = 3, steps: list[int] | None = None, dim_o: int = 25, ragged: bool = False):
    """acs, obs and info as written by the reference's fetch_data_generation.py (object arrays of dicts)."""
    rng = np.random.default_rng(1)
    steps = steps or [T] * n
    acs, obs, info = [], [], []
    for n_steps in steps:
        goal = rng.normal(size=3)
        obs.append(
            [
                {
                    "observation": rng.normal(size=dim_o),
                    "achieved_goal": rng.normal(size=3),
                    "desired_goal": goal + 0.01 * t,
                }
                for t in range(n_steps + 1)
            ]
        )
        acs.append([list(3 * rng.normal(size=4)) for _ in range(n_steps)])  # unclipped, as in the reference
        info.append([{"is_success": float(t == n_steps - 1)} for t in range(n_steps)])
    if ragged:

        def objects(rows):
            out = np.empty(len(rows), dtype=object)
            for i, row in enumerate(rows):
                out[i] = row
            return out

        arrays = dict(acs=objects(acs), obs=objects(obs), info=objects(info))
    else:
        o = np.empty((n, T + 1), dtype=object)
        i = np.empty((n, T), dtype=object)
        for e in range(n):
            o[e, :] = obs[e]
            i[e, :] = info[e]
        arrays = dict(acs=np.array(acs), obs=o, info=i)
    np.savez_compressed(path, **arrays)
    return acs, obs, info


def test_legacy_layout_is_refused_without_the_opt_in(tmp_path):
    path = tmp_path / "data_fetch_random_100.npz"
    legacy_file(path)
    message = error(path)
    assert "legacy" in message and "--demo_legacy 1" in message


def test_legacy_layout_loads_with_the_opt_in(tmp_path, capsys):
    path = tmp_path / "data_fetch_random_100.npz"
    acs, obs, info = legacy_file(path)
    out = load(path, allow_legacy=True)
    # The layout names no task, and PickAndPlace's sizes fit Push and Slide too: one warning line says so.
    assert capsys.readouterr().err == (
        f"warning: {path} is in the reference's layout, which does not name its "
        f"task: make sure it was recorded on {task_name(ENV)}\n"
    )
    assert {key: out[key].shape for key in EPISODE_KEYS} == {
        "o": (3, T + 1, 25),
        "ag": (3, T + 1, 3),
        "g": (3, T, 3),
        "u": (3, T, 4),
        "info_is_success": (3, T, 1),
    }
    assert all(out[key].dtype == np.float32 for key in EPISODE_KEYS)
    np.testing.assert_allclose(out["o"][1, T], obs[1][T]["observation"], rtol=1e-6)
    np.testing.assert_allclose(out["g"][2, 3], obs[2][3]["desired_goal"], rtol=1e-6)
    np.testing.assert_allclose(out["u"][0], np.clip(acs[0], -1, 1), rtol=1e-6)
    assert out["info_is_success"][0, T - 1, 0] == 1.0 and out["info_is_success"][0, 0, 0] == 0.0


def test_legacy_ragged_episodes_keep_the_first_T_steps(tmp_path):
    path = tmp_path / "legacy.npz"
    acs, obs, _ = legacy_file(path, steps=[T, T + 2, T + 1], ragged=True)
    out = load(path, allow_legacy=True)
    assert out["u"].shape == (3, T, 4)
    np.testing.assert_allclose(out["o"][1, T], obs[1][T]["observation"], rtol=1e-6)


def test_legacy_short_episode_and_wrong_task(tmp_path):
    path = tmp_path / "legacy.npz"
    legacy_file(path, steps=[T, T - 1, T], ragged=True)
    assert "legacy episode 1" in error(path, allow_legacy=True)
    legacy_file(path)
    message = error(path, allow_legacy=True, env_id="FetchReach-v4", dims=REACH_DIMS)
    assert "'o'" in message and "(6, 10)" in message
    assert "holds 3 episodes" in error(path, allow_legacy=True, num_demo=4)


def test_a_file_of_no_episodes_says_so_rather_than_advise_num_demo_0(tmp_path):
    path = tmp_path / "none.npz"
    save_demos(path, episodes(0), ENV)
    with pytest.raises(DemoFileError) as info:
        load(path, num_demo=1)
    assert str(info.value) == (
        f"{path} holds no episodes: generate some with her-demos --num_episodes 1, or train without --demo_file"
    )
