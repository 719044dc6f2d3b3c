"""Train from Python, then act with the trained policy (FetchReach, seed 1: the callback stops it after 4 of its 10
epochs, at 1.00 success over 10 played episodes, in about a minute on 2 busy cores).

    python examples/learn.py
    mpirun -np 2 python examples/learn.py       # the same script on two MPI processes, as the command line runs

``her.learn`` takes the task and every configuration key as keywords, checks them as the command line does and
returns the finished run; the callback here stops it early on a rule of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import her
from her import mpi
from her.envs import make_env


def held_0_9_twice(row: Mapping[str, float], history: list[float]) -> bool:
    """Stop once the test success rate has been at least 0.9 in two epochs in a row."""
    history.append(row["test/success_rate"])
    return len(history) >= 2 and min(history[-2:]) >= 0.9


def main(episodes: int = 10, **keys: Any) -> float:
    """Train FetchReach (10 epochs at most, ``keys`` override any key), then play ``episodes`` deterministic
    episodes with the returned policy; returns their success rate."""
    history: list[float] = []
    run = her.learn(
        **{"env": "FetchReach", "n_epochs": 10, "seed": 1, **keys}, callback=lambda row: held_0_9_twice(row, history)
    )
    policy = run.policy  # numpy only: acting needs no TensorFlow
    env = make_env(policy.env_id, seed=0)
    successes = []
    for _ in range(episodes):
        obs, info = env.reset()
        terminated = truncated = False
        while not (terminated or truncated):
            obs, reward, terminated, truncated, info = env.step(policy.act(obs))
        successes.append(float(info["is_success"]))
    rate = sum(successes) / len(successes)
    if mpi.world().rank == 0:  # under mpirun every rank has the run; one is enough to speak
        print(f"{run}: {len(run.rows)} epochs, then {rate:.2f} success over {episodes} episodes of {policy}")
    return rate


if __name__ == "__main__":
    main()
