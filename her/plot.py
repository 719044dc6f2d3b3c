"""Learning curves of training runs: ``her-plot runs/* [--key K] [--smooth N] [--output F]``.

Each argument is a log folder holding ``progress.csv`` and ``params.json``. Runs whose ``params.json`` agree
once per-run keys (``PER_RUN_KEYS``: seed, paths, the task's spelling) are removed form one group (the seeds of
one experiment). A group is drawn as the per-epoch median over its runs with a shaded 25-75% band, against
``epoch`` (left) and ``total/env_steps`` (right). When runs of a group have different lengths, each epoch is
aggregated over the runs that reached it, so a group's curve runs to its longest run (its band narrows where
fewer runs remain). The figure goes to ``--output`` (``.png``, ``.pdf`` or ``.svg``; default ``plot.png``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import matplotlib

matplotlib.use("Agg")  # headless: never needs a display

import numpy as np
from matplotlib.figure import Figure

from her import atomic, cli
from her.logger import read_progress

# Keys that differ between seeds of one experiment. `env` is how the user spelled the task; `env_id` (the
# resolved id) is what ran, so `--env FetchReach` and `--env FetchReach-v4` runs belong together.
PER_RUN_KEYS = frozenset({"seed", "log_path", "load_path", "env"})
MAX_LABEL_KEYS = 4  # longer labels (e.g. every key the demo preset changes) would swamp the legend
X_KEYS = ("epoch", "total/env_steps")


class PlotError(Exception):
    """Nothing can be plotted; the message is one line."""


@dataclass
class Run:
    path: Path
    params: dict[str, Any]
    rows: list[dict[str, float]]


def load_runs(folders: Sequence[str | Path]) -> list[Run]:
    """The usable runs among ``folders``; each unusable one costs a warning line on stderr."""
    runs = []
    for folder in map(Path, folders):
        progress, params = folder / "progress.csv", folder / "params.json"
        kept = sorted(folder.glob("checkpoints/epoch_*/progress.csv"))
        if not progress.is_file() and kept:  # a run killed before its first copy to the top
            progress = kept[-1]
        if not progress.is_file():
            print(f"warning: skipping {folder}: no progress.csv", file=sys.stderr)
            continue
        try:
            rows = read_progress(progress)
            # A run without params.json still plots, alone in a group named by its folder.
            config = json.loads(params.read_text()) if params.is_file() else {"folder": str(folder)}
        except ValueError as e:  # a hand-edited or foreign file: skip it rather than lose the whole plot
            print(f"warning: skipping {folder}: {e}", file=sys.stderr)
            continue
        if not isinstance(config, dict):
            print(
                f"warning: skipping {folder}: its params.json is a JSON {type(config).__name__}, not a run's "
                "configuration",
                file=sys.stderr,
            )
            continue
        if not rows or "epoch" not in rows[0]:
            print(f"warning: skipping {folder}: progress.csv has no epoch rows", file=sys.stderr)
            continue
        runs.append(Run(folder, config, rows))
    if not runs:
        raise PlotError("none of the given folders holds a progress.csv with at least one epoch")
    return runs


def config_key(params: Mapping[str, Any]) -> str:
    """What makes runs the same experiment: params without per-run keys, canonically serialised."""
    return json.dumps({k: v for k, v in params.items() if k not in PER_RUN_KEYS}, sort_keys=True, default=str)


def group_params(params: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """Indices of ``params`` grouped by ``config_key``, groups in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault(config_key(p), []).append(i)
    return list(groups.values())


def task_of(params: Mapping[str, Any]) -> str:
    """``FetchReach-v4`` -> ``FetchReach`` (as ``her.envs.task_name``, without importing gymnasium)."""
    return re.sub(r"-v\d+$", "", str(params.get("env_id") or params.get("env") or "?"))


def group_labels(groups: Sequence[Sequence[Mapping[str, Any]]]) -> list[str]:
    """One legend label per group: the task, the keys whose values differ between groups, and n=<runs>."""
    firsts = [dict(g[0]) for g in groups]
    keys = sorted({k for p in firsts for k in p} - PER_RUN_KEYS)
    differing = [k for k in keys if len({json.dumps(p.get(k), default=str) for p in firsts}) > 1]
    # Keys some groups lack (params.json of an older version) say least about the experiment: show them last.
    differing.sort(key=lambda k: not all(k in p for p in firsts))
    # The task is always shown, so env_id adds nothing unless it differs only by version.
    if len({task_of(p) for p in firsts}) == len({p.get("env_id") for p in firsts}):
        differing = [k for k in differing if k != "env_id"]
    if len(groups) == 1:
        return [task_of(firsts[0])]
    labels = []
    for p, g in zip(firsts, groups):
        parts = [task_of(p)] + [f"{k}={p.get(k)}" for k in differing[:MAX_LABEL_KEYS]]
        if len(differing) > MAX_LABEL_KEYS:
            parts.append(f"+{len(differing) - MAX_LABEL_KEYS} more")
        labels.append(" ".join(parts) + f" (n={len(g)})")
    return labels


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` epochs (NaN cells ignored), so epoch i never looks at later epochs."""
    if window <= 1:
        return y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window stays NaN
        return np.array([np.nanmean(y[max(0, i - window + 1) : i + 1]) for i in range(len(y))])


def quartiles(values: np.ndarray | Sequence[float], axis: int | None = None) -> np.ndarray:
    """The 25%, 50% and 75% points of ``values`` (along ``axis``), NaN ignored: every plot's median and band.

    Shape ``(3, ...)``; a slice that is all NaN stays NaN.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(values, [25, 50, 75], axis=axis)


def aggregate(runs: Sequence[Run], key: str, window: int = 1) -> dict[str, np.ndarray]:
    """Per epoch over the runs that reached it: epoch, env steps, and the median, 25% and 75% of ``key``."""
    per_epoch: dict[float, tuple[list[float], list[float]]] = {}
    for run in runs:
        ys = smooth(np.array([row.get(key, np.nan) for row in run.rows], float), window)
        for row, y in zip(run.rows, ys):
            cell = per_epoch.setdefault(row["epoch"], ([], []))
            cell[0].append(y)
            cell[1].append(row.get("total/env_steps", np.nan))
    epochs = sorted(per_epoch)
    q = np.array([quartiles(per_epoch[e][0]) for e in epochs]).reshape(-1, 3)
    steps = [quartiles(per_epoch[e][1])[1] for e in epochs]  # equal across a group's runs anyway
    return {
        "epoch": np.array(epochs),
        "total/env_steps": np.array(steps),
        "q25": q[:, 0],
        "median": q[:, 1],
        "q75": q[:, 2],
    }


def make_figure(runs: Sequence[Run], key: str = "test/success_rate", window: int = 1) -> Figure:
    """Two panels (key vs epoch, key vs env steps), one median line and 25-75% band per group;
    ``fig.legends[0]`` has one entry per group."""
    if not any(key in row for run in runs for row in run.rows):
        raise PlotError(f"no run has a column {key!r} in its progress.csv")
    groups = [[runs[i] for i in idx] for idx in group_params([r.params for r in runs])]
    labels = group_labels([[r.params for r in g] for g in groups])
    # A bare Figure: no pyplot state, no GUI. Height grows with the legend rows below the panels.
    fig = Figure(figsize=(12, 4.5 + 0.25 * len(groups)), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for i, (group, label) in enumerate(zip(groups, labels)):
        curve = aggregate(group, key, window)
        for ax, x in zip(axes, X_KEYS):
            ax.plot(curve[x], curve["median"], color=f"C{i}", label=label)
            ax.fill_between(curve[x], curve["q25"], curve["q75"], color=f"C{i}", alpha=0.25, linewidth=0)
    for ax, x in zip(axes, X_KEYS):
        ax.set_xlabel("env steps (all MPI processes)" if x == "total/env_steps" else x)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(key + (f" (smoothed over {window} epochs)" if window > 1 else ""))
    # One legend under both panels: long labels would cover the curves inside an axes.
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", fontsize="small")
    return fig


FORMATS = ("png", "pdf", "svg")


def _suffixes() -> str:
    """``.png, .pdf or .svg``: the formats as the help and the errors name them."""
    names = [f".{kind}" for kind in FORMATS]
    return f"{', '.join(names[:-1])} or {names[-1]}"


def save_png(fig: Figure, output: str | Path) -> Path:
    """Write the figure in the format its suffix names (PNG, PDF or SVG), atomically: a viewer refreshing the
    file never reads half of it."""
    output = Path(output)
    kind = figure_format(output)
    atomic.write_with(output, lambda f: fig.savefig(f, format=kind, dpi=100))
    return output


def check_output(output: Path) -> None:
    """Refuse an --output that cannot be written, naming it (a failed write would name its temporary file)."""
    figure_format(output)
    if any(len(part.encode(errors="replace")) > 255 for part in output.parts):
        raise PlotError(f"--output {output}: a name in it is longer than the 255 bytes a file system allows")
    parent = output.parent
    if not parent.is_dir():
        raise PlotError(f"--output {output}: folder {parent} does not exist")
    if output.is_dir():
        raise PlotError(f"--output {output} is a folder: name a {_suffixes()} file")
    if not os.access(parent, os.W_OK):
        raise PlotError(f"--output {output}: folder {parent} is not writable")


def figure_format(output: Path) -> str:
    kind = output.suffix.lower().lstrip(".")
    if kind not in FORMATS:
        raise PlotError(f"--output {output}: name a {_suffixes()} file")
    return kind


def plot(
    folders: Sequence[str | Path], output: str | Path = "plot.png", key: str = "test/success_rate", window: int = 1
) -> Figure:
    """Load, group, draw and save; returns the Figure so callers can inspect it."""
    check_output(Path(output))  # before any work
    fig = make_figure(load_runs(folders), key, window)
    save_png(fig, output)
    return fig


# The docstring as the help's description, its paragraphs kept as written (click would rewrap them); click
# arguments take no help text, so the epilog says what FOLDERS are.
@click.command(
    context_settings=cli.CONTEXT,
    help="\b\n" + (__doc__ or "").replace("\n\n", "\n\n\b\n"),
    epilog="FOLDERS: run folders (each with progress.csv and params.json)",
)
@click.argument("folders", nargs=-1, required=True)
@click.option(
    "--output", default="plot.png", metavar="OUTPUT", help=f"figure to write, {_suffixes()} [default: plot.png]"
)
@click.option(
    "--key", default="test/success_rate", metavar="KEY", help="progress.csv column [default: test/success_rate]"
)
@click.option(
    "--smooth", type=cli.INT, default=1, metavar="SMOOTH", help="trailing mean window in epochs [default: 1, none]"
)
def _command(folders: tuple[str, ...], output: str, key: str, smooth: int) -> int:
    if smooth < 1:
        raise click.UsageError(f"--smooth must be >= 1, got {smooth}")
    try:
        plot(folders, output, key, smooth)
    except (PlotError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(output)
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "her-plot") -> int:
    """her-plot on ``argv`` (default: the process's arguments) under the name ``prog``; returns the exit code."""
    return cli.run(_command, argv, prog_name=prog)


if __name__ == "__main__":
    sys.exit(main())
