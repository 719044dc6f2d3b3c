"""Measure every training stage against its floor on this machine, print one table, write it as JSON.

    python bench/bench.py                    # FetchPush, reference configuration
    python bench/bench.py --quick            # fewer repetitions, for a smoke check

Stages and floors:
  rollouts  RolloutWorker env steps/s (policy, noise, storage and normaliser update included)
            vs plain env.step on the same envs with precomputed random actions, and vs MuJoCo physics alone
  updates   update steps/s (sampling, relabelling, both losses, both Adam steps)
            vs the same networks' forward+backward+Adam on a fixed in-memory batch, compiled with XLA
  epoch     seconds per epoch of the reference configuration vs the sum of its stages' floors
  memory    peak RSS growth of a run with a full 1e6-transition buffer vs the bytes of the buffer's arrays
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best_rate(fn, count: int, repeats: int) -> float:
    """Highest of ``repeats`` measurements of count / seconds (the least disturbed by other load)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(count / (time.perf_counter() - start))
    return max(rates)


def make_trainer(env: str, tmp: str, **overrides):
    from experiment.config import build_config
    from her import mpi
    from her.train import Trainer, configure_threads

    configure_threads(1)
    config = build_config({"env": env, "log_path": tmp, **overrides})
    return Trainer(config, mpi.SingleProcess())


def bench_rollouts(trainer, episodes: int, repeats: int) -> dict:
    import mujoco

    T = trainer.config.T
    n_envs = len(trainer.envs)
    calls = max(1, episodes // n_envs)
    steps = calls * n_envs * T

    def worker():
        for _ in range(calls):
            trainer.store(trainer.worker.generate_rollouts())

    trainer.store(trainer.worker.generate_rollouts())  # trace the action function first
    worker_rate = best_rate(worker, steps, repeats)

    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(calls, T, n_envs, trainer.dims["u"])).astype(np.float32)

    def plain():
        for c in range(calls):
            for env in trainer.envs:
                env.reset()
            for t in range(T):
                for i, env in enumerate(trainer.envs):
                    env.step(actions[c, t, i])

    plain_rate = best_rate(plain, steps, repeats)

    raw = trainer.envs[0].unwrapped
    model, data, n_substeps = raw.model, raw.data, raw.n_substeps

    def physics():
        for _ in range(steps):
            mujoco.mj_step(model, data, nstep=n_substeps)

    physics_rate = best_rate(physics, steps, repeats)
    return {"worker_steps_per_s": worker_rate, "env_step_steps_per_s": plain_rate,
            "physics_steps_per_s": physics_rate}


def bench_updates(trainer, n_updates: int, repeats: int) -> dict:
    import tensorflow as tf

    policy = trainer.policy
    while trainer.buffer.current_size < 200:
        trainer.store(trainer.worker.generate_rollouts())

    def full():
        for _ in range(n_updates):
            policy.train(trainer.sample_batch())

    full()
    full_rate = best_rate(full, n_updates, repeats)

    batch = [tf.constant(x) for x in trainer.sample_batch()]
    floor_step = tf.function(policy._train_step_graph, jit_compile=True)

    def floor():
        for _ in range(n_updates):
            out = floor_step(*batch)
        out["critic_loss"].numpy()

    floor()
    floor_rate = best_rate(floor, n_updates, repeats)
    return {"updates_per_s": full_rate, "xla_floor_updates_per_s": floor_rate}


def bench_epoch(trainer, repeats: int) -> dict:
    seconds = []
    for epoch in range(repeats):
        start = time.perf_counter()
        row = trainer.run_epoch(epoch)
        seconds.append(time.perf_counter() - start)
    return {"epoch_s": min(seconds), "epoch_split": {k: row[k] for k in ("time/rollout", "time/update", "time/eval")}}


MEMORY_CHILD = """
import sys
sys.path.insert(0, {root!r})
from bench.bench import make_trainer, status_bytes
trainer = make_trainer({env!r}, {tmp!r}, buffer_size={size})
episode = trainer.worker.generate_rollouts()
trainer.store(episode)
for _ in range(20):
    trainer.policy.train(trainer.sample_batch())
before = status_bytes("VmRSS")  # everything but the buffer's pages, which numpy has not touched yet
while not trainer.buffer.full:
    trainer.store(episode)
for _ in range(20):
    trainer.policy.train(trainer.sample_batch())
print(before, status_bytes("VmHWM"), trainer.buffer.nbytes)
"""


def status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS: now, VmHWM: peak), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def bench_memory(env: str, tmp: str) -> dict:
    """Peak RSS growth while a 1e6-transition buffer fills, against the bytes of the buffer's arrays."""
    root = str(Path(__file__).resolve().parents[1])
    code = MEMORY_CHILD.format(root=root, env=env, tmp=tmp, size=1_000_000)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, peak, nbytes = (int(x) for x in out.stdout.split()[-3:])
    return {"rss_before_fill": before, "peak_rss": peak, "buffer_bytes": nbytes, "rss_growth": peak - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="FetchPush")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--skip", nargs="*", default=[], choices=["rollouts", "updates", "epoch", "memory"])
    parser.add_argument("--out", default=None, help="JSON file (default bench/results/<time>.json)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tempfile

    repeats = 2 if args.quick else 3
    results: dict = {"env": args.env, "time": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(args.env, tmp)
        if "rollouts" not in args.skip:
            results["rollouts"] = bench_rollouts(trainer, episodes=20 if args.quick else 40, repeats=repeats)
        if "updates" not in args.skip:
            results["updates"] = bench_updates(trainer, n_updates=100 if args.quick else 400, repeats=repeats)
        if "epoch" not in args.skip:
            results["epoch"] = bench_epoch(trainer, repeats=1 if args.quick else 2)
        if "memory" not in args.skip:
            results["memory"] = bench_memory(args.env, tmp)
        config = trainer.config

    rows = []
    r, u, e, m = (results.get(k) for k in ("rollouts", "updates", "epoch", "memory"))
    if r:
        rows.append(("rollouts: worker env steps/s", r["worker_steps_per_s"], "plain env.step",
                     r["env_step_steps_per_s"]))
        rows.append(("rollouts: plain env.step steps/s", r["env_step_steps_per_s"], "MuJoCo physics alone",
                     r["physics_steps_per_s"]))
    if u:
        rows.append(("updates: full update steps/s", u["updates_per_s"], "XLA fwd+bwd+Adam, fixed batch",
                     u["xla_floor_updates_per_s"]))
    if e and r and u:
        train_steps = config.n_cycles * config.rollout_batch_size * config.T
        eval_steps = config.n_test_rollouts * config.rollout_batch_size * config.T
        n_updates = config.n_cycles * config.n_batches
        floor_s = (train_steps + eval_steps) / r["env_step_steps_per_s"] + n_updates / u["xla_floor_updates_per_s"]
        results["epoch"]["floor_s"] = floor_s
        # seconds: lower is better, so the ratio is floor / measured like the others
        rows.append(("epoch: seconds (lower is better)", e["epoch_s"], "sum of stage floors", floor_s))
    if m:
        rows.append(("memory: RSS growth, full buffer (MB)", m["rss_growth"] / 1e6, "buffer arrays (MB)",
                     m["buffer_bytes"] / 1e6))

    print(f"\nbench on {args.env}, {os.cpu_count()} CPUs, batch {config.batch_size}, {config.rollout_batch_size} envs\n")
    print(f"{'stage':<40} {'measured':>10}   {'floor':<32} {'floor value':>11}   {'ratio':>6}")
    for name, value, floor_name, floor_value in rows:
        if name.startswith(("epoch", "memory")):
            ratio = value / floor_value  # how many times the floor it costs
        else:
            ratio = value / floor_value  # fraction of the floor's throughput
        print(f"{name:<40} {value:>10.1f}   {floor_name:<32} {floor_value:>11.1f}   {ratio:>6.2f}")
    results["table"] = [dict(zip(("stage", "measured", "floor", "floor_value"), row)) for row in rows]

    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
