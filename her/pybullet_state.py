"""Snapshots of a panda-gym (PyBullet) goal env as flat arrays, for demo-state resets.

A state is float64 arrays: ``pybullet_bodies: (13 B,)``, every body's base position (3), orientation quaternion
(4), linear and angular velocity (3 + 3), in PyBullet's body order; ``pybullet_joints: (2 J,)``, the position
and velocity of every joint of every body (the Panda's 12, fingers included); ``pybullet_motors: (9,)``, the
joint targets of the step's action; and ``replay_substeps: (1,)``. The env's goal is passed beside it, as for
MuJoCo (``her.sim_state``), whose reasoning about ``replay_substeps`` holds here too: PyBullet updates the link
poses the env observes from the joints as they were before a substep integrates, so a state is taken one
substep before a step ends, and ``set_state`` redoes that substep.

What cannot be restored: PyBullet keeps contact manifolds and the solver's warm-start impulses between
substeps, and its API neither exposes nor sets them (``saveState`` keeps them in memory only). The replayed
substep therefore solves contacts from a cold start. Measured on expert episodes of PandaPickAndPlace and
PandaStack (``tests/test_pybullet_state.py``): a restored observation has the recorded positions (end
effector, cubes, achieved goal) to within 0.01 mm (0.1 mm tested) and the robot's velocities; a cube touched by
the fingers or another cube can have other velocities (up to a few cm/s and 1-2 rad/s); and one step later the
end effector and the achieved goal are within ``STEP_TOLERANCE`` of the recorded ones (median 0.01-0.06 mm),
far inside the 5 cm success radius.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

BODIES, JOINTS, MOTORS, REPLAY = "pybullet_bodies", "pybullet_joints", "pybullet_motors", "replay_substeps"
COMPONENTS = (BODIES, JOINTS, MOTORS, REPLAY)
_BEFORE_LAST = "_her_pybullet_before_last_substep"  # on the unwrapped env: (state, motor targets) or None
STEP_TOLERANCE = 3e-3  # metres: end effector and achieved goal one step after a restored state (2 mm seen)


def _name(env: gym.Env) -> str:
    return env.spec.id if env.spec else type(env.unwrapped).__name__


def accepts(env: gym.Env) -> bool:
    """Whether ``env`` is a panda-gym ``RobotTaskEnv`` (without importing panda-gym for other envs)."""
    return type(env.unwrapped).__module__.startswith("panda_gym.") and hasattr(env.unwrapped, "sim")


def _client_and_bodies(env: gym.Env) -> tuple[Any, list[int]]:
    if not accepts(env):
        raise ValueError(f"{_name(env)} is not a panda-gym env: its PyBullet state cannot be saved or restored")
    sim = env.unwrapped.sim  # type: ignore[attr-defined]  # a panda-gym RobotTaskEnv
    return sim.physics_client, sorted(sim._bodies_idx.values())


def track(env: gym.Env) -> None:
    """Let ``get_state`` see inside ``env``'s steps: call once, before the reset of the episode to record.

    PyBullet updates the link poses the env observes during a substep, from the joints as they were before
    it integrates, so an observation is one substep behind the joints (as MuJoCo's, ``her.sim_state``). The
    step's substeps are therefore run as n-1 and 1, the state in between is kept with the step's motor targets,
    and ``set_state`` replays that last substep. Idempotent.
    """
    _client_and_bodies(env)
    raw: Any = env.unwrapped
    if hasattr(raw, _BEFORE_LAST):
        return
    sim, robot = raw.sim, raw.robot
    client = sim.physics_client
    targets: dict[str, np.ndarray] = {}
    control_joints = robot.control_joints

    def record_targets(target_angles: np.ndarray) -> None:
        targets["last"] = np.array(target_angles, np.float64)
        control_joints(target_angles)

    def step() -> None:
        for _ in range(sim.n_substeps - 1):
            client.stepSimulation()
        setattr(raw, _BEFORE_LAST, (_read(env), targets.get("last")))
        client.stepSimulation()

    reset = raw.reset

    def reset_and_forget(*args: Any, **kwargs: Any) -> Any:
        setattr(raw, _BEFORE_LAST, None)
        return reset(*args, **kwargs)

    robot.control_joints = record_targets
    sim.step = step
    raw.reset = reset_and_forget
    setattr(raw, _BEFORE_LAST, None)


def get_state(env: gym.Env) -> dict[str, np.ndarray]:
    """The state ``set_state`` restores ``env`` to as it is now (``track`` must have seen its last reset)."""
    raw: Any = env.unwrapped
    if not hasattr(raw, _BEFORE_LAST):
        raise ValueError("get_state needs pybullet_state.track(env) before the env's reset")
    before = getattr(raw, _BEFORE_LAST)
    if before is None:
        state = _read(env)
        state[MOTORS] = np.zeros(len(raw.robot.joint_indices))  # not used: nothing to replay after a reset
        state[REPLAY] = np.zeros(1)
    else:
        state = dict(before[0])
        state[MOTORS] = before[1]
        state[REPLAY] = np.ones(1)
    return state


def _read(env: gym.Env) -> dict[str, np.ndarray]:
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
        raise ValueError(
            f"state has components a panda-gym env does not have: {', '.join(unknown)} (a state of another simulator?)"
        )
    n_joints = [client.getNumJoints(body) for body in bodies]
    sizes = {BODIES: 13 * len(bodies), JOINTS: 2 * sum(n_joints)}
    values = {}
    for key, size in sizes.items():
        value = np.asarray(state.get(key, np.zeros(0)), np.float64).reshape(-1)
        if value.size != size:
            raise ValueError(
                f"state '{key}' has {value.size} values but {_name(env)} needs {size}: the state is from another scene"
            )
        values[key] = value
    goal = np.array(goal, dtype=np.float64)
    if goal.shape != np.shape(raw.task.goal):
        raise ValueError(f"goal has shape {goal.shape} but {_name(env)} needs {np.shape(raw.task.goal)}")
    replay_values = np.asarray(state.get(REPLAY, 0.0), np.float64).reshape(-1)
    replay = int(replay_values[0]) if replay_values.size == 1 else -1
    if replay not in (0, 1):
        raise ValueError(f"state '{REPLAY}' must be 0 (a reset state) or 1 (a step's), got {state.get(REPLAY)}")
    motors = np.asarray(state.get(MOTORS, np.zeros(0)), np.float64).reshape(-1)
    n_motors = len(raw.robot.joint_indices)
    if replay and motors.size != n_motors:
        raise ValueError(
            f"state '{MOTORS}' has {motors.size} values but {_name(env)} needs {n_motors}: "
            f"the state is from another robot"
        )
    track(env)  # so that get_state on the restored env gives this state back
    base = values[BODIES].reshape(len(bodies), 13)
    joints = values[JOINTS].reshape(-1, 2)
    k = 0
    for body, row, count in zip(bodies, base, n_joints):
        client.resetBasePositionAndOrientation(body, row[0:3], row[3:7])
        client.resetBaseVelocity(body, row[7:10], row[10:13])
        for joint in range(count):
            client.resetJointState(body, joint, joints[k, 0], targetVelocity=joints[k, 1])
            k += 1
    if replay:
        # Redo the step's last substep under its motor targets: it recreates the link poses the env observed.
        setattr(raw, _BEFORE_LAST, ({BODIES: values[BODIES], JOINTS: values[JOINTS]}, motors))
        raw.robot.control_joints(motors)
        client.stepSimulation()
    else:
        setattr(raw, _BEFORE_LAST, None)
        for body, count in zip(bodies, n_joints):
            for link in range(count):  # a reset's link poses: forward kinematics of the reset joints
                client.getLinkState(body, link, computeForwardKinematics=True)
    raw.task.goal = goal
    return raw._get_obs()
