"""Snapshots of a gymnasium-robotics MuJoCo goal env that put its simulator back exactly (demo-state resets).

A state is a dict of flat float64 arrays, one per component of MuJoCo's ``mjSTATE_INTEGRATION`` (``time: (1,)``,
``qpos: (nq,)``, ``qvel: (nv,)``, ``act``, ``warmstart``, ``ctrl``, ``qfrc_applied``, ``xfrc_applied``,
``eq_active``, ``mocap_pos: (3 nmocap,)``, ``mocap_quat: (4 nmocap,)``, ``userdata``, ...: everything
``mj_step`` reads, so stepping a restored simulator is bit-identical), plus ``replay_substeps: (1,)``.

Why ``replay_substeps``: ``mj_step`` leaves the position-derived quantities (``xpos``, ``site_xpos``, ...) one
physics substep behind ``qpos``, and the env reads them both for its observation and, through the mocap
reset in ``_set_action``, for its next step (FetchPickAndPlace calls no ``mj_forward`` after stepping, so its
observation differs by up to a millimetre from a freshly forwarded one). After a step, the state is therefore
taken one substep before the step ended (``replay_substeps`` 1), and ``set_state`` redoes that substep and the
env's step callback, recreating what the env computed. After a reset the state is the reset itself (0).

Besides the simulator, the env keeps only ``goal`` between steps (passed to ``set_state`` separately). Its
``initial_*`` values and ``height_offset`` are computed from the model when the env is built, identical for
every env of the id, and only used by ``reset``; its ``np_random`` is not touched.
"""

from __future__ import annotations

import types

import gymnasium as gym
import mujoco
import numpy as np

REPLAY = "replay_substeps"

# The single-bit components of mjSTATE_INTEGRATION in MuJoCo's own order, named as mjtState names them:
# a MuJoCo that adds a component (as 3.3 added history) is covered without a change here.
_INTEGRATION = int(mujoco.mjtState.mjSTATE_INTEGRATION)
COMPONENTS: tuple[tuple[str, mujoco.mjtState], ...] = tuple(
    (name.removeprefix("mjSTATE_").lower(), member)
    for name, member in sorted(mujoco.mjtState.__members__.items(), key=lambda item: int(item[1]))
    if int(member) and int(member) & (int(member) - 1) == 0 and int(member) & _INTEGRATION
)

_BEFORE_LAST = "_her_sim_state_before_last_substep"  # on the unwrapped env; None right after a reset
_UNKNOWN = "tracked since the last reset or step"  # track() cannot tell which of the two came last


def _name(env: gym.Env) -> str:
    return env.spec.id if env.spec else type(env.unwrapped).__name__


def accepts(env: gym.Env) -> bool:
    """Whether ``env`` is a gymnasium-robotics MuJoCo robot env (``her.env_state``'s backend choice)."""
    from gymnasium_robotics.envs.robot_env import MujocoRobotEnv

    return isinstance(env.unwrapped, MujocoRobotEnv)


def _robot_env(env: gym.Env):
    """The unwrapped env, after checking this module knows how it steps; ValueError otherwise."""
    from gymnasium_robotics.envs.robot_env import BaseRobotEnv, MujocoRobotEnv

    raw = env.unwrapped
    name = _name(env)
    if not isinstance(raw, MujocoRobotEnv):
        raise ValueError(
            f"{name} is not a gymnasium-robotics MujocoRobotEnv (MuJoCo bindings): "
            f"its simulator state cannot be saved or restored"
        )
    # The replay below is MujocoRobotEnv's step: _set_action, n_substeps of mj_step, _step_callback, _get_obs.
    if type(raw).step is not BaseRobotEnv.step or type(raw)._mujoco_step is not MujocoRobotEnv._mujoco_step:
        raise ValueError(f"{name} overrides step() or _mujoco_step(): its simulator state cannot be replayed exactly")
    return raw


def track(env: gym.Env) -> None:
    """Let ``get_state`` see inside ``env``'s steps: call once, before the reset of the episode to record.

    Runs each step's ``n_substeps`` as n-1 and 1 substeps (bit-identical: ``mj_step`` with ``nstep`` is a loop)
    and remembers the simulator in between. Idempotent.
    """
    raw = _robot_env(env)
    if hasattr(raw, _BEFORE_LAST):
        return
    reset_sim = raw._reset_sim

    def _mujoco_step(self, action):
        if self.n_substeps > 1:
            mujoco.mj_step(self.model, self.data, nstep=self.n_substeps - 1)
        setattr(self, _BEFORE_LAST, _read(self.model, self.data))
        mujoco.mj_step(self.model, self.data)

    def _reset_sim(self):
        setattr(self, _BEFORE_LAST, None)  # MujocoRobotEnv's reset ends with mj_forward: nothing to replay
        return reset_sim()

    raw._mujoco_step = types.MethodType(_mujoco_step, raw)
    raw._reset_sim = types.MethodType(_reset_sim, raw)
    setattr(raw, _BEFORE_LAST, _UNKNOWN)


def _read(model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, np.ndarray]:
    state = {}
    for name, flag in COMPONENTS:
        state[name] = np.empty(mujoco.mj_stateSize(model, flag), np.float64)
        mujoco.mj_getState(model, data, state[name], flag)
    return state


def get_state(env: gym.Env) -> dict[str, np.ndarray]:
    """The state that ``set_state`` restores ``env`` to as it is now, after its last reset or step.

    ``env`` must have been passed to ``track`` before its last reset (ValueError otherwise).
    """
    raw = _robot_env(env)
    if not hasattr(raw, _BEFORE_LAST):
        raise ValueError(
            "get_state needs sim_state.track(env) before the env's reset: "
            "without it the state after a step cannot be reproduced exactly"
        )
    before = getattr(raw, _BEFORE_LAST)
    if before is _UNKNOWN:
        raise ValueError(
            "get_state needs a reset (or set_state) after sim_state.track(env): "
            "whether the env was last reset or stepped is unknown"
        )
    if before is None:
        state = _read(raw.model, raw.data)
        state[REPLAY] = np.zeros(1)
    else:
        state = {name: value.copy() for name, value in before.items()}
        state[REPLAY] = np.ones(1)
    return state


def set_state(env: gym.Env, state: dict[str, np.ndarray], goal: np.ndarray) -> dict[str, np.ndarray]:
    """Put ``env``'s simulator and goal into ``state``; returns the observation the env had in it.

    Call ``env.reset()`` first, then ``set_state``, then step as usual: only the simulator and the goal change,
    so the TimeLimit counts the following steps from that reset (a T-step episode from the restored state) and
    the order checks of ``gym.make``'s wrappers stay satisfied. Raises ValueError (one line) for an env it
    cannot restore, an env stepped since its reset, or a state of another model.
    """
    raw = _robot_env(env)
    _check_fresh(env)
    model, data = raw.model, raw.data
    known = {name for name, _ in COMPONENTS} | {REPLAY}
    unknown = sorted(key for key, value in state.items() if key not in known and np.size(value))
    if unknown:
        raise ValueError(f"state has components this MuJoCo ({mujoco.__version__}) does not know: {', '.join(unknown)}")
    values = []
    for name, flag in COMPONENTS:
        size = mujoco.mj_stateSize(model, flag)
        value = np.asarray(state.get(name, np.zeros(0)), dtype=np.float64).reshape(-1)
        if value.size != size:
            raise ValueError(
                f"state '{name}' has {value.size} values but this {_name(env)} model needs {size}: "
                f"the state is from another model"
            )
        values.append((value, flag))
    replay_values = np.asarray(state.get(REPLAY, 0.0), dtype=np.float64).reshape(-1)
    replay = int(replay_values[0]) if replay_values.size == 1 else -1
    if replay not in (0, 1):
        raise ValueError(f"state '{REPLAY}' must be 0 (a reset state) or 1 (a step's), got {state.get(REPLAY, 0.0)}")
    goal = np.array(goal, dtype=np.float64)
    if goal.shape != np.shape(raw.goal):
        raise ValueError(f"goal has shape {goal.shape} but {_name(env)} needs {np.shape(raw.goal)}")

    track(env)  # so that get_state on the restored env gives this state back
    for value, flag in values:
        mujoco.mj_setState(model, data, value, flag)
    if replay:
        # mj_step begins with mj_forward; stepping once more recreates the derived quantities the env saw.
        before = _read(model, data)
        mujoco.mj_step(model, data)
        raw._step_callback()
    else:
        mujoco.mj_forward(model, data)
        before = None
    setattr(raw, _BEFORE_LAST, before)
    raw.goal = goal
    return raw._get_obs()


def _check_fresh(env: gym.Env) -> None:
    # A TimeLimit that has counted steps would cut the episode from the restored state short.
    wrapper = env
    while isinstance(wrapper, gym.Wrapper):
        if isinstance(wrapper, gym.ObservationWrapper):
            raise ValueError(
                f"{_name(env)} is wrapped in {type(wrapper).__name__}, which changes observations: "
                f"set_state returns the unwrapped env's"
            )
        if isinstance(wrapper, gym.wrappers.TimeLimit):
            elapsed = getattr(wrapper, "_elapsed_steps", 0)
            if elapsed is None or elapsed:
                counted = "has not been reset" if elapsed is None else f"has run {elapsed} steps since its reset"
                raise ValueError(
                    f"{_name(env)} {counted}: call env.reset() right before set_state, so the "
                    f"time limit counts the episode from the restored state"
                )
        wrapper = wrapper.env
