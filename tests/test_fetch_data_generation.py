"""Scripted demo generator: episodes in the D1 layout that load back, reproducibly, and a CLI that fails cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from her import demos_cli, fetch_experts
from her import experts as gen
from her.demo import load_demos, save_demos
from her.envs import env_dims, episode_length, make_env

SCRIPT = Path(gen.__file__)
# The checkout under test first: the venv's editable install may point at another checkout of the project.
SCRIPT_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [str(SCRIPT.parents[2]), os.environ.get("PYTHONPATH")])),
}
T = 50


def generate_and_load(tmp_path, env_id: str, n: int, seed: int = 0, T: int = T):
    result = gen.generate(env_id, n, seed)
    path = tmp_path / "demos.npz"
    save_demos(path, result.episodes, env_id)
    dims = env_dims(make_env(env_id, seed=0))
    return result, load_demos(path, env_id=env_id, dims=dims, T=T, num_demo=n), dims


@pytest.mark.parametrize("env_id, n", [("FetchPickAndPlace-v4", 3), ("FetchPush-v4", 2)])
def test_generated_episodes_load_back_in_the_replay_layout(tmp_path, env_id, n):
    result, demos, dims = generate_and_load(tmp_path, env_id, n)
    assert demos["o"].shape == (n, T + 1, dims["o"]) and demos["ag"].shape == (n, T + 1, dims["g"])
    assert demos["g"].shape == (n, T, dims["g"]) and demos["u"].shape == (n, T, dims["u"])
    assert demos["info_is_success"].shape == (n, T, 1)
    for key, array in demos.items():
        np.testing.assert_array_equal(array, result.episodes[key])  # nothing clipped or changed on the way
    assert np.abs(demos["u"]).max() <= 1.0
    # The achieved goal is the object position; the goal is fixed within an episode.
    np.testing.assert_allclose(demos["ag"], demos["o"][:, :, 3:6])
    np.testing.assert_array_equal(demos["g"], np.repeat(demos["g"][:, :1], T, axis=1))
    assert set(np.unique(demos["info_is_success"])) <= {0.0, 1.0}
    assert result.successes == int(demos["info_is_success"][:, -1, 0].sum()) and result.attempts == n
    # The experts solve these seeds: a regression in an expert shows here first.
    assert result.successes == n
    # The simulator states (her.sim_state), one per observation; tests/test_sim_state.py restores them.
    states = {key: array for key, array in result.episodes.items() if key.startswith("state/")}
    assert states["state/qpos"].shape == (n, T + 1, 22) and states["state/qvel"].shape == (n, T + 1, 21)
    assert states["state/mocap_pos"].shape == (n, T + 1, 3) and states["state/mocap_quat"].shape == (n, T + 1, 4)
    assert states["state/time"].shape == (n, T + 1, 1) and states["state/goal"].shape == (n, T + 1, dims["g"])
    assert all(array.dtype == np.float64 for array in states.values())
    np.testing.assert_array_equal(states["state/goal"][:, :T].astype(np.float32), demos["g"])
    # A reset state is the reset itself; a step's is one substep before its end, replayed on restore.
    replay = states["state/replay_substeps"][:, :, 0]
    assert (replay[:, 0] == 0).all() and (replay[:, 1:] == 1).all()


def test_same_seed_same_episodes_other_seed_other_episodes():
    a = gen.generate("FetchPush-v4", 2, seed=3).episodes
    b = gen.generate("FetchPush-v4", 2, seed=3).episodes
    c = gen.generate("FetchPush-v4", 2, seed=4).episodes
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["g"], c["g"])


def test_reach_and_slide_experts_run():
    reach = gen.generate("FetchReach-v4", 2)
    assert reach.successes == 2 and reach.episodes["o"].shape == (2, T + 1, 10)
    slide = gen.generate("FetchSlide-v4", 1)
    assert slide.episodes["o"].shape == (1, T + 1, 25)
    # The expert struck the puck: it slid tens of centimetres (0.35 m in this episode), not a nudge.
    assert np.linalg.norm(slide.episodes["ag"][0, -1] - slide.episodes["ag"][0, 0]) > 0.2


def test_experts_are_pure_functions_of_the_observation_or_start_afresh():
    env = make_env("FetchPickAndPlace-v4")
    obs, _ = env.reset(seed=0)
    for expert in gen.EXPERTS.values():
        if expert is fetch_experts.reach_expert:
            continue
        # A stateful expert is a class: every new instance (episode) must act the same on the same observation.
        first = (expert() if isinstance(expert, type) else expert)({key: value.copy() for key, value in obs.items()})
        assert first.shape == (4,) and first.dtype == np.float32 and np.abs(first).max() <= 1.0
        np.testing.assert_array_equal(first, (expert() if isinstance(expert, type) else expert)(obs))


def test_stateful_expert_starts_every_episode_afresh():
    # Episode 1 of a run equals episode 1 run on its own: no phase leaks from episode 0.
    run = gen.generate("FetchSlide-v4", 2, seed=5).episodes
    env = make_env("FetchSlide-v4")
    alone, _ = gen.run_episode(env, fetch_experts.SlideExpert, gen.episode_seed(5, 1), T)
    for key in alone:
        np.testing.assert_array_equal(run[key][1], alone[key])


# Each bar is above what the previous expert scored on the same episodes: 11 of 20 on FetchSlide (FetchStack2 had
# no expert).
@pytest.mark.parametrize("env_id, n, least", [("FetchSlide-v4", 20, 17), ("FetchStack2-v1", 10, 9)])
def test_experts_succeed_on_seeded_episodes(env_id, n, least):
    assert gen.generate(env_id, n, seed=0).successes >= least


def test_stack2_demos_load_back_with_their_episode_length(tmp_path):
    T_stack = episode_length("FetchStack2-v1")
    result, demos, dims = generate_and_load(tmp_path, "FetchStack2-v1", 2, T=T_stack)
    assert T_stack == 100 and dims == {"o": 40, "g": 6, "u": 4}
    assert demos["o"].shape == (2, T_stack + 1, 40) and demos["u"].shape == (2, T_stack, 4)
    np.testing.assert_allclose(demos["ag"], demos["o"][:, :, 3:9])  # both blocks' positions
    assert result.successes == 2


def test_default_output_names():
    assert demos_cli.default_output("FetchPickAndPlace-v4", 100) == "data_fetch_random_100.npz"
    assert demos_cli.default_output("FetchPush-v4", 100) == "data_fetch_push_100.npz"
    assert demos_cli.default_output("FetchSlide-v4", 7) == "data_fetch_slide_7.npz"
    assert demos_cli.default_output("FetchPushDense-v4", 5) == "data_fetch_push_dense_5.npz"
    assert demos_cli.default_output("FetchStack2-v1", 100) == "data_fetch_stack2_100.npz"


def test_only_success_gives_up_with_a_message_and_no_file(tmp_path, monkeypatch, capsys):
    # An expert that drives away from the goal never succeeds.
    monkeypatch.setitem(gen.EXPERTS, "FetchReach", lambda obs: -fetch_experts.reach_expert(obs))
    out = tmp_path / "demos.npz"
    code = demos_cli.main(
        ["--env", "FetchReach", "--num_episodes", "2", "--only_success", "--max_attempts", "3", "--output", str(out)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: only 0 of 3 episodes") and "\n" not in err
    assert not out.exists()


def test_cli_writes_the_file_and_reports_success(tmp_path, capsys):
    out = tmp_path / "reach.npz"
    assert demos_cli.main(["--env", "FetchReach", "--num_episodes", "2", "--seed", "1", "--output", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "2/2 episodes succeeded (100%)" in stdout and str(out) in stdout
    with np.load(out) as data:
        assert str(data["env_id"]) == "FetchReach-v4" and data["u"].shape == (2, T, 4)
        assert int(data["version"]) == 2 and data["state/qpos"].shape == (2, T + 1, 15)
        assert data["state/qpos"].dtype == np.float64


def run_main(argv: list[str]) -> int:
    try:
        return demos_cli.main(argv)
    except SystemExit as exit:  # main returns its exit code; a SystemExit would be a usage error escaping it
        assert isinstance(exit.code, int)
        return exit.code


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--env", "FetchNope"], "unknown task"),
        (["--env", "HalfCheetah-v5"], "no scripted expert"),
        (["--num_episodes", "0"], "--num_episodes must be at least 1"),
        (["--seed", "-1"], "--seed must be an integer >= 0"),
        (["--num_episodes", "ten"], "invalid int value"),
        (["--only_success", "--num_episodes", "5", "--max_attempts", "2"], "--max_attempts"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, expected):
    assert run_main(args + ["--output", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert not list(tmp_path.iterdir())  # no file, not even a partial one


@pytest.mark.parametrize("output, expected", [("missing-folder/x.npz", "does not exist"), (".", "is a directory")])
def test_unwritable_output_exits_2(tmp_path, capsys, output, expected):
    assert run_main(["--env", "FetchReach", "--output", str(tmp_path / output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert not list(tmp_path.iterdir())


def test_script_runs_headless_and_fails_cleanly(tmp_path):
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--env", "FetchNope", "--output", str(tmp_path / "x.npz")],
        capture_output=True,
        text=True,
        timeout=120,
        env=SCRIPT_ENV,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr
    out = tmp_path / "reach.npz"
    good = subprocess.run(
        [sys.executable, str(SCRIPT), "--env", "FetchReach", "--num_episodes", "1", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=SCRIPT_ENV,
    )
    assert good.returncode == 0, good.stderr
    assert "1/1 episodes succeeded" in good.stdout and out.exists()


@pytest.mark.parametrize("angle, strength", [(0.0, 0.5), (-35.0, 0.8)])
def test_slide_strike_table_is_the_strike_as_it_is(angle, strength):
    # A strike changed without rerunning slide_calibration.py would leave the Slide expert aiming with a stale table.
    from experiment.data_generation import slide_calibration as cal

    env = make_env("FetchSlide-v4")
    d = np.mean([cal.measure(env, xy, angle, strength) for xy in cal.POSITIONS], axis=0)
    angles, strengths, length, direction = fetch_experts._strike_grid()
    i, j = np.flatnonzero(angles == angle)[0], np.flatnonzero(np.isclose(strengths, strength))[0]
    assert abs(np.linalg.norm(d) - length[i, j]) < 0.01
    assert abs(np.degrees(np.arctan2(d[1], d[0])) - direction[i, j]) < 0.5
