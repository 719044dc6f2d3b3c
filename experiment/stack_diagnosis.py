"""The measurements behind docs/stacking.md's diagnosis, one subcommand each.

    python experiment/stack_diagnosis.py figure experiment/results/stack2_diagnosis/* -o docs/img/stack2_diagnosis.png
    python experiment/stack_diagnosis.py exploration --env FetchStack2      # the scripted expert under exploration
    python experiment/stack_diagnosis.py shift POLICY                       # the actor against the expert, own states
    python experiment/stack_diagnosis.py q_filter POLICY DEMO_FILE          # the Q-filter on the demos, by stage

``figure`` draws one curve per run folder (its name is the label) against env steps, each a 5-epoch running mean:
the test success rate, the share of test episodes ending with block 0 in place (``test/placed_0``, logged by runs
that report it), the training episodes' success rate, and the share of demo rows the Q-filter lets through.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from her import atomic
from her.fetch_experts import StackExpert
from her.logger import read_progress

PANELS = [
    ("test/success_rate", "test success"),
    ("test/placed_0", "test: block 0 in place"),
    ("train/success_rate", "training episodes' success"),
    ("demo/q_filter_pass", "Q-filter pass rate"),
]


def running_mean(values: np.ndarray, n: int = 5) -> np.ndarray:
    """Mean of each value and the up to n - 1 before it."""
    sums = np.cumsum(np.r_[0.0, values])
    counts = np.minimum(np.arange(1, len(values) + 1), n)
    return (sums[1:] - sums[np.arange(1, len(values) + 1) - counts]) / counts


def figure(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for i, folder in enumerate(map(Path, args.runs)):
        if not (folder / "progress.csv").is_file():
            print(f"warning: skipping {folder}: no progress.csv", file=sys.stderr)
            continue
        rows = read_progress(folder / "progress.csv")
        steps = np.array([r["total/env_steps"] for r in rows]) / 1e3
        for ax, (key, _) in zip(axes.flat, PANELS):
            if key in rows[0]:
                ax.plot(
                    steps, running_mean(np.array([r[key] for r in rows], dtype=float)), color=f"C{i}", label=folder.name
                )  # one colour per run in every panel
    for ax, (_, title) in zip(axes.flat, PANELS):
        ax.set(title=title, ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("env steps (thousands, all MPI processes)")
    axes[0, 0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    atomic.write_with(args.output, lambda f: fig.savefig(f, format="png", dpi=100))
    print(f"wrote {args.output}")
    return 0


def expert_rollouts(env_id: str, n: int, seed: int, act: Callable[[dict, Any], np.ndarray]) -> list[dict]:
    """``n`` episodes in which ``act(obs, expert)`` picks each action; each episode's last info."""
    from her import envs

    env = envs.make_env(env_id, seed=seed)
    T = envs.episode_length(env_id)
    finals = []
    for _ in range(n):
        obs, _ = env.reset()
        expert = StackExpert()
        for _ in range(T):
            obs, _, _, _, info = env.step(act(obs, expert))
        finals.append(info)
    env.close()
    return finals


def exploration(args: argparse.Namespace) -> int:
    """The scripted expert's success when its actions go through training's exploration (reference section 4)."""
    from her.envs import resolve_env_id
    from her.numpy_actor import explore

    env_id = resolve_env_id(args.env)
    print("noise_eps random_eps | success | blocks placed")
    for noise_eps, random_eps in [(0.0, 0.0), (0.1, 0.0), (0.2, 0.0), (0.0, 0.03), (0.0, 0.1), (0.1, 0.1), (0.2, 0.3)]:
        rng = np.random.default_rng(args.seed)

        def act(obs: dict, expert: Any, noise_eps=noise_eps, random_eps=random_eps, rng=rng) -> np.ndarray:
            u = np.clip(np.asarray(expert(obs), np.float32), -1.0, 1.0)[None]
            return explore(u, 1.0, noise_eps, random_eps, rng)[0]

        finals = expert_rollouts(env_id, args.episodes, args.seed, act)
        placed = np.mean([info["placed"] for info in finals], axis=0)
        print(
            f"{noise_eps:9} {random_eps:10} | {np.mean([i['is_success'] for i in finals]):7.2f} | "
            f"{' '.join(f'{p:.2f}' for p in placed)}",
            flush=True,
        )
    return 0


def shift(args: argparse.Namespace) -> int:
    """How far the actor's actions are from the expert's on the states the actor itself visits."""
    from her import policy as saved_policy

    policy = saved_policy.load(args.policy)
    errors: list[float] = []

    def act(obs: dict, expert: Any) -> np.ndarray:
        u = policy.act(obs)
        errors.append(float(np.abs(u - np.clip(expert(obs), -1.0, 1.0)).mean()))
        return u

    finals = expert_rollouts(policy.env_id, args.episodes, args.seed, act)
    per_episode = np.array(errors).reshape(len(finals), -1).mean(axis=1)
    success = np.array([bool(info["is_success"]) for info in finals])
    print(
        f"success {success.mean():.2f} over {len(finals)} episodes; mean |actor - expert| per action dimension on "
        f"the actor's own states: {per_episode[success].mean() if success.any() else float('nan'):.3f} in "
        f"successful episodes, {per_episode[~success].mean() if (~success).any() else float('nan'):.3f} in failed"
    )
    return 0


def q_filter(args: argparse.Namespace) -> int:
    """On the demonstrations (their own goals): how often the critic rates the demo action above the actor's,
    and how far apart the two are, by stage (the number of blocks in place, in order, before the step)."""
    from her import policy as saved_policy

    policy = saved_policy.load(args.policy)
    with np.load(args.demo_file) as demos:
        o, g, u, ag = demos["o"][:, :-1], demos["g"], demos["u"], demos["ag"][:, :-1]
    E, T = u.shape[:2]
    n = g.shape[-1] // 3
    in_place = np.linalg.norm((ag - g).reshape(E, T, n, 3), axis=-1) < 0.05
    stage = np.cumprod(in_place, axis=-1).sum(axis=-1)  # (E, T)
    obs = {"observation": o.reshape(E * T, -1), "desired_goal": g.reshape(E * T, -1)}
    q_demo = policy.q_value(obs, u.reshape(E * T, -1)).reshape(E, T)
    q_actor = policy.q_value(obs).reshape(E, T)
    gap = np.abs(policy.act(obs) - u.reshape(E * T, -1)).mean(axis=-1).reshape(E, T)
    passed = q_demo > q_actor
    print(f"all steps: pass {passed.mean():.2f}, |actor - demo| {gap.mean():.3f}")
    for k in range(n + 1):
        m = stage == k
        print(
            f"{k} block(s) in place ({m.mean():.2f} of the steps): pass {passed[m].mean():.2f}, "
            f"|actor - demo| {gap[m].mean():.3f}, Q(demo action) {q_demo[m].mean():.1f}, "
            f"Q(actor's) {q_actor[m].mean():.1f}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("figure", help="the diagnosis figure of run folders")
    p.add_argument("runs", nargs="+", help="log folders with progress.csv")
    p.add_argument("-o", "--output", required=True, help="PNG file")
    p = sub.add_parser("exploration", help="the scripted expert's success under training's exploration")
    p.add_argument("--env", default="FetchStack2")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("shift", help="the actor against the expert on the actor's own states")
    p.add_argument("policy", help="a policy .npz or a log folder")
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--seed", type=int, default=11)
    p = sub.add_parser("q_filter", help="the Q-filter on the demonstrations, by stage")
    p.add_argument("policy", help="a policy .npz or a log folder")
    p.add_argument("demo_file")
    args = parser.parse_args(argv)
    return {"figure": figure, "exploration": exploration, "shift": shift, "q_filter": q_filter}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
