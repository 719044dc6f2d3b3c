"""Where an epoch loses time against its floors: a stage timed after each kind of neighbour, in one process.

    python bench/interleave.py                       # FetchPush, --recipe fast
    python bench/interleave.py --set recipe= --rounds 20   # the reference's networks
    python bench/interleave.py --set recipe=fast tf_threads=1 --no_gc   # one TensorFlow thread, no collector

An epoch alternates a cycle's rollouts with a block of update steps, and both run slower so than alone
(docs/performance.md). Here each block is timed after a different predecessor, the kinds taken in turn round by
round so that the machine's drift falls on all of them alike:

  update after update     the update block alone, back to back (the benchmark's floor)
  update after rollout    as in an epoch
  update after env steps  after as many plain env.step calls, random actions (no acting, no storing)
  update after rollout + pause   a pause of --pause_ms between them: threads left spinning by the rollout go idle
  rollout after rollout   the rollouts alone
  rollout after update    as in an epoch
  rollout after update + pause

Prints the median milliseconds of each and its ratio to the block alone.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench import make_trainer, plain_env_steps  # noqa: E402


def measure(trainer, rounds: int, pause_ms: float) -> dict[str, list[float]]:
    """Seconds of each kind of timed block (the module's docstring), ``rounds`` of each, taken in turn."""
    p, c = trainer.parts, trainer.config
    while p.buffer.current_size < 100:
        trainer.store(p.worker.generate_rollouts())
    plain = plain_env_steps(trainer, 1)

    def update() -> None:
        p.learner.train_steps(trainer.sample_batches(c.n_batches))
        p.learner.update_target_net()

    def rollout() -> None:
        trainer.store(p.worker.generate_rollouts())

    def pause() -> None:
        time.sleep(pause_ms / 1000)

    def rollout_then_pause() -> None:
        rollout()
        pause()

    def update_then_pause() -> None:
        update()
        pause()

    # kind -> (what runs before, what is timed)
    kinds = {
        "update after update": (update, update),
        "update after rollout": (rollout, update),
        "update after env steps": (plain, update),
        "update after rollout + pause": (rollout_then_pause, update),
        "rollout after rollout": (rollout, rollout),
        "rollout after update": (update, rollout),
        "rollout after update + pause": (update_then_pause, rollout),
    }
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(2):  # warm up every path
        for before, timed in kinds.values():
            before()
            timed()
    for _ in range(rounds):
        for kind, (before, timed) in kinds.items():
            before()
            start = time.perf_counter()
            timed()
            times[kind].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="FetchPush")
    parser.add_argument("--rounds", type=int, default=30, help="rounds; each times every kind once")
    parser.add_argument("--pause_ms", type=float, default=50.0)
    parser.add_argument(
        "--no_gc", action="store_true", help="Python's garbage collector off while timing (is it the excess?)"
    )
    parser.add_argument(
        "--set", nargs="*", default=["recipe=fast"], help="configuration keys, key=value (default recipe=fast)"
    )
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(args.env, tmp, **overrides)
        if args.no_gc:
            gc.collect()
            gc.disable()
        times = measure(trainer, args.rounds, args.pause_ms)
        gc.enable()
    gc_note = ", garbage collector off" if args.no_gc else ""
    print(f"{args.env}, {' '.join(args.set) or 'reference'}{gc_note}: median ms of {args.rounds} rounds")
    for stage in ("update", "rollout"):
        alone = float(np.median(times[f"{stage} after {stage}"]))
        for kind, values in times.items():
            if kind.startswith(stage):
                ms = 1000 * float(np.median(values))
                print(f"  {kind:32s} {ms:8.1f} ms  {ms / (1000 * alone):5.2f}")


if __name__ == "__main__":
    main()
