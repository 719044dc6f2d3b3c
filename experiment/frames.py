"""Frames of a policy's episodes as one PNG: a row per episode, a picture per chosen step.

    python experiment/frames.py experiment/results/stack3/policy.npz --pick success --steps 0 50 100 150 -o f.png
    python experiment/frames.py runs/x --pick failure --episodes 20 --rows 4 --steps 100 -o failures.png

Plays deterministic episodes (as ``--play``) from ``--seed``, keeps those that ``--pick`` asks for (``success``,
``failure`` or ``all``), and renders the chosen steps offscreen (``MUJOCO_GL`` as for ``--play --video``). Each
kept episode's last-step ``info`` numbers (FetchStack's per-block ``placed`` and ``clear``) are printed, so a
picture of a failure comes with what failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from her import atomic, envs, panda
from her import policy as saved_policy
from her.rollout import final_info_numbers
from her.video import PlayError, choose_offscreen_gl, isolate_mesa_llvm


def episode_frames(policy: saved_policy.Policy, env, steps: list[int], T: int) -> tuple[list[np.ndarray], dict]:
    """Play one episode; the frames at ``steps`` (0: after the reset) and the last step's info."""
    obs, _ = env.reset()
    frames = [env.render()] if 0 in steps else []
    info: dict = {}
    for t in range(1, T + 1):
        obs, _, _, _, info = env.step(policy.act(obs))
        if t in steps:
            frames.append(env.render())
    return frames, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("policy", help="a policy .npz or a log folder (its policy_best.npz)")
    parser.add_argument("--steps", type=int, nargs="+", required=True, help="steps to show (0: after the reset)")
    parser.add_argument("--pick", choices=("success", "failure", "all"), default="all")
    parser.add_argument("--rows", type=int, default=1, help="episodes to show")
    parser.add_argument("--episodes", type=int, default=20, help="episodes to play at most while looking for rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=360, help="pixels per picture (square)")
    parser.add_argument(
        "--distance", type=float, default=1.1, help="camera distance in metres (Fetch's own view: 2.5, the whole robot)"
    )
    parser.add_argument("-o", "--output", required=True, help="PNG file")
    args = parser.parse_args(argv)
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        parser.error(f"--output {output}: give a file name ending in .png")

    try:
        policy = saved_policy.load(args.policy)
        env_id = envs.resolve_env_id(policy.env_id)
        T = envs.episode_length(env_id)
        bad = [s for s in args.steps if not 0 <= s <= T]
        if bad:
            raise PlayError(f"--steps {bad} are outside the episode's 0..{T}")
        env_kwargs = json.loads(policy.config.get("env_kwargs") or "{}")
        if panda.is_panda(env_id):  # PyBullet renders in software; its camera is set by the env's kwargs
            env_kwargs.update(render_width=args.size, render_height=args.size, render_distance=args.distance * 0.6)
        else:
            choose_offscreen_gl()
            isolate_mesa_llvm(os.environ.get("MUJOCO_GL"))
        env = envs.make_env(env_id, seed=args.seed, render_mode="rgb_array", fast_obs=False, env_kwargs=env_kwargs)
        raw: Any = env.unwrapped  # a MuJoCo env: gym.Env does not declare its renderer
        renderer = getattr(raw, "mujoco_renderer", None)  # set before the first render, which makes its camera
        if renderer is not None:
            renderer.width = renderer.height = args.size
            if renderer.default_cam_config is not None:
                renderer.default_cam_config = {
                    **renderer.default_cam_config,
                    "distance": args.distance,
                    "elevation": -30.0,
                }
    except (ValueError, saved_policy.PolicyFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    rows: list[list[np.ndarray]] = []
    labels: list[str] = []
    steps = sorted(set(args.steps))
    for episode in range(args.episodes):
        frames, info = episode_frames(policy, env, steps, T)
        success = bool(info.get("is_success"))
        extras = {k: v.ravel().tolist() for k, v in final_info_numbers([info]).items()}
        print(f"episode {episode}: success {success:d} {extras}", flush=True)
        if args.pick == "all" or (args.pick == "success") == success:
            rows.append(frames)
            labels.append(f"episode {episode} ({'success' if success else 'failure'})")
        if len(rows) == args.rows:
            break
    env.close()
    if not rows:
        print(f"error: no {args.pick} among {args.episodes} episodes: play more with --episodes", file=sys.stderr)
        return 1

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), len(steps), figsize=(2.4 * len(steps), 2.6 * len(rows)), squeeze=False)
    for r, (frames, label) in enumerate(zip(rows, labels)):
        for c, (frame, step) in enumerate(zip(frames, steps)):
            ax = axes[r, c]
            ax.imshow(frame)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"step {step}", fontsize=9)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.tight_layout()
    atomic.write_with(output, lambda f: fig.savefig(f, format="png", dpi=100))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
