"""Scripted demonstrations for the Fetch tasks (reference §15, decision D11), written as plain arrays.

Each task has a scripted expert: a pure function of the observation dict returning an action in [-1, 1]^4.
Every episode runs exactly T steps from ``env.reset(seed=episode_seed(seed, i))``, so the same command writes
the same file. Run ``python experiment/data_generation/fetch_data_generation.py --help`` for the options.
Measured success: PickAndPlace 100% (600 episodes), Push 99.8% (600), Reach 100%, Slide about 60% (600).

Observation layout of the object tasks (25 values): grip_pos 0:3, object_pos 3:6, object_rel_pos 6:9,
gripper_state 9:11, object_rot 11:14, object_velp 14:17 (relative to the gripper), object_velr 17:20,
grip_velp 20:23, gripper_vel 23:25; velocities are displacements per step (velocity x dt).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Callable, Mapping, NamedTuple

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


# MuJoCo's default pyramidal friction cone brakes only the larger velocity component of the sliding puck (both
# equally once they are equal) at about 1.6 mm/step^2. Integrating that, a puck starting at (vx, vy) with
# vx >= vy >= 0 stops after X = (vx^2 + vy^2) / 2a, Y = vx vy / a; so vx +- vy = sqrt(2a (X +- Y)).
SLIDE_DECEL = 0.0016  # m/step^2
STEP_PER_ACTION = 0.033  # m/step the gripper moves at action 1 (measured)
SLIDE_DEFLECTION = np.radians(13.0)  # the finger pads' flat faces turn the puck towards the x/y axes


def _slide_velocity(disp: np.ndarray) -> np.ndarray:
    """Initial puck velocity (m/step) that slides it by ``disp`` under the braking described above."""
    ax = np.abs(disp)
    major = int(ax[1] > ax[0])
    X, Y = ax[major], ax[1 - major]
    s, t = np.sqrt(2 * SLIDE_DECEL * (X + Y)), np.sqrt(2 * SLIDE_DECEL * max(X - Y, 0.0))
    v = np.empty(2)
    v[major], v[1 - major] = (s + t) / 2, (s - t) / 2
    return v * np.sign(disp)


def _aim(direction: np.ndarray) -> np.ndarray:
    # Measured: the puck leaves at about aim - A sin(4 aim); solve for the aim by fixed-point iteration.
    phi = np.arctan2(direction[1], direction[0])
    theta = phi
    for _ in range(8):
        theta = phi + SLIDE_DEFLECTION * np.sin(4 * theta)
    return np.array([np.cos(theta), np.sin(theta)])


def slide_expert(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Get behind the puck, then strike it so that it slides to a stop on the goal, following it up if short."""
    o, goal = obs["observation"], obs["desired_goal"]
    obj = o[3:6]
    d = goal[:2] - obj[:2]
    if np.linalg.norm(d) < 0.015:
        return _action(np.zeros(3), 0.0)
    v = _slide_velocity(d)
    speed = np.linalg.norm(v)
    u = _aim(v / speed)
    height = goal[2] - 0.005

    def drive(grip_xy: np.ndarray, lat: np.ndarray) -> np.ndarray:
        # Gripper speed along the slide velocity profile, scaled down for the extra speed the impact gives.
        return u * (0.8 * speed / STEP_PER_ACTION) / GAIN - 6.0 * lat

    return _behind_then_drive(o, height, u, standoff=0.065, lat_tol=0.008, drive=drive)


EXPERTS: dict[str, Expert] = {
    "FetchReach": reach_expert,
    "FetchPush": push_expert,
    "FetchPickAndPlace": pick_and_place_expert,
    "FetchSlide": slide_expert,
}


def expert_for(env_id: str) -> Expert:
    """The scripted expert of ``env_id``'s task (any version, dense reward or not)."""
    from her.envs import task_name

    task = task_name(env_id).removesuffix("Dense")
    if task not in EXPERTS:
        raise ValueError(f"no scripted expert for {env_id}: use one of {', '.join(EXPERTS)}")
    return EXPERTS[task]


# ---- generation ----

def episode_seed(seed: int, i: int) -> int:
    """Reset seed of episode ``i``: independent streams per episode, and no overlap between nearby --seed values."""
    return int(np.random.SeedSequence(seed, spawn_key=(i,)).generate_state(1)[0])


def run_episode(env, expert: Expert, seed: int, T: int, noise: float = 0.0) -> tuple[dict[str, np.ndarray], bool]:
    """One episode of exactly T steps in the replay layout (D1); success is info['is_success'] after the last.

    With it the simulator state of every observation, ``state/<name>: (T+1, size)`` float64 (``her.sim_state``),
    and the env's goal, ``state/goal: (T+1, dim_g)``. ``noise`` adds Gaussian noise of that standard deviation
    to the expert's actions (a weaker expert).
    """
    from her import sim_state
    from her.demo import GOAL_KEY, STATE_PREFIX

    sim_state.track(env)  # before the reset: get_state must see inside every step of the episode
    obs, _ = env.reset(seed=seed)
    noise_rng = np.random.default_rng(seed)
    dim_o, dim_g = obs["observation"].shape[0], obs["desired_goal"].shape[0]
    ep = {
        "o": np.empty((T + 1, dim_o), np.float32),
        "ag": np.empty((T + 1, dim_g), np.float32),
        "g": np.empty((T, dim_g), np.float32),
        "u": np.empty((T, env.action_space.shape[0]), np.float32),
        "info_is_success": np.empty((T, 1), np.float32),
    }
    states, goals = [], []  # T+1 of sim_state.get_state and of the env's goal, stacked below

    def record_state():
        states.append(sim_state.get_state(env))
        goals.append(np.array(env.unwrapped.goal, dtype=np.float64))

    ep["o"][0], ep["ag"][0] = obs["observation"], obs["achieved_goal"]
    record_state()
    for t in range(T):
        # The stored action is exactly the one executed: clipped, float32.
        u = np.asarray(expert(obs), dtype=np.float32)
        if noise > 0:
            u = u + noise * noise_rng.standard_normal(u.shape).astype(np.float32)
        u = np.clip(u, -1.0, 1.0)
        ep["g"][t], ep["u"][t] = obs["desired_goal"], u
        obs, _, terminated, truncated, info = env.step(u)
        if (terminated or truncated) and t < T - 1:
            raise RuntimeError(f"{env.spec.id} ended after {t + 1} steps, before T={T}")
        ep["o"][t + 1], ep["ag"][t + 1] = obs["observation"], obs["achieved_goal"]
        ep["info_is_success"][t, 0] = info["is_success"]
        record_state()
    for name in states[0]:
        ep[STATE_PREFIX + name] = np.stack([state[name] for state in states])  # (T+1, size)
    ep[GOAL_KEY] = np.stack(goals)  # (T+1, dim_g)
    return ep, bool(ep["info_is_success"][-1, 0])


class Generated(NamedTuple):
    episodes: dict[str, np.ndarray]  # {key: (E, T_key, dim)}, float32; state/ keys (E, T+1, size) float64
    successes: int  # among the kept episodes
    attempts: int  # episodes run (more than kept with only_success)


class GenerationError(RuntimeError):
    """only_success could not collect enough successful episodes within the allowed attempts."""


def generate(env_id: str, num_episodes: int, seed: int = 0, *, only_success: bool = False,
             max_attempts: int | None = None, noise: float = 0.0) -> Generated:
    """Run the task's expert for ``num_episodes`` episodes (successful ones only, if ``only_success``)."""
    from her.envs import episode_length, make_env

    if num_episodes < 1:
        raise ValueError(f"num_episodes must be at least 1, got {num_episodes}")
    expert = expert_for(env_id)
    T = episode_length(env_id)
    max_attempts = num_episodes if not only_success else (max_attempts or 10 * num_episodes)
    env = make_env(env_id)
    try:
        kept, successes, attempts = [], 0, 0
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
    return Generated(episodes, int(episodes["info_is_success"][:, -1, 0].sum()), attempts)


def default_output(env_id: str, num_episodes: int) -> str:
    """``data_fetch_random_<N>.npz`` for PickAndPlace (the reference's name), ``data_fetch_<task>_<N>.npz`` else."""
    from her.envs import task_name

    task = task_name(env_id)
    if task == "FetchPickAndPlace":
        return f"data_fetch_random_{num_episodes}.npz"
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", task.removeprefix("Fetch")).lower()
    return f"data_fetch_{words}_{num_episodes}.npz"


# ---- command line ----

class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        self.exit(2, f"error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        description="Write scripted demonstrations for a Fetch task as an .npz of plain arrays (decision D11): "
                    "o, ag (E, T+1, dim), g, u (E, T, dim), info_is_success (E, T, 1), env_id, format, version, "
                    "and the simulator state of every observation, state/<name> (E, T+1, size).",
        epilog="Episode i starts from env.reset(seed=SeedSequence(seed, spawn_key=(i,))), so the same command "
               "writes the same file. Exit codes: 0 written, 1 --only_success gave up, 2 bad arguments.",
    )
    p.add_argument("--env", default="FetchPickAndPlace",
                   help="task: FetchPickAndPlace, FetchPush, FetchSlide, FetchReach, or a gymnasium id such as "
                        "FetchPush-v4 (default: %(default)s)")
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
                   help="std of Gaussian noise added to the expert's actions, for weaker demos (default: %(default)s)")
    p.add_argument("--uncompressed", action="store_true", help="store the arrays without deflate compression")
    return p


def _check_output(path: Path) -> str | None:
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

    try:
        env_id = resolve_env_id(args.env)
        expert_for(env_id)
    except ValueError as err:
        return fail(str(err))
    if args.num_episodes < 1:
        return fail(f"--num_episodes must be at least 1, got {args.num_episodes}")
    if not 0 <= args.noise < float("inf"):
        return fail(f"--noise must be a number >= 0, got {args.noise}")
    if args.max_attempts is not None and args.max_attempts < args.num_episodes:
        return fail(f"--max_attempts ({args.max_attempts}) must be at least --num_episodes ({args.num_episodes})")
    output = Path(args.output or default_output(env_id, args.num_episodes))
    problem = _check_output(output)
    if problem:
        return fail(problem)

    try:
        result = generate(env_id, args.num_episodes, args.seed, only_success=args.only_success,
                          max_attempts=args.max_attempts, noise=args.noise)
    except GenerationError as err:
        return fail(str(err), code=1)
    try:
        save_demos(output, result.episodes, env_id, compresslevel=None if args.uncompressed else 1)
    except OSError as err:
        return fail(f"cannot write {output}: {err.strerror or err}")

    n = args.num_episodes
    print(f"{result.successes}/{n} episodes succeeded ({100 * result.successes / n:.0f}%)")
    if args.only_success:
        print(f"the expert succeeded in {result.successes} of {result.attempts} attempts "
              f"({100 * result.successes / result.attempts:.0f}%)")
    print(f"wrote {n} episodes of {env_id} (T={result.episodes['u'].shape[1]}) to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
