"""A policy's mean return as rl-baselines3-zoo's benchmark measures it, beside this project's success rate.

    python experiment/zoo_return.py experiment/results/panda_stack_demos/policy.npz --episodes 100

The zoo's table (benchmark.md, ``python -m rl_zoo3.benchmark``) reports the mean episode reward of its trained
agents with the deterministic policy, on envs whose episodes end at the first success (panda-gym's
``terminated``): a return of -k means k steps without success before it, -T an episode that never succeeded.
This project reports the success rate after the T-th step of episodes that always run T steps. Both come from the
same played episodes here: the return up to the first success (zoo), and success after the last step (here).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

CUBE = 0.04  # panda-gym's cube edge


def play(path: str, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(returns as the zoo counts them, success after the T-th step, standing), one per episode. Standing, as
    FetchStack's info gives it: success with the gripper clear, every cube at least a cube's edge from the end
    effector (a tower that stands on its own; PandaStack's cubes are observed at 7:10 and 19:22)."""
    import her.policy
    from her.envs import episode_length, make_env, resolve_env_id

    policy = her.policy.load(path)
    env_id = resolve_env_id(policy.env_id)
    env, T = make_env(env_id, seed=seed), episode_length(env_id)
    returns, final, standing = np.zeros(episodes), np.zeros(episodes), np.zeros(episodes)
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done_at = None
        for t in range(T):
            obs, reward, terminated, _, info = env.step(policy.act(obs))
            if done_at is None:
                returns[i] += reward
                if terminated:
                    done_at = t
        final[i] = float(info["is_success"])
        o = obs["observation"]
        if o.shape[0] < 10:  # PandaReach: no cube, nothing to stand
            standing[i] = np.nan
            continue
        cubes = [o[7:10]] + ([o[19:22]] if o.shape[0] >= 31 else [])
        standing[i] = final[i] * float(all(np.linalg.norm(c - o[0:3]) >= CUBE for c in cubes))
    env.close()
    return returns, final, standing


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("policy", help="a policy .npz or a log folder")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=1000, help="episode i resets with seed + i")
    args = p.parse_args(argv)
    returns, final, standing = play(args.policy, args.episodes, args.seed)
    print(
        f"{args.episodes} episodes: zoo-style mean return {returns.mean():.2f} +- {returns.std():.2f}; "
        f"success after the last step {final.mean():.2f}; standing (success, gripper clear) "
        + ("n/a (no cube)" if np.isnan(standing).all() else f"{standing.mean():.2f}")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
