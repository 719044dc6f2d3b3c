"""What each candidate ingredient of a fast recipe costs per update, against the reference's update.

    python bench/learners.py                                   # FetchPush, the default candidates
    python bench/learners.py --variant wide:hidden=512,layer_norm=1 --variant big:batch_size=2048

A variant is a name and configuration keys. Its update steps (sampling, relabelling, both losses, the Adam steps:
what a training cycle runs) are timed in turn with the reference's, the best of several repeats kept, so that the
ratios hold on a machine whose speed drifts. Whether an ingredient pays for itself also depends on how many env
steps it saves, which only training runs measure; this gives the other half, its price.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench import best_rates, make_trainer  # noqa: E402

CANDIDATES = {
    "reference": {},
    "layer_norm": {"layer_norm": "1"},
    "twin": {"learner": "twin"},
    "twin_smoothing": {"learner": "twin", "target_noise": "0.2"},
    "hidden_512": {"hidden": "512"},
    # Narrower networks go the other way: the HER paper (2017) trained 3 x 64.
    "hidden_128": {"hidden": "128"},
    "hidden_64": {"hidden": "64"},
    "batch_1024": {"batch_size": "1024"},
    # The fast recipe as a whole (her/config.py): 3 x 128 and energy-prioritised episodes.
    "recipe_fast": {"recipe": "fast"},
}


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """'name:key=value,key=value' -> (name, {key: value})."""
    name, _, pairs = text.partition(":")
    keys = dict(pair.partition("=")[::2] for pair in pairs.split(",") if pair)
    if not name or not all(keys.values()) or not pairs:
        raise ValueError(f"--variant takes name:key=value[,key=value...], got {text!r}")
    return name, keys


def update_costs(
    env: str, variants: dict[str, dict[str, str]], n_updates: int, repeats: int, base: dict[str, object] | None = None
) -> dict[str, float]:
    """Milliseconds per update step for each variant, measured in turn (``base``: keys every variant shares)."""
    fns = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, keys in variants.items():
            trainer = make_trainer(env, os.path.join(tmp, name), tensorboard=False, **{**(base or {}), **keys})
            k = trainer.config.n_batches
            calls = max(1, n_updates // k)
            while trainer.parts.buffer.current_size < 20:  # episodes enough for batches that relabel
                trainer.store(trainer.parts.worker.generate_rollouts())

            def run(trainer=trainer, k=k, calls=calls) -> None:
                for _ in range(calls):
                    trainer.parts.learner.train_steps(trainer.sample_batches(k))

            run()  # trace
            fns[name] = (run, calls * k)
        steps = {name: count for name, (_, count) in fns.items()}
        rates = best_rates({name: fn for name, (fn, _) in fns.items()}, 1, repeats)
    return {name: 1000.0 / (rates[name] * steps[name]) for name in fns}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="FetchPush")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="a variant to time beside the reference (default: " + ", ".join(CANDIDATES) + ")",
    )
    parser.add_argument("--updates", type=int, default=400, help="update steps per repeat and variant")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        variants = dict(parse_variant(v) for v in args.variant) if args.variant else dict(CANDIDATES)
    except ValueError as e:
        parser.error(str(e))
    variants = {"reference": {}, **variants}
    from her.config import ConfigError

    try:
        costs = update_costs(args.env, variants, args.updates, args.repeats)
    except ConfigError as error:
        parser.error(str(error))
    print(f"\nupdate cost on {args.env}, {os.cpu_count()} CPUs, best of {args.repeats} x {args.updates} steps\n")
    print(f"{'variant':<16} {'keys':<40} {'ms/update':>9}   {'x reference':>11}")
    for name, ms in costs.items():
        keys = ",".join(f"{k}={v}" for k, v in variants[name].items()) or "-"
        print(f"{name:<16} {keys:<40} {ms:>9.2f}   {ms / costs['reference']:>11.2f}")


if __name__ == "__main__":
    main()
