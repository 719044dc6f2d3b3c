"""Scripted demonstrations for any goal env (reference §15, decision D11), written as plain arrays.

**The expert interface.** An expert is a callable from one observation dict (``observation``, ``achieved_goal``,
``desired_goal``, as the env returns it) to an action inside the env's action space; or a class whose instances
are such callables, made afresh for every episode (for experts that keep a phase). ``EXPERTS`` maps a task to
its expert: the Fetch tasks' below, panda-gym's in ``her/panda_experts.py``; ``her-demos --expert
module:callable`` takes a user's own for any goal env (``examples/reach_expert.py``). Every episode runs exactly
T steps from ``env.reset(seed=episode_seed(seed, i))``, so the same command writes the same file; where a
``her.env_state`` backend knows the env (MuJoCo, PyBullet), the file also holds the simulator state of every
observation, for resets to demonstration states. Run ``her-demos --help`` for the options.

Measured success of the Fetch experts: PickAndPlace 100% (600 episodes), Push 99.8% (600), Reach 100%, Slide
95% (seeds 0-3: 96, 99, 92, 94 of 100), Stack2 100% (seeds 0-1, 200), Stack3 99% (seed 0: 99 of 100).

Observation layout of the Fetch object tasks (25 values): grip_pos 0:3, object_pos 3:6, object_rel_pos 6:9,
gripper_state 9:11, object_rot 11:14, object_velp 14:17 (relative to the gripper), object_velr 17:20,
grip_velp 20:23, gripper_vel 23:25; velocities are displacements per step (velocity x dt). FetchStack repeats
each object field per block (see her/fetch_stack.py).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import NamedTuple
from collections.abc import Callable, Mapping

import numpy as np

GAIN = 10.0  # action per metre of position error: the env moves the gripper about 3.3 cm per step at action 1

Expert = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def _action(xyz, gripper: float) -> np.ndarray:
    a = np.empty(4, np.float32)
    a[:3] = GAIN * np.asarray(xyz, dtype=np.float64)
    a[3] = gripper
    return np.clip(a, -1.0, 1.0)


# ---- FetchReach ----

def reach_expert(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Move the gripper straight to the goal."""
    return _action(obs["desired_goal"] - obs["observation"][0:3], 0.0)


# ---- FetchPickAndPlace ----

def pick_and_place_expert(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Hover above the block, descend with open fingers, close, carry the block to the goal and hold it there.

    The phase is read from the observation alone, so a block that slips out restarts the approach.
    """
    o, goal = obs["observation"], obs["desired_goal"]
    grip, obj, rel = o[0:3], o[3:6], o[6:9]
    width = o[9] + o[10]  # finger opening: 0 closed, 0.1 open, about 0.05 around the 5 cm block
    xy = np.linalg.norm(rel[:2])
    if xy < 0.02 and abs(rel[2]) < 0.02 and 0.02 < width < 0.07:
        return _action(goal - obj, -1.0)  # holding it: carry, keep squeezing
    if xy > 0.01:
        err = obj + np.array([0.0, 0.0, 0.05]) - grip
        if grip[2] < obj[2] + 0.03 and xy > 0.02:
            err[:2] = 0.0  # rise clear of the block before moving sideways, or the fingers knock it away
        return _action(err, 1.0)
    return _lower_and_grip(rel, width)


def _lower_and_grip(rel: np.ndarray, width: float) -> np.ndarray:
    """Above a block (``rel``: block minus gripper): lower with open fingers, then close them around it."""
    if rel[2] < -0.01:
        err = rel.copy()
        if width < 0.08:
            err[2] = 0.0  # fingers still opening: wait above the block rather than land on it
        return _action(err, 1.0)
    return _action(rel, -1.0)  # fingers around the block: close


# ---- FetchPush and FetchSlide: get behind the object, then drive it ----

SAFE_HEIGHT = 0.07  # above the table-height push line when passing over the object
CLEARANCE = 0.07  # a path passing nearer than this to the object's centre goes over it, not around


def _segment_distance(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> float:
    ab = b - a
    s = np.clip((p - a) @ ab / max(ab @ ab, 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(a + s * ab - p))


def _arrived(err_xy: np.ndarray, o: np.ndarray) -> bool:
    # Close enough, or as close as the arm reaches: near the workspace edge the gripper stops short.
    e = np.linalg.norm(err_xy)
    return bool(e < 0.01 or (e < 0.03 and np.linalg.norm(o[20:23]) < 0.002))


def _behind_then_drive(o: np.ndarray, height: float, u: np.ndarray, standoff: float, lat_tol: float,
                       drive: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Put the gripper ``standoff`` behind the object along ``u`` at ``height``, then move it by ``drive``.

    ``drive(grip_xy, lateral_offset)`` gives the xy command (in metres of error) once the gripper is in place.
    """
    grip, obj = o[0:3], o[3:6]
    p = grip[:2] - obj[:2]
    along = p @ u
    lat = p - along * u
    behind = obj[:2] - standoff * u
    err_xy = behind - grip[:2]
    if along < -0.03 and np.linalg.norm(lat) < lat_tol:
        if grip[2] > height + 0.01:
            if not _arrived(err_xy, o):
                return _action([*err_xy, 0.0], 0.0)
            return _action([*err_xy, 2.0 * (height - grip[2])], 0.0)  # in place: descend
        return _action([*drive(grip[:2], lat), height - grip[2]], 0.0)
    if _arrived(err_xy, o):
        return _action([*err_xy, 2.0 * (height - grip[2])], 0.0)
    # On the way behind the object: go over it whenever the straight path would touch it.
    blocked = _segment_distance(grip[:2], behind, obj[:2]) < CLEARANCE
    if blocked and grip[2] < height + SAFE_HEIGHT - 0.01:
        return _action([0.0, 0.0, height + SAFE_HEIGHT - grip[2]], 0.0)
    z = height + SAFE_HEIGHT - grip[2] if blocked else 0.0
    return _action([*err_xy, z], 0.0)


def push_expert(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Get behind the block on the line from the goal through it, at table height, and push it to the goal."""
    o, goal = obs["observation"], obs["desired_goal"]
    obj = o[3:6]
    d = goal[:2] - obj[:2]
    dist = np.linalg.norm(d)
    if dist < 0.01:
        return _action(np.zeros(3), 0.0)
    u = d / dist
    height = goal[2] - 0.005  # Push goals lie on the table: push at the block's mid-height

    def drive(grip_xy: np.ndarray, lat: np.ndarray) -> np.ndarray:
        # Head for where the gripper stands when the block is on the goal, steering back onto the push line;
        # slow (at most 0.6) so the block does not slide past the goal.
        xy = 0.5 * ((goal[:2] - 0.045 * u - grip_xy) - 4.0 * lat)
        speed = np.linalg.norm(xy) * GAIN
        return xy * (0.6 / speed) if speed > 0.6 else xy

    return _behind_then_drive(o, height, u, standoff=0.07, lat_tol=0.02, drive=drive)


# FetchSlide: a strike from rest is repeatable, so the expert inverts a measured table of where strikes send the
# puck (slide_calibration.py writes it) rather than a friction model. The flat finger faces turn shallow strikes
# towards the axes and MuJoCo's pyramidal friction cone brakes diagonal slides less, both hard to model well.
SLIDE_TABLE = Path(__file__).with_name("assets") / "slide_strikes.csv"
STRIKE_STANDOFF = 0.06  # gripper centre behind the puck centre when the strike starts
STRIKE_STEPS = 5  # steps of driving; the puck leaves the fingers within them
STRIKE_HEIGHT = 0.42  # grip site height: the finger tips just clear the table
PLACE_TOL = 0.004  # the strike starts with the gripper this near its place: the slide is sensitive to the standoff
APPROACH_GAIN = 20.0  # the gripper covers about two thirds of its commanded step: nearly deadbeat, little overshoot
PUCK_CLEARANCE = 0.055  # puck radius + half the closed fingers' diagonal + overshoot; below STRIKE_STANDOFF


def strike_action(o: np.ndarray, u: np.ndarray, s: float, k: int) -> np.ndarray:
    """Step ``k`` (from 1) of a strike along ``u`` with strength ``s``: drive, back off, then keep still."""
    z = STRIKE_HEIGHT - o[2]
    if k <= STRIKE_STEPS:
        # Scaled by the largest component, so diagonal strikes use the gripper's full (faster) diagonal speed.
        return _action([*(s / GAIN * u / np.abs(u).max()), z], 0.0)
    if k <= STRIKE_STEPS + 3:
        return _action([*(-0.03 * u), z], 0.0)  # back off, or the fingers touch the puck again
    return _action([0.0, 0.0, z], 0.0)


_slide_table: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None


def _strike_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(angles, strengths, slide length[angle, strength], slide direction[angle, strength]) from SLIDE_TABLE."""
    global _slide_table
    if _slide_table is None:
        rows = np.loadtxt(SLIDE_TABLE, delimiter=",", skiprows=1)
        angles, strengths = np.unique(rows[:, 0]), np.unique(rows[:, 1])
        shape = (len(angles), len(strengths))  # rows are written angle-major
        _slide_table = angles, strengths, rows[:, 2].reshape(shape), rows[:, 3].reshape(shape)
    return _slide_table


def plan_strike(disp: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Strike direction (unit xy) and strength that slide a puck at rest by ``disp``, from the measured table,
    and the slide length the table gives for them (short of ``|disp|`` if that is out of reach)."""
    angles, strengths, length, direction = _strike_grid()
    back = disp[0] < 0  # the table covers strikes with a forward x component; mirror the rare others
    psi = np.degrees(np.arctan2(disp[1], abs(disp[0])))
    fine = np.linspace(strengths[0], strengths[-1], 81)
    # Table columns at the fine strengths (linear in s), direction made monotone in the angle to invert it.
    length = np.stack([np.interp(fine, strengths, row) for row in length])
    direction = np.maximum.accumulate(np.stack([np.interp(fine, strengths, row) for row in direction]), axis=0)
    theta = np.array([np.interp(psi, direction[:, k], angles) for k in range(len(fine))])
    reach = np.array([np.interp(theta[k], angles, length[:, k]) for k in range(len(fine))])
    k = int(np.argmin(np.abs(reach - np.linalg.norm(disp))))
    th = np.radians(theta[k])
    return np.array([-np.cos(th) if back else np.cos(th), np.sin(th)]), float(fine[k]), float(reach[k])


class SlideExpert:
    """Get behind the puck at rest, strike it with the planned strength, wait for it to stop; strike again if short.

    Keeps the strike's phase across steps: make one per episode (``run_episode`` does).
    """

    def __init__(self) -> None:
        self.strike: tuple[np.ndarray, float] | None = None
        self.k = 0

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        o, goal = obs["observation"], obs["desired_goal"]
        grip, obj = o[0:3], o[3:6]
        if self.strike is not None:
            self.k += 1
            if self.k <= STRIKE_STEPS + 3:
                return strike_action(o, *self.strike, self.k)
            self.strike = None
        d = goal[:2] - obj[:2]
        dist = np.linalg.norm(d)
        if dist < 0.04:
            # Inside the 5 cm success radius: a strike this short would as likely knock it out again.
            return _action([0.0, 0.0, STRIKE_HEIGHT - grip[2]], 0.0)
        velocity = o[14:16] + o[20:22]  # the puck's own, not relative to the gripper
        if np.linalg.norm(velocity) > 5e-4:
            # Sliding: follow it, standing off behind it along its motion (never in its way), so that a second
            # strike can start soon after it stops.
            return _go_behind(grip, obj, velocity / np.linalg.norm(velocity))
        u, s, reach = plan_strike(d)
        if reach < dist - 0.03:
            # Beyond the strongest strike (about 0.65 m along an axis): first a short one along the line that
            # leaves the puck within the strongest strike's reach, and in the gripper's.
            u, s, _ = plan_strike(d * max(dist - reach + 0.05, 0.06) / dist)
        settled = np.linalg.norm(o[20:23]) < 0.002 and abs(STRIKE_HEIGHT - grip[2]) < 0.005
        if settled and np.linalg.norm(obj[:2] - STRIKE_STANDOFF * u - grip[:2]) < PLACE_TOL:
            self.strike, self.k = (u, s), 1
            return strike_action(o, u, s, 1)
        return _go_behind(grip, obj, u)


def _go_behind(grip: np.ndarray, obj: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Head for STRIKE_STANDOFF behind the puck along ``u``, at strike height, without touching the puck."""
    behind = obj[:2] - STRIKE_STANDOFF * u
    xy = APPROACH_GAIN / GAIN * (_around(grip[:2], obj[:2], u, behind) - grip[:2])
    return _action([*xy, STRIKE_HEIGHT - grip[2]], 0.0)



def _around(grip: np.ndarray, obj: np.ndarray, u: np.ndarray, behind: np.ndarray) -> np.ndarray:
    """Where to head for on the way to ``behind``: straight there, or via a point beside the puck if it is in the way.

    Going round at table height is quicker than rising over the puck and coming down again.
    """
    if _segment_distance(grip, behind, obj) >= PUCK_CLEARANCE:
        return behind
    normal = np.array([-u[1], u[0]])
    # Beside and a little behind the puck: from there the way to ``behind`` is clear. Take the nearer side the
    # gripper can reach without touching the puck; if neither, first back away from the puck.
    sides = [obj + 0.1 * side * normal - 0.05 * u for side in (1.0, -1.0)]
    clear = [w for w in sides if _segment_distance(grip, w, obj) >= PUCK_CLEARANCE]
    if clear:
        return min(clear, key=lambda w: np.linalg.norm(w - grip))
    away = grip - obj
    return obj + 0.1 * away / max(np.linalg.norm(away), 1e-9)


# ---- FetchStack2 / FetchStack3 (her/fetch_stack.py): pick each block in turn and put it on the tower ----

PLACED = 0.03  # a block this near its place in the tower counts as done (success allows 0.05)
FINGER_DROP = 0.02  # the finger tips hang about this far below the grip site


class StackExpert:
    """PickAndPlace's grasp for each block in order, carried over the tower's top and lowered onto it.

    The blocks' state is read from the observation each step (a dropped or knocked block is picked again);
    the only phase kept is "just released, rising clear", so make one per episode (``run_episode`` does).
    """

    def __init__(self) -> None:
        self.rising = False

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        o, goal = obs["observation"], obs["desired_goal"]
        n = goal.shape[0] // 3
        grip, pos, targets = o[0:3], o[3:3 + 3 * n].reshape(n, 3), goal.reshape(n, 3)
        width = o[3 + 6 * n] + o[4 + 6 * n]
        done = np.linalg.norm(pos - targets, axis=1) < PLACED
        todo = np.flatnonzero(~done)
        # Safe height to move sideways at: finger tips above the tower and any block on the table.
        top = max([pos[j, 2] for j in np.flatnonzero(done)] + [pos[:, 2].min()]) + 0.025
        travel_z = top + FINGER_DROP + 0.025
        if self.rising or not len(todo):
            self.rising = self.rising and (grip[2] < travel_z - 0.01 or width < 0.08)
            return _action([0.0, 0.0, travel_z - grip[2]], 1.0)  # fingers open, straight up off the tower
        i = todo[0]
        obj, rel = pos[i], pos[i] - grip
        place = targets[i].copy()
        if i > 0 and done[i - 1]:
            place[:2] = pos[i - 1, :2]  # on the block below as it stands, not where it should have stood
        xy = np.linalg.norm(rel[:2])
        if xy < 0.02 and abs(rel[2]) < 0.02 and 0.02 < width < 0.07:  # holding it
            carry_z = place[2] + 0.06  # the block's bottom 3.5 cm above where it will stand
            e = place - obj
            if np.linalg.norm(e[:2]) > 0.01:
                if obj[2] < carry_z - 0.015:
                    return _action([0.0, 0.0, carry_z - obj[2]], -1.0)  # lift clear before moving sideways
                return _action([*e[:2], carry_z - obj[2]], -1.0)
            if np.linalg.norm(e) < 0.01:
                self.rising = True
                return _action([0.0, 0.0, 0.0], 1.0)  # in place: let go
            return _action(e, -1.0)  # lower it onto the table or the tower
        if xy > 0.01:
            hover = travel_z if xy > 0.02 else obj[2] + 0.05
            err = np.r_[obj[:2] - grip[:2], hover - grip[2]]
            if grip[2] < travel_z - 0.015 and xy > 0.02:
                err[:2] = 0.0  # rise before moving sideways, or the fingers sweep the blocks
            return _action(err, 1.0)
        return _lower_and_grip(rel, width)


# A pure function of the observation, or a class whose instances keep one episode's phase (one per episode).
EXPERTS: dict[str, Expert | type] = {
    "FetchReach": reach_expert,
    "FetchPush": push_expert,
    "FetchPickAndPlace": pick_and_place_expert,
    "FetchSlide": SlideExpert,
    "FetchStack2": StackExpert,
    "FetchStack3": StackExpert,
}


def _all_experts() -> dict[str, Expert | type]:
    from her.panda_experts import EXPERTS as PANDA

    return {**EXPERTS, **PANDA}


def load_expert(spec: str) -> Expert | type:
    """``module:callable`` -> the user's expert (the module is imported: the user named it on the command line)."""
    import importlib

    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"--expert {spec!r}: give it as module:callable, e.g. examples.reach_expert:expert")
    try:
        found = getattr(importlib.import_module(module), name)
    except Exception as e:  # noqa: BLE001 - any failure of the user's module is one line
        raise ValueError(f"--expert {spec}: cannot load it ({type(e).__name__}: {e}); check the module is on "
                         f"PYTHONPATH and defines {name}") from None
    if not callable(found):
        raise ValueError(f"--expert {spec} is a {type(found).__name__}, not a function or class")
    return found


def expert_for(env_id: str) -> Expert | type:
    """The scripted expert of ``env_id``'s task (any version, dense reward or not); see ``EXPERTS``."""
    from her.envs import base_task

    task = base_task(env_id)
    experts = _all_experts()
    if task not in experts:
        raise ValueError(f"no scripted expert for {env_id}: use one of {', '.join(experts)}, or your own "
                         f"controller with --expert module:callable")
    return experts[task]


# ---- generation ----

def episode_seed(seed: int, i: int) -> int:
    """Reset seed of episode ``i``: independent streams per episode, and no overlap between nearby --seed values."""
    return int(np.random.SeedSequence(seed, spawn_key=(i,)).generate_state(1)[0])


class ExpertEpisode:
    """One scripted episode as ``RolloutWorker`` runs it: the expert is its policy, a seeded reset its start,
    and after each step it records the simulator state (``her.sim_state``) and the env's goal."""

    def __init__(self, expert: Expert | type, seed: int, T: int, noise: float = 0.0):
        self.expert = expert() if isinstance(expert, type) else expert  # a fresh one: no phase leaks in
        self.seed, self.T, self.noise = seed, T, noise
        self.noise_rng = np.random.default_rng(seed)
        from her.demo import EpisodeStates

        self.states = EpisodeStates()
        self.no_states = ""  # why this env's states cannot be recorded, if they cannot
        self.obs: dict[str, np.ndarray] = {}  # the env's latest observation, in its own float64

    def start(self, env_index: int, env, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        try:
            self.states.track(env)  # before the reset: get_state must see inside every step of the episode
        except ValueError as err:  # no her.env_state backend knows this env: demos without states
            self.no_states = str(err)
        self.obs, _ = env.reset(seed=self.seed)
        self._record(env)
        return self.obs

    def _record(self, env) -> None:
        if not self.no_states:
            self.states.record(env)

    def get_actions(self, o: np.ndarray, g: np.ndarray, **_) -> tuple[np.ndarray, None]:
        """The expert's action for the one env, ``(1, dim_u)``: noisy if asked, clipped, float32 (as executed).

        The expert reads the env's own observation rather than ``o``, the worker's float32 copy of it, so that
        its arithmetic (and so every demo file) is the same as when it drove the env directly.
        """
        u = np.asarray(self.expert(self.obs), dtype=np.float32)
        if self.noise > 0:
            u = u + self.noise * self.noise_rng.standard_normal(u.shape).astype(np.float32)
        return np.clip(u, -1.0, 1.0)[None], None

    def after_step(self, t: int, env_index: int, env, result: tuple) -> None:
        # terminated is ignored, as in training: panda-gym reports it on reaching the goal, and HER's episodes
        # run T steps whatever happens (success is read after the last).
        self.obs, truncated = result[0], result[3]
        if truncated and t < self.T - 1:
            raise RuntimeError(f"{env.spec.id} was truncated after {t + 1} steps, before T={self.T}")
        self._record(env)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """``state/<name>: (T+1, size)`` and ``state/goal: (T+1, dim_g)``, float64; {} without states."""
        return {} if self.no_states else self.states.arrays()


def run_episode(env, expert: Expert | type, seed: int, T: int,
                noise: float = 0.0) -> tuple[dict[str, np.ndarray], bool]:
    """One episode of exactly T steps in the replay layout (D1); success is info['is_success'] after the last.

    ``expert`` is an entry of ``EXPERTS``: a class is instantiated afresh, so no phase leaks between episodes.
    With the episode, the simulator state of every observation, ``state/<name>: (T+1, size)`` float64
    (``her.sim_state``), and the env's goal, ``state/goal: (T+1, dim_g)``. ``noise`` adds Gaussian noise of
    that standard deviation to the expert's actions (a weaker expert).
    """
    from her.rollout import RolloutWorker

    episode = ExpertEpisode(expert, seed, T, noise)
    space = env.observation_space
    dims = {"o": space["observation"].shape[0], "g": space["desired_goal"].shape[0], "u": env.action_space.shape[0]}
    worker = RolloutWorker([env], episode, dims, T, starts=episode, after_step=episode.after_step)
    ep = {key: value[0] for key, value in worker.generate_rollouts().items()}  # (T or T+1, dim)
    ep.update(episode.state_arrays())
    return ep, bool(ep["info_is_success"][-1, 0])


class Generated(NamedTuple):
    episodes: dict[str, np.ndarray]  # {key: (E, T_key, dim)}, float32; state/ keys (E, T+1, size) float64
    successes: int  # among the kept episodes
    attempts: int  # episodes run (more than kept with only_success)
    no_states: str = ""  # why the episodes hold no simulator states (no her.env_state backend for the env)


class GenerationError(RuntimeError):
    """only_success could not collect enough successful episodes within the allowed attempts."""


def generate(env_id: str, num_episodes: int, seed: int = 0, *, only_success: bool = False,
             max_attempts: int | None = None, noise: float = 0.0, expert: Expert | type | None = None) -> Generated:
    """Run ``expert`` (default: the task's, ``expert_for``) for ``num_episodes`` episodes (successful ones
    only, if ``only_success``)."""
    from her.env_state import backend_for
    from her.envs import episode_length, make_env

    if num_episodes < 1:
        raise ValueError(f"num_episodes must be at least 1, got {num_episodes}")
    expert = expert if expert is not None else expert_for(env_id)
    T = episode_length(env_id)
    max_attempts = num_episodes if not only_success else (max_attempts or 10 * num_episodes)
    env = make_env(env_id)
    try:
        no_states = ""
        try:
            backend_for(env)
        except ValueError as err:
            no_states = str(err)
        kept: list[dict[str, np.ndarray]] = []
        successes = attempts = 0
        while len(kept) < num_episodes and attempts < max_attempts:
            episode, success = run_episode(env, expert, episode_seed(seed, attempts), T, noise)
            attempts += 1
            successes += success
            if success or not only_success:
                kept.append(episode)
    finally:
        env.close()
    if len(kept) < num_episodes:
        raise GenerationError(
            f"only {len(kept)} of {attempts} episodes of {env_id} succeeded, short of the {num_episodes} "
            f"asked for: lower --num_episodes, raise --max_attempts, or drop --only_success")
    episodes = {key: np.stack([ep[key] for ep in kept]) for key in kept[0]}
    return Generated(episodes, int(episodes["info_is_success"][:, -1, 0].sum()), attempts, no_states)


def default_output(env_id: str, num_episodes: int) -> str:
    """``data_fetch_random_<N>.npz`` for FetchPickAndPlace (the reference's name), ``data_fetch_<task>_<N>.npz``
    for the other Fetch tasks, ``data_<task>_<N>.npz`` for any other (``data_panda_stack_100.npz``)."""
    from her.envs import task_name

    task = task_name(env_id.split(":")[-1])
    if task == "FetchPickAndPlace":
        return f"data_fetch_random_{num_episodes}.npz"
    fetch = task.startswith("Fetch")
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", task.removeprefix("Fetch")).lower()
    return f"data_fetch_{words}_{num_episodes}.npz" if fetch else f"data_{words}_{num_episodes}.npz"


# ---- command line ----

class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        self.exit(2, f"error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        description="Write scripted demonstrations for a goal env as an .npz of plain arrays (decision D11): "
                    "o, ag (E, T+1, dim), g, u (E, T, dim), info_is_success (E, T, 1), env_id, format, version, "
                    "and the simulator state of every observation, state/<name> (E, T+1, size).",
        epilog="Episode i starts from env.reset(seed=SeedSequence(seed, spawn_key=(i,))), so the same command "
               "writes the same file. Exit codes: 0 written, 1 --only_success gave up, 2 bad arguments.",
    )
    p.add_argument("--env", default="FetchPickAndPlace",
                   help=f"task: {', '.join(_all_experts())}, or a gymnasium id such as FetchPush-v4 or "
                        "module:EnvId (with --expert, any goal env) (default: %(default)s)")
    p.add_argument("--expert", default=None, metavar="MODULE:CALLABLE",
                   help="your own expert instead of the task's: a function from the observation dict to an action, "
                        "or a class whose instances are (one per episode); e.g. examples.reach_expert:expert")
    p.add_argument("--num_episodes", type=int, default=100, help="episodes to write (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the episode resets (default: %(default)s)")
    p.add_argument("--output", default=None,
                   help="file to write; default data_fetch_random_<N>.npz for PickAndPlace (the reference's "
                        "name) and data_fetch_<task>_<N>.npz otherwise, e.g. data_fetch_push_100.npz")
    p.add_argument("--only_success", action="store_true",
                   help="keep only successful episodes, running more until --num_episodes succeed")
    p.add_argument("--max_attempts", type=int, default=None,
                   help="with --only_success, give up after this many episodes (default: 10 x --num_episodes)")
    p.add_argument("--noise", type=float, default=0.0,
                   help="std of Gaussian noise added to the expert's actions, as executed and recorded: a weaker "
                        "expert, or (0.1) one shown off its path and recovering, as the stack recipe wants "
                        "(default: %(default)s)")
    p.add_argument("--uncompressed", action="store_true", help="store the arrays without deflate compression")
    p.add_argument("--format", choices=("npz", "minari"), default="npz",
                   help="npz: this project's file; minari: a local Minari dataset (in $MINARI_DATASETS_PATH, "
                        "else ~/.minari/datasets) whose id is --output, default her/<task>/expert-<N>-v0; needs "
                        "pip install 'her-tf2[minari]' (default: %(default)s)")
    p.add_argument("--convert", metavar="SOURCE", default=None,
                   help="convert demos instead of generating them: an .npz to the Minari dataset --output (an id), "
                        "or a Minari dataset (an id or its folder) to the .npz --output; every array is kept")
    p.add_argument("--gym_packages", default="", metavar="MODULES",
                   help="with --convert: modules to import that register the env an .npz names (a demo file "
                        "imports none by itself)")
    return p


def _check_output(path: Path) -> str | None:
    from her.config import ConfigError, check_path

    try:
        check_path("output", str(path))
    except ConfigError as err:
        return str(err)
    if path.is_dir():
        return f"--output {path} is a directory"
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return f"--output {path}: folder {parent} does not exist"
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"--output {path} is not writable"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def fail(message: str, code: int = 2) -> int:
        print(f"error: {message}", file=sys.stderr)
        return code

    from her.demo import save_demos
    from her.envs import resolve_env_id
    from her.errors import TrainingError, UserError

    if args.convert:
        try:
            return _convert(args.convert, args.output, args.gym_packages)
        except UserError as err:
            return fail(str(err))
        except TrainingError as err:  # a write that failed (a full disk)
            return fail(str(err), code=1)
    try:
        env_id = resolve_env_id(args.env)
        expert = load_expert(args.expert) if args.expert else expert_for(env_id)
    except ValueError as err:
        return fail(str(err))
    if args.num_episodes < 1:
        return fail(f"--num_episodes must be at least 1, got {args.num_episodes}")
    if args.seed < 0:
        return fail(f"--seed must be an integer >= 0 (numpy's seeds are), got {args.seed}")
    if not 0 <= args.noise < float("inf"):
        return fail(f"--noise must be a number >= 0, got {args.noise}")
    if args.max_attempts is not None and args.max_attempts < args.num_episodes:
        return fail(f"--max_attempts ({args.max_attempts}) must be at least --num_episodes ({args.num_episodes})")
    if args.format == "minari":
        return _generate_minari(args, env_id, expert, fail)
    output = Path(args.output or default_output(env_id, args.num_episodes))
    problem = _check_output(output)
    if problem:
        return fail(problem)

    try:
        result = generate(env_id, args.num_episodes, args.seed, only_success=args.only_success,
                          max_attempts=args.max_attempts, noise=args.noise, expert=expert)
    except GenerationError as err:
        return fail(str(err), code=1)
    except Exception as err:  # noqa: BLE001 - the expert or the env failed mid-episode: one line, no file
        if args.expert is None:
            raise
        return fail(f"--expert {args.expert} failed while acting ({type(err).__name__}: {err})", code=1)
    try:
        save_demos(output, result.episodes, env_id, compresslevel=None if args.uncompressed else 1,
                   no_states=result.no_states)
    except OSError as err:
        return fail(f"cannot write {output}: {err.strerror or err}")

    _summary(args, result)
    print(f"wrote {args.num_episodes} episodes of {env_id} (T={result.episodes['u'].shape[1]}) to {output}")
    return 0


def _summary(args: argparse.Namespace, result: Generated) -> None:
    n = args.num_episodes
    print(f"{result.successes}/{n} episodes succeeded ({100 * result.successes / n:.0f}%)")
    if args.only_success:
        print(f"the expert succeeded in {result.successes} of {result.attempts} attempts "
              f"({100 * result.successes / result.attempts:.0f}%)")


def _generate_minari(args: argparse.Namespace, env_id: str, expert: Expert | type, fail) -> int:
    from her import minari_demos
    from her.envs import task_name
    from her.errors import TrainingError, UserError

    dataset_id = args.output or f"her/{task_name(env_id)}/expert-{args.num_episodes}-v0"
    try:
        minari_demos.check_new_id(dataset_id)  # before minutes of generating, not after
        result = generate(env_id, args.num_episodes, args.seed, only_success=args.only_success,
                          max_attempts=args.max_attempts, noise=args.noise, expert=expert)
        noise = f", actions through Gaussian noise {args.noise}" if args.noise else ""
        folder = minari_demos.write_dataset(
            result.episodes, env_id, dataset_id,
            description=f"her-demos scripted expert on {env_id}: {args.num_episodes} episodes, seed {args.seed}"
                        f"{noise}")
    except (GenerationError, TrainingError) as err:
        return fail(str(err), code=1)
    except UserError as err:
        return fail(str(err))
    _summary(args, result)
    print(f"wrote {args.num_episodes} episodes of {env_id} (T={result.episodes['u'].shape[1]}) as Minari dataset "
          f"{dataset_id} ({folder}); train on it with --demo_file {dataset_id}")
    return 0


def _convert(source: str, output: str | None, gym_packages: str = "") -> int:
    from her import demo_convert, minari_demos
    from her.config import check_path, coerce, package_list

    check_path("convert", source)
    if output:
        check_path("output", output)
    if minari_demos.looks_like_dataset(source):
        if not output:
            raise minari_demos.MinariError("--convert from a Minari dataset needs --output FILE.npz")
        problem = _check_output(Path(output))
        if problem:
            raise minari_demos.MinariError(problem)
        count, env_id = demo_convert.import_demos(source, output)
        print(f"wrote {count} episodes of {env_id} from Minari dataset {source} to {output}")
    else:
        if not output:
            raise minari_demos.MinariError("--convert from an .npz needs --output DATASET_ID, e.g. "
                                           "her/FetchPush/expert-100-v0")
        packages = package_list(coerce("gym_packages", gym_packages))
        count, env_id, folder = demo_convert.export_demos(source, output, packages)
        print(f"wrote {count} episodes of {env_id} from {source} as Minari dataset {output} ({folder})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
