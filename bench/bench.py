"""Measure every training stage against its floor on this machine, print one table, write it as JSON.

    python bench/bench.py                    # FetchPush, reference configuration
    python bench/bench.py --quick            # fewer repetitions, for a smoke check
    python bench/bench.py --set layer_norm=1 hidden=512   # another configuration (any keys, a recipe too)

Stages and floors:
  rollouts  RolloutWorker env steps/s (policy, noise, storage and normaliser update included)
            vs plain env.step on the same envs with precomputed random actions, and vs MuJoCo physics alone
  updates   update steps/s (sampling, relabelling, both losses, both Adam steps), n_batches steps per call
            vs the same networks' forward+backward+Adam on a fixed in-memory batch, compiled with XLA, as many
            steps per call; also shown: the same without XLA, and one step per call
  epoch     seconds per epoch of the reference configuration vs the sum of its stages' floors (plain env.step
            for its env steps, then the XLA fixed batch for its updates, as one block), in turn with the epochs

Every stage is measured in turn with its floor and the best of several repetitions is kept: the speed of this
shared machine drifts by 20-30% within minutes, which would otherwise show up in the ratios.
  memory    peak RSS of a run with a full 1e6-transition buffer, minus that of the same run with a buffer of
            one rollout batch, vs the bytes of the buffer's arrays
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


def best_rates(fns: dict, count: int, repeats: int) -> dict[str, float]:
    """For each function the highest of ``repeats`` measurements of count / seconds (the least disturbed by
    other load), the functions measured in turn so that a stage and its floor share the same conditions."""
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            rates[name].append(count / (time.perf_counter() - start))
    return {name: max(values) for name, values in rates.items()}


def make_trainer(env: str, tmp: str, comm=None, **overrides):
    """A Trainer of the reference configuration on ``env`` (one process unless ``comm`` is given)."""
    from her import mpi
    from her.config import build_config
    from her.parts import configure_threads
    from her.train import Trainer

    comm = comm if comm is not None else mpi.SingleProcess()
    # TensorFlow's threads are fixed once, before the Trainer's first op: a tf_threads override takes effect here.
    configure_threads(comm.local_size, int(overrides.get("tf_threads", 0)))
    config = build_config({"env": env, "log_path": tmp, **overrides}, mpi_size=comm.size)
    return Trainer(config, comm)


def plain_env_steps(trainer, episodes_per_env: int):
    """A function stepping the trainer's envs with precomputed random actions: ``episodes_per_env`` episodes each."""
    T, n_envs = trainer.config.T, len(trainer.parts.envs)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(episodes_per_env, T, n_envs, trainer.parts.dims["u"])).astype(np.float32)

    def plain():
        for c in range(episodes_per_env):
            for env in trainer.parts.envs:
                env.reset()
            for t in range(T):
                for i, env in enumerate(trainer.parts.envs):
                    env.step(actions[c, t, i])

    return plain


def fixed_batch_steps(graph_fn, args: list, calls: int, jit_compile: bool):
    """A function running ``graph_fn`` (update steps) ``calls`` times on a batch already in memory: no sampling,
    no conversion, one read-back at the end."""
    import tensorflow as tf

    step = tf.function(graph_fn, jit_compile=jit_compile)

    def run():
        for _ in range(calls):
            out = step(*args)
        out["critic_loss"].numpy()

    run()  # trace and compile
    return run


def fixed_batches(trainer) -> tuple[list, list]:
    """One sampled batch as tensors, and the same batch repeated for a cycle's n_batches steps."""
    import tensorflow as tf

    one = [tf.constant(x[0]) for x in trainer.sample_batches(1)]
    return one, [tf.constant(np.repeat(x[None], trainer.config.n_batches, axis=0)) for x in one]


def bench_rollouts(trainer, episodes: int, repeats: int) -> dict:
    import mujoco

    n_envs = len(trainer.parts.envs)
    calls = max(1, episodes // n_envs)
    steps = calls * n_envs * trainer.config.T

    def worker():
        for _ in range(calls):
            trainer.store(trainer.parts.worker.generate_rollouts())

    trainer.store(trainer.parts.worker.generate_rollouts())  # the first actions copy the weights

    raw = trainer.parts.envs[0].unwrapped
    model, data, n_substeps = raw.model, raw.data, raw.n_substeps

    def physics():
        for _ in range(steps):
            mujoco.mj_step(model, data, nstep=n_substeps)

    rates = best_rates({"worker": worker, "plain": plain_env_steps(trainer, calls), "physics": physics}, steps, repeats)
    return {
        "worker_steps_per_s": rates["worker"],
        "env_step_steps_per_s": rates["plain"],
        "physics_steps_per_s": rates["physics"],
    }


def bench_updates(trainer, n_updates: int, repeats: int) -> dict:
    learner = trainer.parts.learner
    k = trainer.config.n_batches  # steps per call, as in training: one call per cycle
    calls = max(1, n_updates // k)
    while trainer.parts.buffer.current_size < 200:
        trainer.store(trainer.parts.worker.generate_rollouts())

    def full():
        for _ in range(calls):
            learner.train_steps(trainer.sample_batches(k))

    full()
    one, stacked = fixed_batches(trainer)
    fns = {
        "updates_per_s": full,
        "xla_floor_updates_per_s": fixed_batch_steps(learner._train_steps_graph, stacked, calls, True),
        "graph_updates_per_s": fixed_batch_steps(learner._train_steps_graph, stacked, calls, False),
        "one_step_per_call_updates_per_s": fixed_batch_steps(learner._train_step_graph, one, calls * k, False),
    }
    return best_rates(fns, calls * k, repeats)


def bench_epoch(trainer, repeats: int) -> dict:
    """``repeats`` whole epochs, each paired with a run of its floor right before or after it (alternately).

    The floor is plain env.step for the epoch's training and evaluation steps followed by the XLA fixed-batch
    updates for its update steps, timed as one block about as long as an epoch. The verdict is the median of
    the pairs' ratios: a slow spell of this shared machine that covers a pair slows both of its halves, so it
    cancels in their ratio, while the fastest epoch and the fastest floor may come from different spells.
    """
    c = trainer.config
    if trainer.parts.buffer.current_size == 0:  # run alone (--skip rollouts updates): the floor needs a batch
        trainer.store(trainer.parts.worker.generate_rollouts())
    plain = plain_env_steps(trainer, c.n_cycles + c.n_test_rollouts)
    _, stacked = fixed_batches(trainer)
    xla = fixed_batch_steps(trainer.parts.learner._train_steps_graph, stacked, c.n_cycles, True)

    def epoch(i: int) -> tuple[float, dict]:
        start = time.perf_counter()
        row = trainer.run_epoch(i)
        return time.perf_counter() - start, {k: row[k] for k in ("time/rollout", "time/update", "time/eval")}

    def floor() -> tuple[float, float]:
        start = time.perf_counter()
        plain()
        env_s = time.perf_counter() - start
        xla()
        return time.perf_counter() - start, env_s

    pairs = []
    for i in range(repeats):
        if i % 2:
            f = floor()
            e = epoch(i)
        else:
            e = epoch(i)
            f = floor()
        pairs.append((e, f))
    ratios = [e[0] / f[0] for e, f in pairs]
    median = int(np.argsort(ratios)[len(ratios) // 2])  # the upper one of an even count
    (epoch_s, split), (floor_s, floor_env_s) = pairs[median]
    return {
        "ratio": ratios[median],
        "all_ratios": ratios,
        "epoch_s": epoch_s,
        "epoch_split": split,
        "floor_s": floor_s,
        "floor_env_s": floor_env_s,
        "floor_update_s": floor_s - floor_env_s,
        "all_epoch_s": [e[0] for e, _ in pairs],
        "all_floor_s": [f[0] for _, f in pairs],
    }


MEMORY_CHILD = """
import sys
sys.path.insert(0, {root!r})
from bench.bench import make_trainer, status_bytes
from pathlib import Path
from her import checkpoints
trainer = make_trainer({env!r}, {tmp!r}, buffer_size={size})
episode = trainer.parts.worker.generate_rollouts()
while not trainer.parts.buffer.full:  # the same episode over and over: every page of the arrays is written
    trainer.store(episode)
trainer.parts.learner.train_steps(trainer.sample_batches(20))
# as a run does for --resume
checkpoints.save_buffer(Path({tmp!r}) / "buffer.npz", trainer.parts.buffer.state_dict(), 0)
print(status_bytes("VmHWM"), trainer.parts.buffer.nbytes)
"""


def status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS: now, VmHWM: peak), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory(env: str, tmp: str, buffer_size: int) -> tuple[int, int]:
    """Peak RSS of a process that fills a buffer of ``buffer_size`` transitions, trains and saves it; and its bytes."""
    root = str(Path(__file__).resolve().parents[1])
    code = MEMORY_CHILD.format(root=root, env=env, tmp=tmp, size=buffer_size)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the memory child failed:\n{out.stderr[-3000:]}")
    peak, nbytes = (int(x) for x in out.stdout.split()[-2:])
    return peak, nbytes


def bench_memory(env: str, tmp: str, episode_batch: int) -> dict:
    """Peak RSS with a full 1e6-transition buffer minus that of the same run with a buffer of one rollout batch.

    Both processes run the same code (fill, update steps, the compressed buffer save of --resume), so the
    difference is what the buffer costs at its peak, copies included, against the bytes of its arrays.
    """
    full_peak, full_bytes = peak_memory(env, tmp, 1_000_000)
    small_peak, small_bytes = peak_memory(env, tmp, episode_batch)
    return {
        "peak_rss_full": full_peak,
        "peak_rss_one_batch": small_peak,
        "buffer_bytes": full_bytes - small_bytes,
        "rss_growth": full_peak - small_peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="FetchPush")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--skip", nargs="*", default=[], choices=["rollouts", "updates", "epoch", "memory"])
    parser.add_argument("--out", default=None, help="JSON file (default bench/results/<time>.json)")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="configuration keys to change from the reference's, e.g. layer_norm=1 batch_size=2000",
    )
    args = parser.parse_args()
    overrides = dict(item.partition("=")[::2] for item in args.set)
    if not all(key and value for key, value in overrides.items()) or len(overrides) != len(args.set):
        parser.error(f"--set takes KEY=VALUE pairs with distinct keys, got {' '.join(args.set)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tempfile

    repeats = 3 if args.quick else 5
    results: dict = {
        "env": args.env,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
        "set": overrides,
    }
    with tempfile.TemporaryDirectory() as tmp:
        from her.config import ConfigError

        try:
            trainer = make_trainer(args.env, tmp, **overrides)
        except ConfigError as error:
            parser.error(str(error))
        if "rollouts" not in args.skip:
            results["rollouts"] = bench_rollouts(trainer, episodes=20 if args.quick else 40, repeats=repeats)
        if "updates" not in args.skip:
            results["updates"] = bench_updates(trainer, n_updates=100 if args.quick else 400, repeats=repeats)
        if "epoch" not in args.skip:
            results["epoch"] = bench_epoch(trainer, repeats=1 if args.quick else 5)
        if "memory" not in args.skip:
            results["memory"] = bench_memory(args.env, tmp, trainer.config.T * trainer.config.rollout_batch_size)
        config = trainer.config

    # (stage, measured, floor, floor value, target for measured / floor value: (">=" or "<=", bound) or None)
    rows: list[tuple[str, float, str, float, tuple[str, float] | None]] = []
    r, u, e, m = (results.get(k) for k in ("rollouts", "updates", "epoch", "memory"))
    if r:
        rows.append(
            (
                "rollouts: worker env steps/s",
                r["worker_steps_per_s"],
                "plain env.step",
                r["env_step_steps_per_s"],
                (">=", 0.9),
            )
        )
        rows.append(
            (
                "rollouts: plain env.step steps/s",
                r["env_step_steps_per_s"],
                "MuJoCo physics alone",
                r["physics_steps_per_s"],
                None,
            )
        )
    if u:
        rows.append(
            (
                "updates: full update steps/s",
                u["updates_per_s"],
                "XLA fwd+bwd+Adam, fixed batch",
                u["xla_floor_updates_per_s"],
                (">=", 0.8),
            )
        )
        rows.append(
            (
                "updates: fixed batch without XLA",
                u["graph_updates_per_s"],
                "XLA fwd+bwd+Adam, fixed batch",
                u["xla_floor_updates_per_s"],
                None,
            )
        )
        rows.append(
            (
                "updates: ... one step per call",
                u["one_step_per_call_updates_per_s"],
                "XLA fwd+bwd+Adam, fixed batch",
                u["xla_floor_updates_per_s"],
                None,
            )
        )
    if e:
        # The median pair: its ratio is the verdict's; then where that epoch spent its time, against each floor.
        split = e["epoch_split"]
        rows.append(("epoch: seconds (median pair)", e["epoch_s"], "sum of stage floors", e["floor_s"], ("<=", 1.15)))
        rows.append(
            (
                "epoch: ... rollouts and evaluation",
                split["time/rollout"] + split["time/eval"],
                "plain env.step",
                e["floor_env_s"],
                None,
            )
        )
        rows.append(
            ("epoch: ... updates", split["time/update"], "XLA fwd+bwd+Adam, fixed batch", e["floor_update_s"], None)
        )
    if m:
        rows.append(
            (
                "memory: peak RSS for a full buffer (MB)",
                m["rss_growth"] / 1e6,
                "buffer arrays (MB)",
                m["buffer_bytes"] / 1e6,
                ("<=", 1.1),
            )
        )

    changed = f", with {' '.join(args.set)}" if args.set else ""
    print(
        f"\nbench on {args.env}, {os.cpu_count()} CPUs, batch {config.batch_size}, {config.rollout_batch_size} envs"
        f"{changed}"
    )
    print(
        "ratio = measured / floor value: a fraction of the floor's throughput for rates, a multiple of the floor"
        " for seconds and bytes\n"
    )
    print(f"{'stage':<40} {'measured':>9}   {'floor':<30} {'floor value':>11}   {'ratio':>5}   target")
    table = []
    for name, value, floor_name, floor_value, target in rows:
        ratio = value / floor_value
        verdict = ""
        if target is not None:
            sign, bound = target
            met = ratio >= bound if sign == ">=" else ratio <= bound
            verdict = f"{sign} {bound:<5} {'met' if met else 'MISSED'}"
        print(f"{name:<40} {value:>9.1f}   {floor_name:<30} {floor_value:>11.1f}   {ratio:>5.2f}   {verdict}")
        table.append(
            {
                "stage": name,
                "measured": value,
                "floor": floor_name,
                "floor_value": floor_value,
                "ratio": ratio,
                "target": None if target is None else f"{target[0]} {target[1]}",
            }
        )
    results["table"] = table

    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
