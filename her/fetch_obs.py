"""A faster, bit-identical observation path for the gymnasium-robotics Fetch envs.

Upstream assembles every observation by looking up each of the robot's 15 joints by name (``mj_name2id``
plus Python bookkeeping per joint), which costs about a fifth of a step. This module resolves every name once
per env and replaces the env's ``generate_mujoco_observations`` and ``_step_callback`` with versions that index
the same MuJoCo arrays with cached addresses and do the same float64 arithmetic in the same order, so the
observations are bit-identical (``tests/test_fetch_obs.py`` checks it on every task).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np


def _fetch_env_class() -> Any:
    try:
        from gymnasium_robotics.envs.fetch.fetch_env import MujocoFetchEnv
    except ImportError:  # a gymnasium-robotics without the class: keep the upstream path
        return None
    return MujocoFetchEnv


def install(env: gym.Env) -> bool:
    """Switch ``env`` to the cached-index path; returns False (and changes nothing) if it is not a Fetch env
    assembling its observation the upstream way."""
    fetch_class = _fetch_env_class()
    raw: Any = env.unwrapped  # a MujocoFetchEnv, whose attributes gym.Env does not declare
    if fetch_class is None or not isinstance(raw, fetch_class):
        return False
    if type(raw)._get_obs is not fetch_class._get_obs:
        return False  # a Fetch env with its own observation (her.fetch_stack): the cached path would not be used
    model = raw.model
    joint_ids = [
        mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        for name in raw._model_names.joint_names
        if name.startswith("robot")
    ]
    one_dof = (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)
    if not joint_ids or any(model.jnt_type[j] not in one_dof for j in joint_ids):
        return False  # upstream's layout assumption does not hold: do not guess
    qpos_index = model.jnt_qposadr[joint_ids].copy()
    qvel_index = model.jnt_dofadr[joint_ids].copy()
    grip = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "robot0:grip")
    obj = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "object0") if raw.has_object else -1
    fingers = [
        model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)]
        for name in ("robot0:l_gripper_finger_joint", "robot0:r_gripper_finger_joint")
    ]
    from gymnasium_robotics.utils.rotations import mat2euler

    def site_velocity(model, data, site: int, translational: bool) -> np.ndarray:
        # Same Jacobian product as upstream's get_site_xvelp/xvelr, hence the same rounding.
        jac = np.zeros((3, model.nv))
        if translational:
            mujoco.mj_jacSite(model, data, jac, None, site)
        else:
            mujoco.mj_jacSite(model, data, None, jac, site)
        return jac @ data.qvel

    def generate_mujoco_observations(self):
        model, data = self.model, self.data
        grip_pos = data.site_xpos[grip]
        dt = self.n_substeps * model.opt.timestep
        grip_velp = site_velocity(model, data, grip, True) * dt
        robot_qpos = data.qpos[qpos_index]
        robot_qvel = data.qvel[qvel_index]
        if obj >= 0:
            object_pos = data.site_xpos[obj]
            object_rot = mat2euler(data.site_xmat[obj].reshape(3, 3))
            object_velp = site_velocity(model, data, obj, True) * dt
            object_velr = site_velocity(model, data, obj, False) * dt
            object_rel_pos = object_pos - grip_pos
            object_velp -= grip_velp
        else:
            object_pos = object_rot = object_velp = object_velr = object_rel_pos = np.zeros(0)
        gripper_state = robot_qpos[-2:]
        gripper_vel = robot_qvel[-2:] * dt
        return (
            grip_pos,
            object_pos,
            object_rel_pos,
            gripper_state,
            object_rot,
            object_velp,
            object_velr,
            grip_velp,
            gripper_vel,
        )

    def _step_callback(self):
        if self.block_gripper:
            self.data.qpos[fingers[0]] = 0.0
            self.data.qpos[fingers[1]] = 0.0
            mujoco.mj_forward(self.model, self.data)

    raw.generate_mujoco_observations = types.MethodType(generate_mujoco_observations, raw)
    raw._step_callback = types.MethodType(_step_callback, raw)
    return True


def agrees(make: Callable[[], gym.Env], steps: int = 2) -> bool:
    """Whether the cached-index path gives the same observations as the library's own on envs from ``make``
    (same seed, same actions); True for envs it does not apply to."""
    fast, plain = make(), make()
    try:
        if not install(fast):
            return True
        pairs = [(fast.reset(seed=0)[0], plain.reset(seed=0)[0])]
        space: Any = fast.action_space
        action = np.linspace(-0.5, 0.5, space.shape[0]).astype(space.dtype)
        for _ in range(steps):
            pairs.append((fast.step(action)[0], plain.step(action)[0]))
        return all(np.array_equal(a[key], b[key]) for a, b in pairs for key in b)
    finally:
        fast.close()
        plain.close()
