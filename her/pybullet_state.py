"""Snapshots of a panda-gym (PyBullet) goal env as flat arrays, for demo-state resets.

A state is two float64 arrays: ``pybullet_bodies: (13 B,)``, every body's base position (3), orientation
quaternion (4), linear and angular velocity (3 + 3), in PyBullet's body order, and ``pybullet_joints: (2 J,)``,
the position and velocity of every joint of every body (the Panda's 12, fingers included). The env's goal is
passed beside it, as for MuJoCo (``her.sim_state``).

PyBullet keeps more than this between steps: contact manifolds and the solver's warm-start impulses, which its
API neither exposes nor restores (``saveState`` keeps them in memory only, not in a file). A restored state
therefore steps on from fresh contacts. Measured on PandaPickAndPlace and PandaStack demonstrations
(``tests/test_pybullet_state.py``), the observation after restoring a state is the recorded one to float32
rounding, and one step from it lands within ``STEP_TOLERANCE`` of the recorded next observation: far below the
5 cm (PickAndPlace) and 10 cm (Stack) success radii, and below the spread that exploration noise adds anyway.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

BODIES, JOINTS = "pybullet_bodies", "pybullet_joints"
COMPONENTS = (BODIES, JOINTS)
STEP_TOLERANCE = 2e-3  # metres (and m/s, radians): observation after one step from a restored state


def _name(env: gym.Env) -> str:
    return env.spec.id if env.spec else type(env.unwrapped).__name__


def accepts(env: gym.Env) -> bool:
    """Whether ``env`` is a panda-gym ``RobotTaskEnv`` (without importing panda-gym for other envs)."""
    return type(env.unwrapped).__module__.startswith("panda_gym.") and hasattr(env.unwrapped, "sim")


def _client_and_bodies(env: gym.Env) -> tuple[Any, list[int]]:
    if not accepts(env):
        raise ValueError(f"{_name(env)} is not a panda-gym env: its PyBullet state cannot be saved or restored")
    sim = env.unwrapped.sim
    return sim.physics_client, sorted(sim._bodies_idx.values())


def track(env: gym.Env) -> None:
    """Nothing to do: PyBullet's state can be read after any reset or step (the MuJoCo backend needs a hook)."""
    _client_and_bodies(env)


def get_state(env: gym.Env) -> dict[str, np.ndarray]:
    """``env``'s bodies and joints as they are now."""
    client, bodies = _client_and_bodies(env)
    base, joints = [], []
    for body in bodies:
        position, orientation = client.getBasePositionAndOrientation(body)
        linear, angular = client.getBaseVelocity(body)
        base.extend([*position, *orientation, *linear, *angular])
        for joint in range(client.getNumJoints(body)):
            angle, velocity = client.getJointState(body, joint)[:2]
            joints.extend([angle, velocity])
    return {BODIES: np.array(base, np.float64), JOINTS: np.array(joints, np.float64)}


def set_state(env: gym.Env, state: dict[str, np.ndarray], goal: np.ndarray) -> dict[str, np.ndarray]:
    """Put ``env``'s bodies, joints and goal into ``state``; returns the observation the env now gives.

    Call after ``env.reset()`` (the time limit then counts T steps from here). ValueError (one line) for a state
    of another scene, or a goal of another size.
    """
    client, bodies = _client_and_bodies(env)
    raw: Any = env.unwrapped
    unknown = sorted(key for key, value in state.items() if key not in COMPONENTS and np.size(value))
    if unknown:
        raise ValueError(f"state has components a panda-gym env does not have: {', '.join(unknown)} "
                         f"(a state of another simulator?)")
    n_joints = [client.getNumJoints(body) for body in bodies]
    sizes = {BODIES: 13 * len(bodies), JOINTS: 2 * sum(n_joints)}
    values = {}
    for key, size in sizes.items():
        value = np.asarray(state.get(key, np.zeros(0)), np.float64).reshape(-1)
        if value.size != size:
            raise ValueError(f"state '{key}' has {value.size} values but {_name(env)} needs {size}: "
                             f"the state is from another scene")
        values[key] = value
    goal = np.array(goal, dtype=np.float64)
    if goal.shape != np.shape(raw.task.goal):
        raise ValueError(f"goal has shape {goal.shape} but {_name(env)} needs {np.shape(raw.task.goal)}")
    base = values[BODIES].reshape(len(bodies), 13)
    joints = values[JOINTS].reshape(-1, 2)
    k = 0
    for body, row, count in zip(bodies, base, n_joints):
        client.resetBasePositionAndOrientation(body, row[0:3], row[3:7])
        client.resetBaseVelocity(body, row[7:10], row[10:13])
        for joint in range(count):
            client.resetJointState(body, joint, joints[k, 0], targetVelocity=joints[k, 1])
            k += 1
        for link in range(count):
            # Link poses are cached from the last simulation step; the env reads them (the end effector's
            # position, which its next action also starts from), so recompute them for the restored joints.
            client.getLinkState(body, link, computeLinkVelocity=True, computeForwardKinematics=True)
    raw.task.goal = goal
    return raw._get_obs()
