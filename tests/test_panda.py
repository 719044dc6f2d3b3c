"""panda-gym as an env family (her/panda.py) and its scripted experts (her/panda_experts.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from her import demos_cli
from her import experts as gen
from her.demo import load_demos, save_demos
from her.envs import TASKS, env_dims, episode_length, make_env, resolve_env_id

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "name, env_id",
    [
        ("PandaStack", "PandaStack-v3"),
        ("PandaPickAndPlace", "PandaPickAndPlace-v3"),
        ("PandaPushDense-v3", "PandaPushDense-v3"),
        ("PandaReachJoints-v3", "PandaReachJoints-v3"),
    ],
)
def test_short_names_and_full_ids_resolve_without_gym_packages(name, env_id):
    assert resolve_env_id(name) == env_id


def test_panda_tasks_have_the_contract_her_needs():
    assert {"PandaReach", "PandaPush", "PandaSlide", "PandaPickAndPlace", "PandaStack"} <= set(TASKS)
    assert episode_length("PandaStack-v3") == 100 and episode_length("PandaPush-v3") == 50
    env = make_env("PandaStack-v3", seed=0)
    assert env_dims(env) == {"o": 31, "g": 6, "u": 4}  # two cubes: 7 robot values + 12 per cube


@pytest.mark.parametrize("name", ["PandaFlip", "PandaFlip-v3", "PandaFlipJointsDense-v3"])
def test_flip_is_refused_in_one_line_that_says_why(name):
    with pytest.raises(ValueError, match="PandaFlip.*texture.*the other panda-gym tasks work") as err:
        resolve_env_id(name)
    assert "\n" not in str(err.value)


def test_pybullet_start_up_lines_stay_off_the_terminal():
    code = "from her.envs import make_env, resolve_env_id; make_env(resolve_env_id('PandaPush'), seed=0); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "ok\n"
    # Nothing at all: no start-up lines, and no traceback from pybullet_utils' clean-up at exit.
    assert out.stderr == ""


def test_training_ignores_panda_gym_terminating_on_success():
    # panda-gym ends an episode (terminated=True) on reaching the goal; episodes are still T steps long.
    env = make_env("PandaReach-v3", seed=0)
    obs, _ = env.reset(seed=1)
    terminated_seen = False
    for _ in range(50):
        obs, _, terminated, truncated, _ = env.step(gen.expert_for("PandaReach-v3")(obs))
        terminated_seen |= terminated
    assert terminated_seen
    episode, success = gen.run_episode(env, gen.expert_for("PandaReach-v3"), seed=1, T=50)
    assert success and episode["u"].shape == (50, 3)


@pytest.mark.parametrize(
    "env_id, n, least", [("PandaPickAndPlace-v3", 10, 10), ("PandaStack-v3", 10, 9), ("PandaReach-v3", 5, 5)]
)
def test_experts_succeed(env_id, n, least):
    result = gen.generate(env_id, n, seed=0)
    assert result.successes >= least, f"{result.successes}/{n}"
    assert result.no_states == ""  # PyBullet states recorded (her.pybullet_state)


def test_panda_demos_load_back_with_states(tmp_path):
    path = tmp_path / "d.npz"
    save_demos(path, gen.generate("PandaPickAndPlace-v3", 2, seed=0).episodes, "PandaPickAndPlace-v3")
    demos = load_demos(
        path, env_id="PandaPickAndPlace-v3", dims={"o": 19, "g": 3, "u": 4}, T=50, num_demo=2, need_states=True
    )
    assert demos["state/pybullet_bodies"].shape == (2, 51, 65)  # 5 bodies x 13
    assert demos["state/goal"].shape == (2, 51, 3)


def test_a_users_own_expert_writes_demos_for_a_users_own_env(tmp_path):
    """examples/point_expert.py, as its docstring runs it: any goal env, no simulator states."""
    out = tmp_path / "point.npz"
    cmd = [
        sys.executable,
        "-m",
        "her.experts",
        "--env",
        "examples.point_goal:PointGoal-v0",
        "--expert",
        "examples.point_expert:Steady",
        "--num_episodes",
        "5",
        "--output",
        str(out),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "5/5 episodes succeeded" in done.stdout
    demos = np.load(out)
    assert demos["u"].shape == (5, 50, 2) and int(demos["version"]) == 1
    assert "no state backend" in str(demos["no_states"])
    # The class is made afresh per episode: the first ten actions of every episode are at most half speed.
    assert np.abs(demos["u"][:, :10]).max() <= 0.5 + 1e-6 and np.abs(demos["u"][:, 10:]).max() > 0.5


@pytest.mark.parametrize(
    "expert, expected",
    [
        ("examples.point_expert", "give it as module:callable"),
        ("examples.point_expert:nope", "cannot load it"),
        ("no_such_module_here:f", "cannot load it"),
    ],
)
def test_a_bad_expert_is_one_line_exit_2(tmp_path, capsys, expert, expected):
    code = demos_cli.main(["--env", "FetchReach", "--expert", expert, "--output", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and expected in err and err.count("\n") == 1
    assert not (tmp_path / "x.npz").exists()


def test_an_expert_that_fails_while_acting_is_one_line_exit_1(tmp_path, capsys, monkeypatch):
    def broken(obs):
        raise RuntimeError("no idea what to do")

    monkeypatch.setattr(gen, "load_expert", lambda spec: broken)
    code = demos_cli.main(["--env", "FetchReach", "--expert", "x:y", "--output", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err
    assert code == 1 and "no idea what to do" in err and err.count("\n") == 1
    assert not (tmp_path / "x.npz").exists()


def test_default_output_names_say_the_task():
    assert demos_cli.default_output("PandaStack-v3", 100) == "data_panda_stack_100.npz"
    assert demos_cli.default_output("examples.point_goal:PointGoal-v0", 5) == "data_point_goal_5.npz"
    assert demos_cli.default_output("FetchPush-v4", 100) == "data_fetch_push_100.npz"


def test_zoo_style_return_counts_steps_until_the_first_success():
    import importlib.util

    spec = importlib.util.spec_from_file_location("zoo_return", ROOT / "experiment" / "zoo_return.py")
    assert spec is not None and spec.loader is not None
    zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo)
    returns, final, standing = zoo.play(str(ROOT / "experiment/results/panda_pick_and_place_demos/policy.npz"), 3, 7)
    assert returns.shape == final.shape == standing.shape == (3,)
    # -1 per step before the first success (the zoo's episodes end there): whole numbers in [-T, 0].
    assert np.all(returns <= 0) and np.all(returns >= -50) and np.all(returns == np.round(returns))
    assert np.all(standing <= final)


def test_the_fast_recipes_energy_priority_reads_pandas_step_length():
    # panda-gym keeps dt on its simulation (0.04 s: 20 substeps of 2 ms), not on the env as gymnasium-robotics does.
    from her.config import build_config
    from her.parts import episode_priority

    config = build_config({"env": "PandaPickAndPlace", "recipe": "fast"})
    env = make_env(config.env_id, seed=0)
    priority = episode_priority(config, env_dims(env), env.unwrapped)
    lifted = np.zeros((2, 51, 3))
    lifted[1, 1:, 2] = 0.05  # the second episode lifts its cube by 5 cm in its first step, then holds it
    weights = priority({"ag": lifted})
    assert weights[0] == 0.0 and weights[1] == pytest.approx(min(0.5 * (0.05 / 0.04) ** 2 + 9.81 * 0.05, 0.5))


def test_a_seeded_env_repeats_its_later_episodes():
    # panda-gym re-seeds its task from the OS at every unseeded reset; her's envs continue the seeded stream.
    def goals(seed):
        env = make_env("PandaPickAndPlace-v3", seed=seed)
        drawn = [env.reset()[0]["desired_goal"] for _ in range(4)]
        env.close()
        return np.array(drawn)

    first, again, other = goals(3), goals(3), goals(4)
    assert np.array_equal(first, again)
    assert len(np.unique(first[:, 0])) == 4  # each reset a new goal
    assert not np.array_equal(first, other)
