"""HandReach-v3's goals by kind: what a policy solves, and how close the hand can get to each goal at all.

    python experiment/hand_reach_goals.py evaluate experiment/results/hand_reach_low_noise/policy.npz --episodes 200
    python experiment/hand_reach_goals.py reach --goals 20          # the closest pose the joints allow, per goal

A HandReach goal asks the thumb and one other finger (first, middle, ring or little, chosen uniformly) to meet
above the palm while the other three fingertips stay where they start; one goal in ten asks every fingertip back
to its start. Success is the 15-number distance between fingertips and goal below 1 cm. ``evaluate`` splits a
policy's success by that kind. ``reach`` asks, for each goal, how near any joint configuration inside the
joints' ranges can bring the five fingertips (Levenberg-Marquardt from the start pose and from random ones; the
J1/J2 couplings, the actuators and contacts are ignored, so the hand it moves is freer than the real one): a goal
none of those descents brings under 1 cm is out of a policy's reach unless a pose exists that all of them missed.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from typing import Any

import numpy as np

from her import envs

ENV_ID = "HandReach-v3"
KINDS = ("first", "middle", "ring", "little", "all back")  # the finger that meets the thumb
THRESHOLD = 0.01  # metres: gymnasium-robotics' distance_threshold for HandReach


def goal_kind(initial: np.ndarray, goal: np.ndarray) -> str:
    """Which finger a goal moves to the thumb, from the fingertips' start (15,) and the goal (15,)."""
    moved = np.linalg.norm(goal.reshape(5, 3) - initial.reshape(5, 3), axis=1)[:4]  # the thumb is the fifth tip
    return KINDS[int(np.argmax(moved))] if moved.max() > 1e-9 else KINDS[4]


def evaluate(policy_path: str, episodes: int, seed: int) -> dict[str, list[tuple[float, float]]]:
    """Deterministic episodes of a saved policy; the success and final fingertip distance of each, by goal kind."""
    import her.policy

    try:
        policy = her.policy.load(policy_path)
    except her.policy.PolicyFileError as e:
        raise SystemExit(f"error: {e}") from None
    if policy.env_id != ENV_ID:
        raise SystemExit(f"error: {policy_path} is a policy for {policy.env_id}, not {ENV_ID}")
    env: Any = envs.make_env(ENV_ID, seed=seed)  # a HandReach env, with its initial_goal
    initial = env.unwrapped.initial_goal
    results: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for _ in range(episodes):
        obs, _ = env.reset()
        kind = goal_kind(initial, obs["desired_goal"])
        for _ in range(envs.episode_length(ENV_ID)):
            obs, _, _, _, info = env.step(policy.act(obs))
        distance = float(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]))
        results[kind].append((float(info["is_success"]), distance))
    return results


class HandKinematics:
    """The fingertips of HandReach's hand as a function of its joint angles, with their Jacobian."""

    def __init__(self, env: Any):
        import mujoco
        from gymnasium_robotics.envs.shadow_dexterous_hand.reach import FINGERTIP_SITE_NAMES

        self.mujoco = mujoco
        self.model, self.data = env.unwrapped.model, env.unwrapped.data
        self.sites = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, n) for n in FINGERTIP_SITE_NAMES]
        joints = [
            j
            for j in range(self.model.njnt)
            if mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_JOINT, j).startswith("robot0:")
        ]
        self.qpos = self.model.jnt_qposadr[joints]
        self.dofs = self.model.jnt_dofadr[joints]
        self.low, self.high = self.model.jnt_range[joints].T

    def tips(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fingertip positions (15,) and their Jacobian (15, joints) at joint angles q."""
        mj, m, d = self.mujoco, self.model, self.data
        d.qpos[self.qpos] = q
        mj.mj_kinematics(m, d)
        mj.mj_comPos(m, d)
        jac = np.zeros((3, m.nv))
        rows = []
        for site in self.sites:
            mj.mj_jacSite(m, d, jac, None, site)
            rows.append(jac[:, self.dofs].copy())
        return d.site_xpos[self.sites].ravel().copy(), np.concatenate(rows)

    def closest(self, goal: np.ndarray, rng: np.random.Generator, starts: int = 10, iterations: int = 200) -> float:
        """The smallest fingertip distance to ``goal`` found by ``starts`` Levenberg-Marquardt descents, from the
        current pose and then from random ones, each step clipped to the joints' ranges."""
        best = np.inf
        for start in range(starts):
            q = self.data.qpos[self.qpos].copy() if start == 0 else rng.uniform(self.low, self.high)
            x, jac = self.tips(q)
            error, damping = np.linalg.norm(goal - x), 1e-2
            for _ in range(iterations):
                descent = jac.T @ (goal - x)
                # Joints at a limit that the descent pushes further out stay put; the others share the step.
                free = ~(((q <= self.low) & (descent < 0)) | ((q >= self.high) & (descent > 0)))
                j = jac[:, free]
                step = np.zeros_like(q)
                step[free] = np.linalg.solve(j.T @ j + damping * np.eye(free.sum()), descent[free])
                trial = np.clip(q + step, self.low, self.high)
                x_trial, jac_trial = self.tips(trial)
                if np.linalg.norm(goal - x_trial) < error:
                    q, x, jac, error = trial, x_trial, jac_trial, np.linalg.norm(goal - x_trial)
                    damping = max(damping / 3, 1e-8)
                else:
                    damping *= 4
            best = min(best, float(error))
        return best


def reach(goals: int, seed: int, starts: int) -> dict[str, list[float]]:
    """The closest fit found for each of ``goals`` goals, by kind."""
    env: Any = envs.make_env(ENV_ID, seed=seed)  # a HandReach env, with its initial_goal
    hand = HandKinematics(env)
    rng = np.random.default_rng(seed)
    results: dict[str, list[float]] = defaultdict(list)
    for _ in range(goals):
        obs, _ = env.reset()
        results[goal_kind(env.unwrapped.initial_goal, obs["desired_goal"])].append(
            hand.closest(obs["desired_goal"], rng, starts)
        )  # from the reset's pose first; the next reset restores it
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="a policy's success by goal kind")
    ev.add_argument("policy", help="a HandReach-v3 policy file or log folder")
    ev.add_argument("--episodes", type=int, default=200)
    ev.add_argument("--seed", type=int, default=1000)
    fit = sub.add_parser("reach", help="the closest fit the joints allow, by goal kind")
    fit.add_argument("--goals", type=int, default=20)
    fit.add_argument("--starts", type=int, default=10, help="random starting poses per goal")
    fit.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args(argv)
    for name in ("episodes", "goals", "starts"):
        if getattr(args, name, 1) < 1:
            parser.error(f"--{name} must be at least 1")

    if args.command == "evaluate":
        episodes = evaluate(args.policy, args.episodes, args.seed)
        success = [s for found in episodes.values() for s, _ in found]
        print(f"success {np.mean(success):.3f} over {len(success)} episodes of {ENV_ID}")
        for kind in KINDS:
            if episodes[kind]:
                s, d = np.array(episodes[kind]).T
                won = f", of the successes {np.median(d[s > 0]) * 100:.2f}" if s.any() else ""
                print(
                    f"  {kind:8s} {len(s):4d} episodes, success {s.mean():.2f}, final distance (cm): median "
                    f"{np.median(d) * 100:.2f}{won}"
                )
    else:
        results = reach(args.goals, args.seed, args.starts)
        for kind in KINDS:
            if results[kind]:
                fits = np.array(results[kind]) * 100
                print(
                    f"  {kind:8s} {len(fits):3d} goals, closest fit (cm): median {np.median(fits):.2f}, "
                    f"max {fits.max():.2f}, under 1 cm: {np.mean(fits < THRESHOLD * 100):.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
