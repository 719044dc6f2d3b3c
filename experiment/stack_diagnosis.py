"""The stacking diagnosis figure: what each configuration change did, storey by storey.

    python experiment/stack_diagnosis.py experiment/results/stack2_diagnosis/* -o docs/img/stack2_diagnosis.png

One curve per run folder (its name is the label), against env steps, each a 5-epoch running mean: the test success
rate, the share of test episodes ending with block 0 in place (``test/placed_0``, logged by runs that report it),
the training episodes' success rate, and the share of demo rows the Q-filter lets through.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from her import atomic
from her.logger import read_progress

PANELS = [("test/success_rate", "test success"), ("test/placed_0", "test: block 0 in place"),
          ("train/success_rate", "training episodes' success"), ("demo/q_filter_pass", "Q-filter pass rate")]


def running_mean(values: np.ndarray, n: int = 5) -> np.ndarray:
    """Mean of each value and the up to n - 1 before it."""
    sums = np.cumsum(np.r_[0.0, values])
    counts = np.minimum(np.arange(1, len(values) + 1), n)
    return (sums[1:] - sums[np.arange(1, len(values) + 1) - counts]) / counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="log folders with progress.csv")
    parser.add_argument("-o", "--output", required=True, help="PNG file")
    args = parser.parse_args(argv)

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
                ax.plot(steps, running_mean(np.array([r[key] for r in rows], dtype=float)), color=f"C{i}",
                        label=folder.name)  # one colour per run in every panel
    for ax, (_, title) in zip(axes.flat, PANELS):
        ax.set(title=title, ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("env steps (thousands, all workers)")
    axes[0, 0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    atomic.write_with(args.output, lambda f: fig.savefig(f, format="png", dpi=100))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
