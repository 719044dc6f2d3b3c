"""her.policy: a saved policy acts without TensorFlow, exactly as the training-time evaluator does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import her.policy
from her import policy_file
from her.config import build_config
from her.learner import Batch
from her.policy import PolicyFileError

DIMS = {"o": 10, "g": 3, "u": 4}  # FetchReach
REPO = Path(__file__).resolve().parents[1]


def trained_ddpg(test_with_polyak: bool, layer_norm: bool = False):
    """A small FetchReach DDPG whose weights, target weights and normaliser all moved away from their start."""
    from her.parts import make_learner

    config = build_config(
        {
            "env": "FetchReach",
            "hidden": 16,
            "layers": 2,
            "log_path": "unused",
            "test_with_polyak": int(test_with_polyak),
            "layer_norm": int(layer_norm),
        }
    )
    agent = make_learner(config, DIMS)
    rng = np.random.default_rng(0)
    agent.update_normalizer({"o": rng.normal(1.0, 0.2, (100, 10)), "g": rng.normal(0.5, 0.1, (100, 3))})
    o, g, u = (rng.normal(size=(32, d)).astype(np.float32) for d in (10, 3, 4))
    batch = Batch(
        o,
        g,
        u,
        -rng.integers(0, 2, 32).astype(np.float32),
        rng.normal(size=(32, 10)).astype(np.float32),
        np.zeros(32, np.float32),
    )
    agent.train_steps(Batch(*(np.stack([x] * 3) for x in batch)))  # 3 steps on the same batch
    agent.update_target_net()
    return agent, config


def save(agent, config, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    policy_file.save_policy(
        folder / "policy_best.npz",
        network_state=agent.network_state(),
        config=config.to_dict(),
        dims=DIMS,
        epoch=0,
        test_success_rate=0.0,
    )
    return folder


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(log folder, the DDPG it was saved from), for test_with_polyak off (the default) and on."""
    root = tmp_path_factory.mktemp("policies")
    out = {}
    for polyak in (False, True):
        agent, config = trained_ddpg(polyak)
        out[polyak] = (save(agent, config, root / f"polyak{int(polyak)}"), agent)
    return out


def observations(n: int, seed: int = 1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "observation": rng.normal(1.0, 0.3, 10),
            "achieved_goal": rng.normal(0.5, 0.1, 3),
            "desired_goal": rng.normal(0.5, 0.1, 3),
        }
        for _ in range(n)
    ]


def stack(obs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.stack([o[key] for o in obs]) for key in obs[0]}


@pytest.mark.parametrize("polyak", [False, True])
def test_actions_equal_the_training_time_evaluators(saved, polyak):
    folder, agent = saved[polyak]
    policy = her.policy.load(folder)
    batch = stack(observations(8))
    # The evaluator's settings: no noise, no random actions, the target actor iff test_with_polyak.
    u_train, q_train = agent.get_actions(
        batch["observation"], batch["desired_goal"], use_target_net=polyak, compute_Q=True
    )
    u = policy.act(batch)
    np.testing.assert_array_equal(u, u_train)
    np.testing.assert_array_equal(policy.q_value(batch), q_train[:, 0])
    np.testing.assert_array_equal(policy.q_value(batch, u), q_train[:, 0])
    # The test means something only if the two actors differ.
    u_other, _ = agent.get_actions(batch["observation"], batch["desired_goal"], use_target_net=not polyak)
    assert not np.allclose(u, u_other)


def test_one_observation_and_a_batch_give_the_same_actions(saved):
    folder, _ = saved[False]
    policy = her.policy.load(folder / "policy_best.npz")
    obs = observations(5)
    single = [policy.act(o) for o in obs]
    assert all(u.shape == (DIMS["u"],) and u.dtype == np.float32 for u in single)
    batch = policy.act(stack(obs))
    assert batch.shape == (5, DIMS["u"])
    np.testing.assert_allclose(np.stack(single), batch, rtol=1e-6, atol=1e-7)
    assert policy.act(stack(obs[:1])).shape == (1, DIMS["u"])  # a batch of one stays a batch
    assert np.ndim(policy.q_value(obs[0])) == 0 and policy.q_value(stack(obs)).shape == (5,)
    assert np.all(np.abs(batch) <= policy.max_u)


def test_exploring_actions_use_the_runs_noise(saved):
    folder, agent = saved[False]
    policy = her.policy.load(folder)
    batch = stack(observations(64))
    u_train, _ = agent.get_actions(
        batch["observation"], batch["desired_goal"], noise_eps=0.2, random_eps=0.3, rng=np.random.default_rng(7)
    )
    u = policy.act(batch, deterministic=False, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(u, u_train)


def test_attributes_come_from_the_file(saved):
    folder, _ = saved[True]
    policy = her.policy.load(folder)
    assert policy.env_id == "FetchReach-v4" and policy.dims == DIMS
    assert policy.config["hidden"] == 16 and policy.config["test_with_polyak"] in (1, True)
    assert policy.path == folder / "policy_best.npz"


def test_loading_and_acting_never_import_tensorflow(saved):
    folder, agent = saved[False]
    obs = observations(1)[0]
    expected = agent.get_actions(obs["observation"][None], obs["desired_goal"][None])[0][0]
    script = f"""
import json, sys
import numpy as np
import her.policy
policy = her.policy.load({str(folder)!r})
obs = {{k: np.array(v) for k, v in json.loads({json.dumps({k: v.tolist() for k, v in obs.items()})!r}).items()}}
action = policy.act(obs)
policy.q_value(obs)
policy.act(obs, deterministic=False)
print(json.dumps({{"tf": [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")],
                  "action": action.tolist()}}))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["tf"] == []
    np.testing.assert_array_equal(np.array(out["action"], np.float32), expected)


def test_bad_paths_and_files_are_one_line_errors(saved, tmp_path):
    folder, _ = saved[False]
    cases = {
        tmp_path / "missing.npz": "does not exist",
        tmp_path: "without policy_best.npz",
    }
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    cases[tmp_path / "junk.npz"] = "not a readable policy file"
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    cases[tmp_path / "other.npz"] = "not a policy file"
    with np.load(folder / "policy_best.npz") as data:
        arrays = {key: data[key] for key in data.files if key != "actor/2"}
    np.savez(tmp_path / "cut.npz", **arrays)
    cases[tmp_path / "cut.npz"] = "actor network"
    for path, message in cases.items():
        with pytest.raises(PolicyFileError, match=message) as e:
            her.policy.load(path)
        assert "\n" not in str(e.value)


def test_observations_of_the_wrong_shape_are_refused(saved):
    policy = her.policy.load(saved[False][0])
    obs = observations(1)[0]
    with pytest.raises(ValueError, match="do not fit this FetchReach-v4 policy"):
        policy.act({**obs, "observation": np.zeros(25)})
    with pytest.raises(ValueError, match="observation dict"):
        policy.act(np.zeros(13))
    with pytest.raises(ValueError, match="action has shape"):
        policy.q_value(obs, np.zeros(3))


def test_a_layer_norm_policy_acts_as_its_learner_and_is_refused_where_the_config_differs(tmp_path):
    agent, config = trained_ddpg(False, layer_norm=True)
    folder = save(agent, config, tmp_path / "normed")
    batch = stack(observations(8))
    u_train, q_train = agent.get_actions(batch["observation"], batch["desired_goal"], compute_Q=True)
    policy = her.policy.load(folder)
    np.testing.assert_array_equal(policy.act(batch), u_train)
    np.testing.assert_array_equal(policy.q_value(batch), q_train[:, 0])
    arrays, meta = policy_file.read_policy(folder)
    with pytest.raises(
        PolicyFileError, match="trained with layer_norm 1, the configuration asks for 0: pass --layer_norm 1"
    ):
        policy_file.check_compatible(meta, folder, env_id="FetchReach-v4", dims=DIMS, hidden=16, layers=2)
    # The same weights read as a network without LayerNorm do not chain up: one line, not a wrong policy.
    meta["config"]["layer_norm"] = False
    policy_file.save_policy(tmp_path / "mislabelled.npz", arrays, meta["config"], DIMS)
    with pytest.raises(PolicyFileError, match="the actor network .* does not map 13 inputs to 4 outputs"):
        her.policy.load(tmp_path / "mislabelled.npz")
