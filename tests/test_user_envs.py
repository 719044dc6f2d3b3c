"""The user's own goal envs (--gym_packages, --env module:Id, --env_kwargs), --config, versions.json, the run's
header and summary, and demos saved from --play."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest

from her import versions
from her.config import ConfigError, build_config, read_recorded
from her.demo import DemoFileError, load_demos
from her.run import cli
from her.run_folder import resume_config

MODULE = "user_goal_envs_for_tests"
ENV_ID = "UserCounting-v0"
T = 5
TINY = [
    "--n_epochs",
    "1",
    "--n_cycles",
    "1",
    "--n_batches",
    "1",
    "--n_test_rollouts",
    "1",
    "--num_env",
    "1",
    "--hidden",
    "8",
    "--layers",
    "1",
    "--batch_size",
    "8",
]

SOURCE = f'''
import gymnasium as gym
import numpy as np

made = []  # the kwargs of every env made, so a test can see what gym.make passed


class UserCountingEnv(gym.Env):
    """CountingGoalEnv of tests/conftest.py; every other episode succeeds, so --only_success has a choice."""

    metadata = {{"render_modes": []}}

    def __init__(self, success_at=5, label="none"):
        made.append({{"success_at": success_at, "label": label}})
        self.observation_space = gym.spaces.Dict({{
            "observation": gym.spaces.Box(-np.inf, np.inf, (2,), np.float64),
            "achieved_goal": gym.spaces.Box(-np.inf, np.inf, (1,), np.float64),
            "desired_goal": gym.spaces.Box(-np.inf, np.inf, (1,), np.float64),
        }})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.success_at, self.steps, self.resets, self.pos, self.goal = success_at, 0, 0, 0.0, 0.0

    def _obs(self):
        return {{"observation": np.array([self.steps, self.pos]), "achieved_goal": np.array([self.pos]),
                "desired_goal": np.array([self.goal])}}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps, self.pos = 0, 0.0
        self.resets += 1
        self.goal = float(self.np_random.uniform(1.0, 2.0))
        return self._obs(), {{}}

    def step(self, action):
        self.steps += 1
        self.pos += float(action[0])
        info = {{"is_success": np.float32(self.steps == self.success_at and self.resets % 2 == 1)}}
        obs = self._obs()
        return obs, float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)), False, False, info

    def compute_reward(self, achieved_goal, goal, info):
        return -(np.abs(achieved_goal - goal)[..., 0] > 0.05).astype(np.float32)


gym.register(id="{ENV_ID}", entry_point="{MODULE}:UserCountingEnv", max_episode_steps={T})
'''


@pytest.fixture(scope="module")
def user_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user_pkg")
    (folder / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))


@pytest.fixture(scope="module")
def user_run(user_module, tmp_path_factory):
    """One epoch on the user's env, through the command line, with kwargs of two kinds (int, bare string)."""
    log = tmp_path_factory.mktemp("user_run") / "run"
    code = cli(
        TINY
        + [
            "--gym_packages",
            MODULE,
            "--env",
            ENV_ID,
            "--env_kwargs",
            "success_at=5",
            "label=abc",
            "--log_path",
            str(log),
        ]
    )
    assert code == 0
    return log


def test_user_env_trains_and_params_json_records_packages_and_kwargs(user_run):
    params = json.loads((user_run / "params.json").read_text())
    assert params["env_id"] == ENV_ID and params["T"] == T
    assert params["gym_packages"] == MODULE
    assert json.loads(params["env_kwargs"]) == {"success_at": 5, "label": "abc"}
    made = sys.modules[MODULE].made
    assert made and all(kwargs == {"success_at": 5, "label": "abc"} for kwargs in made)
    # The record rebuilds the same configuration (what --resume does).
    config = resume_config(user_run)
    assert config.packages == [MODULE] and config.make_kwargs == {"success_at": 5, "label": "abc"}


def test_module_colon_id_and_kwargs_forms(user_module):
    config = build_config({"env": f"{MODULE}:{ENV_ID}", "env_kwargs": '{"success_at": 3}'})
    assert config.env_id == ENV_ID and config.make_kwargs == {"success_at": 3}
    assert build_config({"env": ENV_ID, "gym_packages": f"{MODULE}, json"}).gym_packages == f"{MODULE},json"
    with pytest.raises(ConfigError, match="key=value"):
        build_config({"env": ENV_ID, "gym_packages": MODULE, "env_kwargs": "=3"})


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--gym_packages", "no_such_module_xyz", "--env", ENV_ID], "cannot import 'no_such_module_xyz'"),
        (["--env", "no_such_module_xyz:Foo-v0"], "cannot import 'no_such_module_xyz'"),
        (["--gym_packages", MODULE, "--env", ENV_ID, "--env_kwargs", "colour=3"], "does not take env_kwargs"),
    ],
)
def test_bad_module_or_kwargs_is_one_line(user_module, tmp_path, capsys, args, expected):
    assert cli(TINY + args + ["--log_path", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_versions_json_records_what_ran(user_run):
    recorded = json.loads((user_run / versions.FILE).read_text())
    now = versions.current()
    for key in ("her-tf2", "python", "numpy", "gymnasium", "mujoco", "cpu"):
        assert recorded[key] == now[key] and recorded[key]
    assert "git_commit" in recorded  # the tests run from a checkout
    assert "demo_sha256" not in recorded  # a run without demonstrations


def test_versions_json_records_the_demo_digest_a_run_learned_from(tmp_path):
    versions.write(tmp_path, demo_sha256="ab" * 32)
    assert json.loads((tmp_path / versions.FILE).read_text())["demo_sha256"] == "ab" * 32


def test_header_and_summary_lines(user_module, tmp_path, capsys):
    log = tmp_path / "run"
    assert cli(TINY + ["--env", f"{MODULE}:{ENV_ID}", "--log_path", str(log)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"UserCounting ({ENV_ID}): 1 MPI process x 1 env, 1 epoch"
    assert out[1] == f"log folder: {log}"
    assert out[-1].startswith(f"done: best test success 0.000 at epoch 0 ({log / 'policy_best.npz'}), 0m ")
    # --resume says, in one line, what changed since the run was trained.
    stored = json.loads((log / versions.FILE).read_text())
    stored["numpy"] = "1.0.0"
    (log / versions.FILE).write_text(json.dumps(stored))
    assert cli(["--resume", str(log), "--n_epochs", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"note: {log} was trained with numpy 1.0.0; now {np.__version__}\n"
    assert "resuming at epoch 1" in captured.out.splitlines()[0]


def test_config_starts_a_new_run_from_a_record(user_run, tmp_path, capsys):
    recorded = read_recorded(user_run / "params.json")
    assert "log_path" not in recorded and "env_id" not in recorded and "gamma" not in recorded  # gamma was derived
    log = tmp_path / "again"
    assert cli(["--config", str(user_run / "params.json"), "--seed", "7", "--log_path", str(log)]) == 0
    old = json.loads((user_run / "params.json").read_text())
    new = json.loads((log / "params.json").read_text())
    assert new["seed"] == 7 and new["log_path"] == str(log)
    assert {k: v for k, v in new.items() if k not in ("seed", "log_path")} == {
        k: v for k, v in old.items() if k not in ("seed", "log_path")
    }
    # The record's log folder is never reused: without --log_path a new default one.
    config = build_config({}, recorded=recorded)
    assert config.log_path.startswith("runs/UserCounting-") and config.hidden == 8


@pytest.mark.parametrize("content", [None, "not json", "[1, 2]", '{"colour": 1}'])
def test_config_missing_or_bad_file_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "params.json"
    if content is not None:
        path.write_text(content)
    assert cli(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --config {path}") and err.count("\n") == 1


def test_play_saves_demos_of_the_user_env(user_run, tmp_path, capsys):
    out = tmp_path / "demos.npz"
    assert (
        cli(
            [
                "--play",
                "--load_path",
                str(user_run),
                "--n_episodes",
                "4",
                "--render",
                "0",
                "--save_demos",
                str(out),
                "--only_success",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    successes = printed.count("success 1")
    assert 0 < successes < 4  # every other episode succeeds: --only_success had a choice
    assert f"demos: {out} ({successes} successful episodes)" in printed
    demos = load_demos(out, env_id=ENV_ID, dims={"o": 2, "g": 1, "u": 2}, T=T, num_demo=successes)
    assert demos["o"].shape == (successes, T + 1, 2) and demos["u"].shape == (successes, T, 2)
    assert (demos["info_is_success"][:, -1, 0] == 1).all()
    # Without --only_success every episode is kept.
    assert (
        cli(["--play", "--load_path", str(user_run), "--n_episodes", "3", "--render", "0", "--save_demos", str(out)])
        == 0
    )
    assert len(load_demos(out, env_id=ENV_ID, dims={"o": 2, "g": 1, "u": 2}, T=T, num_demo=3)["u"]) == 3
    # No state backend knows this env: the file has no states and says why, which resets then repeat.
    with pytest.raises(DemoFileError, match=r"holds no simulator states \(.*no state backend can save and restore"):
        load_demos(out, env_id=ENV_ID, dims={"o": 2, "g": 1, "u": 2}, T=T, num_demo=3, need_states=True)


def test_play_notes_changed_versions_from_a_policy_file_alone(user_run, tmp_path, monkeypatch, capsys):
    import shutil

    from her import policy_file

    alone = tmp_path / "policy.npz"  # copied out of its log folder: no versions.json beside it
    shutil.copy(user_run / "policy_best.npz", alone)
    recorded = policy_file.read_policy(alone)[1]["versions"]
    assert recorded == versions.current()
    monkeypatch.setattr(versions, "current", lambda under_mpi=False: {**recorded, "gymnasium": "9.9.9"})
    assert cli(["--play", "--load_path", str(alone), "--n_episodes", "1", "--render", "0"]) == 0
    assert capsys.readouterr().err == f"note: {alone} was trained with gymnasium {recorded['gymnasium']}; now 9.9.9\n"


def test_a_policy_file_imports_no_module_the_user_did_not_name(user_run, monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, MODULE)  # as in a new process: the policy's module is not imported yet
    policy = user_run / "policy_best.npz"
    assert cli(["--play", "--load_path", str(policy), "--n_episodes", "1", "--render", "0"]) == 2
    assert capsys.readouterr().err == (
        f"error: {policy} needs {MODULE} imported to make its env, and loading a "
        f"policy runs no code the policy names: if you trust it, pass --gym_packages "
        f"{MODULE}\n"
    )
    assert MODULE not in sys.modules
    assert (
        cli(["--play", "--load_path", str(policy), "--n_episodes", "1", "--render", "0", "--gym_packages", MODULE]) == 0
    )
    assert MODULE in sys.modules


# ---- envs that break the goal-env contract: one line each ----


class _Broken:
    """Variants of the counting env, each breaking one rule of the contract."""

    @staticmethod
    def two_d(counting):
        class TwoD(counting):
            def _obs(self):
                obs = super()._obs()
                return {**obs, "observation": np.zeros((2, 3))}

        return TwoD

    @staticmethod
    def growing(counting):
        class Growing(counting):  # an observation one longer from step 3 on
            def _obs(self):
                obs = super()._obs()
                return {**obs, "observation": np.zeros(2 if self.steps < 3 else 3)}

        return Growing

    @staticmethod
    def reset_raises(counting):
        class ResetRaises(counting):
            def reset(self, *, seed=None, options=None):
                raise RuntimeError("no simulator here")

        return ResetRaises


@pytest.mark.parametrize(
    "variant, code, expected",
    [
        ("two_d", 2, "its observation has shape (2, 3), and HER needs 1-d arrays"),
        ("growing", 1, "the env returned an observation of shape (3,) at step 3 of an episode, but of size 2"),
        ("reset_raises", 2, "cannot be made and reset (RuntimeError: no simulator here)"),
    ],
)
def test_an_env_that_breaks_the_contract_is_one_line(tmp_path, capsys, variant, code, expected):
    import gymnasium as gym
    from conftest import CountingGoalEnv

    env_id = f"Broken{variant.title().replace('_', '')}-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=getattr(_Broken, variant)(CountingGoalEnv), max_episode_steps=T)
    assert cli(TINY + ["--env", env_id, "--log_path", str(tmp_path / "run")]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1
