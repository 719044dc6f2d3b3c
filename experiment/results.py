"""The results table of docs/results.md: run its rows, and rebuild the table and plots from the committed runs.

    python experiment/results.py run reach --seeds 100 101 102   # train the missing seeds of a row
    python experiment/results.py table --write                   # docs/results.md's table, plots, kept policies
    python experiment/results.py window slide slide_demos --steps 160e3 200e3   # seeds' means at equal env steps

Every run lives in ``experiment/results/<row>/seed<seed>/``; only its ``params.json`` and ``progress.csv`` are
committed, and for each row ``policy.npz``, the best policy of its median seed (by final success). A row
trains with ``mpirun -np 2 --num_env 2`` (one MPI process per core), and stops once the test success rate has
held 0.9 for 10 epochs, or at the row's cap.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from her import mpi
from her.plot import quartiles
from her.report import reaches

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parents[1]
MPI_PROCESSES = 2
CORES = 2  # of the machine every committed run was made on
# TensorFlow's threads per MPI process there, pinned so that a machine with more cores repeats a run.
TF_THREADS = max(1, CORES // MPI_PROCESSES)
STACK_CAP = 20  # epochs
STACK_RECIPE_CAP = 40  # epochs
# 12,000 env steps an epoch at about 85 s on 2 cores: 55 epochs keep a run within 90 minutes.
STACK3_RECIPE_CAP = 55  # epochs
# Measured on 2026-12-06 (quiet cores) per 20,000-step epoch: HandManipulateBlockRotateZ 36-40 s, so 90 epochs keep a
# run within the 60 minutes these rows are given; HandManipulateEggRotate 44 s (its first 11 epochs), so 80.
HAND_MANIPULATE_CAP = 90  # epochs
HAND_EGG_CAP = 80  # epochs
# AntMaze_UMaze: 140,000 env steps (200 episodes of 700) an epoch at 64 s (2026-12-07, quiet cores): 55 epochs.
ANT_MAZE_CAP = 55  # epochs
# PandaStack: 8,000 env steps an epoch (20 cycles of 2 x 2 episodes of 100 steps), about 65 s on 2 cores: 60 epochs
# (480k env steps, twice what FetchStack2 took to 0.9 with the sparse reward) keep a run near 65 minutes, within
# the 90 it is given.
PANDA_STACK_CAP = 60  # epochs
PANDA_STACK_SCREEN_CAP = 20  # epochs: 27 minutes
# Screens of FetchPickAndPlace without demos, whose target is 0.9 within 0.6 M env steps: 70 epochs of 10,000.
SCREEN_CAP = 70  # epochs
# panda-gym without demos: an epoch of 10,000 env steps (50 cycles of 2 x 2 episodes of 50 steps) took about 48 s
# (PandaReach, 2026-12-07, quiet cores: updates 30 s, rollouts 15 s), so 36 epochs keep a run within its 30 minutes.
PANDA_30_MINUTES = 36  # epochs
# The stacking recipe's demonstrations: 1,000 episodes of the scripted expert acting through Gaussian noise of 0.1.
STACK2_DEMOS = {"env": "FetchStack2", "num_episodes": 1000, "seed": 0, "noise": 0.1}


@dataclass(frozen=True)
class Row:
    title: str
    env: str
    cap: int  # epochs
    flags: dict = field(default_factory=dict)
    demos: dict | None = None  # arguments of the demo generator, if the row learns from demonstrations
    processes: int = MPI_PROCESSES  # MPI processes, 2 envs each


ROWS = {
    "reach": Row("FetchReach", "FetchReach", 10),
    "push": Row("FetchPush", "FetchPush", 60),
    "pick_and_place_demos": Row(
        "FetchPickAndPlace, 100 demos",
        "FetchPickAndPlace",
        30,
        demos={"env": "FetchPickAndPlace", "num_episodes": 100, "seed": 0},
    ),
    "pick_and_place": Row("FetchPickAndPlace", "FetchPickAndPlace", 150),
    "slide": Row("FetchSlide", "FetchSlide", 150),
    "slide_demos": Row(
        "FetchSlide, 100 demos", "FetchSlide", 150, demos={"env": "FetchSlide", "num_episodes": 100, "seed": 0}
    ),
    # The first FetchSlide demo runs, capped at 50 epochs (200k env steps) to fit beside the other rows.
    "slide_demos_50": Row(
        "FetchSlide, 100 demos, 50 epochs",
        "FetchSlide",
        50,
        demos={"env": "FetchSlide", "num_episodes": 100, "seed": 0},
    ),
    # Control for the Slide demo row: its preset (20 cycles, batches of 1,024, less exploration noise) without
    # demos, to tell what the demos add from what the preset's other settings do.
    "slide_demo_preset": Row(
        "FetchSlide, demo preset without demos",
        "FetchSlide",
        150,
        flags={"n_cycles": 20, "batch_size": 1024, "random_eps": 0.1, "noise_eps": 0.1},
    ),
    # Ablation: demos from a noisy expert (noise 0.2: 56 of 100 succeed), as the reference's own script produced.
    "pick_and_place_noisy_demos": Row(
        "FetchPickAndPlace, 100 noisy demos",
        "FetchPickAndPlace",
        30,
        demos={"env": "FetchPickAndPlace", "num_episodes": 100, "seed": 0, "noise": 0.2},
    ),
    # Nair et al.'s resets to demonstration states: half of the training episodes start from a demo state (the
    # share HER (2017) used for its grasped-block starts; the paper gives none).
    "pick_and_place_demos_resets": Row(
        "FetchPickAndPlace, 100 demos + resets",
        "FetchPickAndPlace",
        30,
        flags={"demo_reset_p": 0.5},
        demos={"env": "FetchPickAndPlace", "num_episodes": 100, "seed": 0},
    ),
    # The reference's own scale: 19 MPI processes (on this machine's 2 cores), seed 0, as its published curves.
    "push_19_workers": Row("FetchPush, 19 MPI processes", "FetchPush", 15, processes=19),
    # Block stacking (her/fetch_stack.py). The caps are what fits in one working session on 2 cores.
    # Without demos an epoch is 50 cycles (20 with the demo preset): 10 epochs are 200k env steps, more than
    # the 160k of the demo rows' 20.
    "stack2": Row("FetchStack2", "FetchStack2", 10),
    "stack2_demos": Row(
        "FetchStack2, 100 demos", "FetchStack2", STACK_CAP, demos={"env": "FetchStack2", "num_episodes": 100, "seed": 0}
    ),
    "stack2_demos_resets": Row(
        "FetchStack2, 100 demos + resets",
        "FetchStack2",
        STACK_CAP,
        flags={"demo_reset_p": 0.5},
        demos={"env": "FetchStack2", "num_episodes": 100, "seed": 0},
    ),
    # The stacking recipe (docs/stacking.md). FetchStack2: 40 epochs (320k env steps, about 40 minutes on 2 cores),
    # the diagnosis runs' budget; seed 100 is the diagnosis run that found the recipe (the same configuration, its
    # flags spelled out), copied from stack2_diagnosis/. FetchStack3: what fits in 90 minutes.
    "stack2_recipe": Row(
        "FetchStack2, recipe stack", "FetchStack2", STACK_RECIPE_CAP, flags={"recipe": "stack"}, demos=STACK2_DEMOS
    ),
    "stack3_recipe": Row(
        "FetchStack3, recipe stack",
        "FetchStack3",
        STACK3_RECIPE_CAP,
        flags={"recipe": "stack"},
        demos={**STACK2_DEMOS, "env": "FetchStack3"},
    ),
    # Nair et al.'s ablations at the recipe, one ingredient taken out at a time (2 seeds each).
    "stack2_recipe_no_bc": Row(
        "FetchStack2, recipe without BC loss",
        "FetchStack2",
        STACK_RECIPE_CAP,
        flags={"recipe": "stack", "bc_loss": 0, "q_filter": 0},
        demos=STACK2_DEMOS,
    ),
    "stack2_recipe_no_q_filter": Row(
        "FetchStack2, recipe without Q-filter",
        "FetchStack2",
        STACK_RECIPE_CAP,
        flags={"recipe": "stack", "q_filter": 0},
        demos=STACK2_DEMOS,
    ),
    "stack2_recipe_no_resets": Row(
        "FetchStack2, recipe without resets",
        "FetchStack2",
        STACK_RECIPE_CAP,
        flags={"recipe": "stack", "demo_reset_p": 0},
        demos=STACK2_DEMOS,
    ),
    "stack2_recipe_sparse": Row(
        "FetchStack2, recipe with the sparse reward",
        "FetchStack2",
        STACK_RECIPE_CAP,
        flags={"recipe": "stack", "env_kwargs": "reward_type=sparse"},
        demos=STACK2_DEMOS,
    ),
    # Without demos the demo preset is off: its batch, cycles and noise are given by hand, as in the recipe.
    "stack2_recipe_no_demos": Row(
        "FetchStack2, recipe without demos",
        "FetchStack2",
        STACK_RECIPE_CAP,
        flags={"recipe": "stack", "demo_reset_p": 0, "n_cycles": 20, "batch_size": 1024, "noise_eps": 0.1},
    ),
    # Goal envs beyond Fetch, with the reference's defaults (Plappert et al. 2018 tuned them on the Hand tasks).
    # HandReach and the maze stop once 0.9 has held for 10 epochs; the Hand manipulation rows get what fits in 60
    # minutes of 2 cores (an epoch is 20,000 env steps of 100-step episodes).
    "hand_reach": Row("HandReach", "HandReach-v3", 50),
    # HandReach with a third of the reference's random actions and half its Gaussian noise: success needs all
    # five fingertips within 1 cm at once, which the reference's noise keeps training episodes from
    # (docs/results.md).
    "hand_reach_low_noise": Row(
        "HandReach, less exploration noise", "HandReach-v3", 50, flags={"random_eps": 0.1, "noise_eps": 0.1}
    ),
    "point_maze": Row("PointMaze_UMaze", "PointMaze_UMaze-v3", 50),
    "hand_block_rotate_z": Row(
        "HandManipulateBlockRotateZ, 60 minutes", "HandManipulateBlockRotateZ-v1", HAND_MANIPULATE_CAP
    ),
    "hand_egg_rotate": Row("HandManipulateEggRotate, 60 minutes", "HandManipulateEggRotate-v1", HAND_EGG_CAP),
    "ant_maze": Row("AntMaze_UMaze, 60 minutes", "AntMaze_UMaze-v5", ANT_MAZE_CAP),
    # The fast recipe (RECIPES["fast"] in her/config.py, docs/performance.md) on the faithful rows' tasks, with the
    # same caps and stop rule.
    "push_fast": Row("FetchPush, recipe fast", "FetchPush", 60, flags={"recipe": "fast"}),
    "pick_and_place_fast": Row("FetchPickAndPlace, recipe fast", "FetchPickAndPlace", 150, flags={"recipe": "fast"}),
    # FetchSlide's target is the mean of the last 10 epochs within 60 minutes: 280 epochs at the recipe's 12-13 s.
    "slide_fast": Row("FetchSlide, recipe fast, 60 minutes", "FetchSlide", 280, flags={"recipe": "fast"}),
    # The fast recipe's ablation: one ingredient taken out at a time.
    "push_fast_uniform": Row(
        "FetchPush, recipe fast with uniform replay",
        "FetchPush",
        60,
        flags={"recipe": "fast", "replay_priority": "uniform"},
    ),
    "push_fast_256": Row(
        "FetchPush, recipe fast with 3 x 256", "FetchPush", 60, flags={"recipe": "fast", "hidden": 256}
    ),
    # A candidate ingredient, not (yet) in the recipe: half the reference's 40 updates per cycle.
    "push_fast_nb20": Row(
        "FetchPush, recipe fast with 20 updates a cycle", "FetchPush", 60, flags={"recipe": "fast", "n_batches": 20}
    ),
    "pick_and_place_fast_nb20": Row(
        "FetchPickAndPlace, recipe fast with 20 updates a cycle",
        "FetchPickAndPlace",
        150,
        flags={"recipe": "fast", "n_batches": 20},
    ),
    # Screens for fewer env steps (seed 100 first; the target is 0.9 within 0.6 M env steps, so 70 epochs): each
    # adds one ingredient to the fast recipe. Relabelled goals half drawn from stored desired goals (no price per
    # epoch); twice the updates a cycle; batches of 1,024 (about three times an update's cost at 3 x 128).
    "pick_and_place_fast_desired": Row(
        "FetchPickAndPlace, recipe fast with half the relabelled goals desired ones",
        "FetchPickAndPlace",
        SCREEN_CAP,
        flags={"recipe": "fast", "desired_share": 0.5},
    ),
    "pick_and_place_fast_nb80": Row(
        "FetchPickAndPlace, recipe fast with 80 updates a cycle",
        "FetchPickAndPlace",
        SCREEN_CAP,
        flags={"recipe": "fast", "n_batches": 80},
    ),
    "pick_and_place_fast_1024": Row(
        "FetchPickAndPlace, recipe fast with batches of 1,024",
        "FetchPickAndPlace",
        SCREEN_CAP,
        flags={"recipe": "fast", "batch_size": 1024},
    ),
    "pick_and_place_demos_resets_fast": Row(
        "FetchPickAndPlace, 100 demos + resets, recipe fast",
        "FetchPickAndPlace",
        30,
        flags={"demo_reset_p": 0.5, "recipe": "fast"},
        demos={"env": "FetchPickAndPlace", "num_episodes": 100, "seed": 0},
    ),
    # Its ablation: the demo preset's batches of 1,024 (128 demo rows) instead of the recipe's 512 (64).
    "pick_and_place_demos_resets_fast_1024": Row(
        "FetchPickAndPlace, 100 demos + resets, recipe fast with batches of 1,024",
        "FetchPickAndPlace",
        30,
        flags={"demo_reset_p": 0.5, "recipe": "fast", "batch_size": 1024, "demo_batch_size": 128},
        demos={"env": "FetchPickAndPlace", "num_episodes": 100, "seed": 0},
    ),
    # panda-gym (PyBullet), a suite this project did not write (docs/panda.md).
    # Without demos, the reference's defaults, one seed each in 30 minutes: what each task reaches against env steps,
    # beside the zoo's TQC+HER agents.
    "panda_reach": Row("PandaReach", "PandaReach", PANDA_30_MINUTES),
    "panda_push": Row("PandaPush, 30 minutes", "PandaPush", PANDA_30_MINUTES),
    "panda_pick_and_place": Row("PandaPickAndPlace, 30 minutes", "PandaPickAndPlace", PANDA_30_MINUTES),
    "panda_slide": Row("PandaSlide, 30 minutes", "PandaSlide", PANDA_30_MINUTES),
    "panda_pick_and_place_demos": Row(
        "PandaPickAndPlace, 100 demos",
        "PandaPickAndPlace",
        30,
        demos={"env": "PandaPickAndPlace", "num_episodes": 100, "seed": 0},
    ),
    # The same with half the training episodes started from demo states (PyBullet states, her/pybullet_state.py)
    # and the fast recipe's cheaper update: the two changes that cut FetchPickAndPlace's steps and minutes.
    "panda_pick_and_place_demos_resets_fast": Row(
        "PandaPickAndPlace, 100 demos + resets, recipe fast",
        "PandaPickAndPlace",
        30,
        flags={"demo_reset_p": 0.5, "recipe": "fast"},
        demos={"env": "PandaPickAndPlace", "num_episodes": 100, "seed": 0},
    ),
    # PandaStack from demonstrations: the stacking recipe's demos (1,000 episodes of the expert acting through
    # noise 0.1) and no uniformly random actions, with panda-gym's own sparse reward (the recipe's step reward is
    # FetchStack's) and without resets to demo states (on FetchStack2 they made no difference).
    "panda_stack_demos": Row(
        "PandaStack, 1,000 noisy demos",
        "PandaStack",
        PANDA_STACK_CAP,
        flags={"random_eps": 0.0, "num_demo": 1000},
        demos={**STACK2_DEMOS, "env": "PandaStack"},
    ),
    # A screen: the same without the Q-filter, which on FetchStack2 reached 0.9 at a quarter of the recipe's env
    # steps (64k against 224k) but settled lower (0.82 against 0.93); 20 epochs show how fast PandaStack rises.
    "panda_stack_demos_no_q_filter": Row(
        "PandaStack, 1,000 noisy demos, without Q-filter (20-epoch screen)",
        "PandaStack",
        PANDA_STACK_SCREEN_CAP,
        flags={"random_eps": 0.0, "num_demo": 1000, "q_filter": 0},
        demos={**STACK2_DEMOS, "env": "PandaStack"},
    ),
}


def demo_path(row: Row) -> Path:
    d = row.demos
    assert d is not None, f"{row.title} trains without demos"
    noise = f"_noise{d['noise']}" if d.get("noise") else ""
    return RESULTS / "demos" / f"{d['env']}_{d['num_episodes']}_seed{d['seed']}{noise}.npz"


def make_demos(row: Row) -> Path:
    path = demo_path(row)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        d = row.demos
        assert d is not None
        cmd = [
            sys.executable,
            "-m",
            "her.experts",
            "--env",
            d["env"],
            "--num_episodes",
            str(d["num_episodes"]),
            "--seed",
            str(d["seed"]),
            "--output",
            str(path),
        ]
        if d.get("noise"):
            cmd += ["--noise", str(d["noise"])]
        # The generator of this checkout (as for training), not whichever one the venv has installed.
        subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return path


def command(name: str, seed: int, results: Path = RESULTS, epochs: int | None = None) -> list[str]:
    row = ROWS[name]
    launcher = mpi.mpirun()
    if launcher is None:
        raise SystemExit("no mpirun found: install the project (pip install -e .), which brings Open MPI's")
    oversubscribe = ["--oversubscribe"] if row.processes > (os.cpu_count() or 1) else []
    cmd = [
        launcher,
        "--allow-run-as-root",
        *oversubscribe,
        "-np",
        str(row.processes),
        sys.executable,
        "-m",
        "her.run",
        "--env",
        row.env,
        "--num_env",
        "2",
        "--seed",
        str(seed),
        "--n_epochs",
        str(epochs or row.cap),
        "--stop_success_rate",
        "0.9",
        "--stop_patience",
        "10",
        "--policy_save_interval",
        "0",
        "--buffer_save_interval",
        "0",
        "--tensorboard",
        "0",
        "--tf_threads",
        str(TF_THREADS),
        "--log_path",
        log_path(results / name / f"seed{seed}"),
    ]
    if row.demos:  # paths relative to the repository (runs start there), so params.json records no machine's
        cmd += ["--demo_file", str(make_demos(row).relative_to(ROOT))]
    for key, value in row.flags.items():
        cmd += [f"--{key}", str(value)]
    return cmd


def log_path(folder: Path) -> str:
    """Relative to the repository where possible, so that params.json records no machine's paths."""
    folder = folder.resolve()
    return str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder)


def run(name: str, seeds: list[int], results: Path = RESULTS, epochs: int | None = None) -> None:
    for seed in seeds:
        folder = results / name / f"seed{seed}"
        if (folder / "progress.csv").exists():
            print(f"{folder} exists: skipped (give --out DIR to repeat a committed run elsewhere)", flush=True)
            continue
        cmd = command(name, seed, results, epochs)
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)


def repeat(name: str, seed: int, epochs: int) -> str:
    """Re-run the first ``epochs`` of a committed run from its params.json, and say whether they match exactly."""
    from her import versions
    from her.logger import read_progress

    folder = RESULTS / name / f"seed{seed}"
    if not (folder / "params.json").exists():
        raise SystemExit(f"{folder} holds no committed run: see experiment/results/{name}/ for its seeds")
    params = json.loads((folder / "params.json").read_text())
    if params.get("demo_file") and not (ROOT / params["demo_file"]).exists() and ROWS[name].demos:
        make_demos(ROWS[name])  # the generator is deterministic: the same seed writes the same file
    committed = read_progress(folder / "progress.csv")[:epochs]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        launcher = mpi.mpirun()
        oversubscribe = ["--oversubscribe"] if params["mpi_size"] > (os.cpu_count() or 1) else []
        cmd = [
            str(launcher),
            "--allow-run-as-root",
            *oversubscribe,
            "-np",
            str(params["mpi_size"]),
            sys.executable,
            "-m",
            "her.run",
            "--config",
            str(folder / "params.json"),
            "--n_epochs",
            str(epochs),
            "--log_path",
            str(out),
        ]
        if "tf_threads" not in params:  # recorded before the key: the runs had the results machine's count
            cmd += ["--tf_threads", str(TF_THREADS)]
        print(" ".join(cmd), flush=True)
        finished = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
        if finished.returncode != 0:  # the run said why on stderr, above
            raise SystemExit(f"error: the repeated run ended with exit code {finished.returncode}: see its error above")
        again = read_progress(out / "progress.csv")
        demos_now = json.loads((out / versions.FILE).read_text()).get("demo_sha256")
    if not (folder / versions.FILE).exists():
        lines = [
            f"{folder} has no {versions.FILE} (the run predates version records): the code it ran at is "
            "unknown, so a difference below may come from changes since"
        ]
    else:
        lines = [versions.difference(folder) or f"versions: the same as the committed run's {versions.FILE}"]
        demos_then = json.loads((folder / versions.FILE).read_text()).get("demo_sha256")
        if demos_then and demos_now and demos_then != demos_now:
            lines.append(
                f"the demo file differs from the one the run trained on (sha256 {demos_now[:12]}..., then "
                f"{demos_then[:12]}...): a difference below may come from it"
            )
        elif demos_then and demos_now:
            lines.append("demo file: the same as the committed run's")
    for epoch, (old, new) in enumerate(zip(committed, again)):
        differ = [key for key in old if not key.startswith("time/") and key in new and old[key] != new[key]]
        if differ:
            shown = ", ".join(f"{key} {old[key]!r} committed, {new[key]!r} now" for key in differ[:3])
            more = f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""
            lines.append(f"epoch {epoch} differs: {shown}{more}")
            break
    else:
        lines.append(f"epochs 0-{len(again) - 1}: every logged number equal to the committed run's (timings apart)")
    return "\n".join(lines)


# ---- the table ----


def read_runs(name: str) -> list[tuple[dict, list[dict]]]:
    """(params, progress rows) of the row's finished runs: at the cap, or stopped early by the success rule."""
    return [(params, rows) for _, params, rows in finished_runs(name)]


def finished_runs(name: str) -> list[tuple[Path, dict, list[dict]]]:
    """read_runs, with each run's folder."""
    runs = []
    for folder in sorted((RESULTS / name).glob("seed*")):
        if not (folder / "progress.csv").exists():
            continue
        params = json.loads((folder / "params.json").read_text())
        with open(folder / "progress.csv", newline="") as f:
            rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
        patience, target = params["stop_patience"], params["stop_success_rate"]
        stopped = (
            target is not None
            and len(rows) >= patience
            and all(reaches(r["test/success_rate"], target) for r in rows[-patience:])
        )
        if len(rows) >= params["n_epochs"] or stopped:
            runs.append((folder, params, rows))
        else:
            print(f"{folder}: unfinished ({len(rows)} epochs), left out", file=sys.stderr)
    return runs


def first_reach(rows: list[dict], level: float) -> tuple[float, float] | None:
    """(env steps, wall minutes) of the first epoch whose test success is >= level."""
    for r in rows:
        if reaches(r["test/success_rate"], level):
            return r["total/env_steps"], r["time/total"] / 60
    return None


def median(values: list[float]) -> float:
    return float(quartiles(values)[1])


def reach_cell(hits: list[tuple[float, float] | None], n: int) -> str:
    """'median (min-max)' of env steps and minutes over the seeds that got there, and how many did."""
    got = [h for h in hits if h is not None]
    if not got:
        return f"not reached (0/{n})"
    steps = [h[0] / 1000 for h in got]
    minutes = [h[1] for h in got]
    cell = (
        f"{median(steps):.0f}k ({min(steps):.0f}-{max(steps):.0f}k) steps, "
        f"{median(minutes):.1f} ({min(minutes):.1f}-{max(minutes):.1f}) min"
    )
    return cell if len(got) == n else f"{cell}; {len(got)}/{n} seeds"


def version_cell(folders: list[Path]) -> str:
    """Whether the runs recorded the code and libraries they ran with (versions.json): the runs before such
    records cannot be told apart from changes since when ``repeat`` finds a difference."""
    from her import versions

    recorded = sum((folder / versions.FILE).exists() for folder in folders)
    if recorded == len(folders):
        return "yes"
    return "no: predate them" if recorded == 0 else f"{recorded} of {len(folders)} seeds"


def table() -> str:
    lines = [
        "| task | seeds | epochs (cap) | to 0.5 | to 0.9 | final success | MPI processes on cores "
        "| versions recorded |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in ROWS.items():
        found = finished_runs(name)
        runs = [(params, rows) for _, params, rows in found]
        if not runs:
            continue
        n = len(runs)
        seeds = ", ".join(str(p["seed"]) for p, _ in runs)
        epochs = ", ".join(str(len(rows)) for _, rows in runs)
        finals = [final_success(rows) for _, rows in runs]
        to_half = reach_cell([first_reach(rows, 0.5) for _, rows in runs], n)
        to_09 = reach_cell([first_reach(rows, 0.9) for _, rows in runs], n)
        lines.append(
            f"| {row.title} | {seeds} | {epochs} ({row.cap}) | {to_half} | {to_09} | "
            f"{median(finals):.2f} ({min(finals):.2f}-{max(finals):.2f}) | "
            f"{runs[0][0]['mpi_size']} on {CORES} | {version_cell([folder for folder, _, _ in found])} |"
        )
    return "\n".join(lines)


def window_mean(rows: list[dict], low: float, high: float) -> float | None:
    """Mean test success of the epochs that end in (low, high] env steps; None if none does.

    Rows with different epoch sizes (the demo preset's 4,000 env steps against 10,000) compare here at equal
    env steps, which is also equal gradient steps: both make one per 5 env steps.
    """
    rates = [r["test/success_rate"] for r in rows if low < r["total/env_steps"] <= high]
    return sum(rates) / len(rates) if rates else None


def windows(names: list[str], pairs: list[tuple[float, float]]) -> str:
    """One line per seed of each row: its mean test success in each (low, high] window of env steps."""
    head = " | ".join(f"{low / 1e3:.0f}-{high / 1e3:.0f}k" for low, high in pairs)
    lines = [f"row/seed | {head}"]
    for name in names:
        for params, rows in read_runs(name):
            means = [window_mean(rows, low, high) for low, high in pairs]
            lines.append(
                f"{name}/seed{params['seed']} | " + " | ".join("-" if m is None else f"{m:.2f}" for m in means)
            )
    return "\n".join(lines)


def final_success(rows: list[dict]) -> float:
    """Mean test success of the last 10 epochs."""
    return sum(r["test/success_rate"] for r in rows[-10:]) / len(rows[-10:])


def keep_median_policy(name: str) -> Path | None:
    """Copy the best policy of the row's median seed (by final success) to ``<row>/policy.npz``."""
    runs = read_runs(name)
    if not runs:
        return None
    ranked = sorted(runs, key=lambda run: final_success(run[1]))
    params = ranked[(len(ranked) - 1) // 2][0]
    source = RESULTS / name / f"seed{params['seed']}" / "policy_best.npz"
    if not source.exists():
        return None
    dest = RESULTS / name / "policy.npz"
    dest.write_bytes(source.read_bytes())
    return dest


# Policies kept beside the rows' median ones: the best of all runs of several rows (the best epoch of any seed).
BEST_POLICIES = {
    "stack2_best_policy.npz": ["stack2", "stack2_demos", "stack2_demos_resets", "stack2_recipe"],
    "stack3_best_policy.npz": ["stack3_recipe"],
}


def keep_best_policy(file: str) -> Path | None:
    """Copy the policy_best.npz with the highest test success among the runs of ``BEST_POLICIES[file]``."""
    found = [
        (max(r["test/success_rate"] for r in rows), RESULTS / name / f"seed{params['seed']}" / "policy_best.npz")
        for name in BEST_POLICIES[file]
        for params, rows in read_runs(name)
    ]
    found = [(success, path) for success, path in found if path.exists()]
    if not found:
        return None
    dest = RESULTS / file
    dest.write_bytes(max(found, key=lambda item: item[0])[1].read_bytes())  # the first of equals, in row order
    return dest


def replace_between(path: Path, marker: str, text: str) -> None:
    """Replace what stands between ``<!-- marker -->`` and ``<!-- /marker -->`` in a markdown file."""
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    content = path.read_text()
    if start not in content or end not in content:
        raise SystemExit(f"{path} has no {start} ... {end} markers")
    before, rest = content.split(start, 1)
    path.write_text(before + start + "\n" + text + "\n" + end + rest.split(end, 1)[1])


def summary(text: str) -> str:
    """The README's short table: task, to 0.9 and final success of the full one."""
    lines = ["| task | to 0.9 (env steps, wall minutes; median over seeds) | final success |", "|---|---|---|"]
    for line in text.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        lines.append(f"| {cells[0]} | {cells[4]} | {cells[5]} |")
    return "\n".join(lines)


def write_tables(text: str) -> None:
    replace_between(ROOT / "docs" / "results.md", "results-table", text)
    replace_between(ROOT / "README.md", "results-summary", summary(text))


# Published points to draw beside a row's curve: (epoch, test success, label). Read by eye from figures or quoted
# from a maintainer ("Against the published figures" in docs/results.md names the sources); not data.
REFERENCE_POINTS = {
    "push_19_workers": {
        "baselines maintainer, 19 CPUs (issue #591)": [(0, 0.06), (9, 0.89), (19, 1.0)],
        "Plappert et al. 2018, Fig. 3, read by eye": [(9, 0.9)],
    },
}


def success_curves(runs: list[tuple[dict, list[dict]]]) -> tuple[np.ndarray, np.ndarray]:
    """Env steps ``(epochs,)`` and test success ``(seeds, epochs)`` of a row's runs, as long as the longest.

    A run that stopped early held >= 0.9 for its last epochs: its last value is carried forward.
    """
    length = max(len(rows) for _, rows in runs)
    curves = np.array(
        [
            [r["test/success_rate"] for r in rows] + [rows[-1]["test/success_rate"]] * (length - len(rows))
            for _, rows in runs
        ]
    )
    return runs[0][1][0]["total/env_steps"] * np.arange(1, length + 1), curves


def plot(name: str) -> Path | None:
    """Median and 25-75% band of the test success rate against env steps, over the row's seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = read_runs(name)
    if not runs:
        return None
    steps, curves = success_curves(runs)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    label = f"median of {len(runs)} seeds" if len(runs) > 1 else f"seed {runs[0][0]['seed']}"
    q25, median, q75 = quartiles(curves, axis=0)
    ax.plot(steps, median, label=label)
    ax.fill_between(steps, q25, q75, alpha=0.3, label="25-75%")
    for (source, points), marker in zip(REFERENCE_POINTS.get(name, {}).items(), "ox"):
        epochs, values = zip(*points)
        ax.plot(steps[0] * (np.array(epochs) + 1), values, marker, color="black", label=source, linestyle="none")
    ax.set(
        title=ROWS[name].title, xlabel="env steps (all MPI processes)", ylabel="test success rate", ylim=(-0.02, 1.02)
    )
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = RESULTS / name / "success.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# Rows drawn together on one plot to compare configurations of one task: (title, rows, x scale, axes). A log scale
# where the rows' step counts differ tenfold, as demo rows stopping early beside a 150-epoch row. The axes are
# "steps" (env steps), or "steps+minutes" for a second panel against wall minutes, where recipes of different
# update costs compare.
COMPARISONS = {
    "stack2_compared": (
        "FetchStack2: demos, resets, the stack recipe",
        ["stack2", "stack2_demos", "stack2_demos_resets", "stack2_recipe"],
        "linear",
        "steps",
    ),
    "stack2_ablations_compared": (
        "FetchStack2: the stack recipe without one ingredient",
        [
            "stack2_recipe",
            "stack2_recipe_no_bc",
            "stack2_recipe_no_q_filter",
            "stack2_recipe_no_resets",
            "stack2_recipe_sparse",
            "stack2_recipe_no_demos",
        ],
        "linear",
        "steps",
    ),
    "pick_and_place_resets_compared": (
        "FetchPickAndPlace: resets to demo states",
        ["pick_and_place_demos", "pick_and_place_demos_resets"],
        "linear",
        "steps",
    ),
    "pick_and_place_compared": (
        "FetchPickAndPlace: with and without demos",
        ["pick_and_place", "pick_and_place_demos", "pick_and_place_noisy_demos", "pick_and_place_demos_resets"],
        "log",
        "steps",
    ),
    "slide_compared": (
        "FetchSlide: with and without demos",
        ["slide", "slide_demos", "slide_demos_50", "slide_demo_preset"],
        "log",
        "steps",
    ),
    "push_recipes_compared": (
        "FetchPush: the faithful and the fast recipe",
        ["push", "push_fast", "push_fast_uniform", "push_fast_256"],
        "linear",
        "steps+minutes",
    ),
    "pick_and_place_fast_compared": (
        "FetchPickAndPlace without demos: both recipes",
        ["pick_and_place", "pick_and_place_fast"],
        "linear",
        "steps+minutes",
    ),
    "pick_and_place_recipes_compared": (
        "FetchPickAndPlace, 100 demos + resets: both recipes",
        ["pick_and_place_demos_resets", "pick_and_place_demos_resets_fast", "pick_and_place_demos_resets_fast_1024"],
        "linear",
        "steps+minutes",
    ),
    "pick_and_place_screens_compared": (
        "FetchPickAndPlace without demos: the fast recipe and one more ingredient",
        ["pick_and_place_fast", "pick_and_place_fast_desired", "pick_and_place_fast_nb80", "pick_and_place_fast_1024"],
        "linear",
        "steps+minutes",
    ),
    "slide_recipes_compared": (
        "FetchSlide: the faithful and the fast recipe",
        ["slide", "slide_fast"],
        "linear",
        "steps+minutes",
    ),
    "hand_reach_compared": (
        "HandReach: the reference's exploration noise and less",
        ["hand_reach", "hand_reach_low_noise"],
        "linear",
        "steps",
    ),
}


def minute_curves(runs: list[tuple[dict, list[dict]]], points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Wall minutes ``(points,)`` and test success ``(seeds, points)``: each seed's curve read at common times.

    An epoch's success holds from the minute it ended until the next one ends; before its first epoch ends a
    seed reads NaN, and after its last one (a run that stopped early) its last value. The grid starts at the
    first epoch any seed ended.
    """
    ends = [np.array([r["time/total"] for r in rows]) / 60 for _, rows in runs]
    grid = np.linspace(min(e[0] for e in ends), max(e[-1] for e in ends), points)
    curves = []
    for end, (_, rows) in zip(ends, runs):
        success = np.array([r["test/success_rate"] for r in rows])
        index = np.searchsorted(end, grid, side="right") - 1  # the last epoch ended by each time
        curves.append(np.where(index >= 0, success[np.maximum(index, 0)], np.nan))
    return grid, np.array(curves)


def plot_comparison(name: str) -> Path | None:
    """The median test success of each row of a comparison (over its seeds) against env steps (and minutes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title, rows, xscale, axes = COMPARISONS[name]
    with_minutes = axes == "steps+minutes"
    fig, panels = plt.subplots(
        1, 2 if with_minutes else 1, figsize=(10, 3.6) if with_minutes else (5.5, 3.4), squeeze=False
    )
    drawn = 0
    for row in rows:
        runs = read_runs(row)
        if not runs:
            continue
        steps, curves = success_curves(runs)
        seeds = f"{len(runs)} seeds" if len(runs) > 1 else "1 seed"
        (line,) = panels[0, 0].plot(steps, quartiles(curves, axis=0)[1], label=f"{ROWS[row].title} ({seeds})")
        if with_minutes:
            minutes, by_time = minute_curves(runs)
            panels[0, 1].plot(minutes, np.nanmedian(by_time, axis=0), color=line.get_color())
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    panels[0, 0].set(
        title=title,
        xlabel="env steps (all MPI processes)",
        ylabel="median test success rate",
        ylim=(-0.02, 1.02),
        xscale=xscale,
    )
    if with_minutes:
        panels[0, 1].set(
            title="the same runs against wall time",
            xlabel="wall minutes (2 MPI processes on 2 cores)",
            ylim=(-0.02, 1.02),
        )
    fig.tight_layout()
    # Below the panels: row titles are long, and inside a panel the legend hid curves or spilt over its edge.
    fig.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=8, frameon=False)
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="train the seeds of a row that have no progress.csv yet")
    p_run.add_argument("row", choices=list(ROWS))
    p_run.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102])
    p_run.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="results folder to train into (default: the committed one, where finished seeds are "
        "skipped); e.g. --out runs/repeat to repeat a committed row beside it",
    )
    p_run.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="train at most this many epochs instead of the row's cap: a quick check of the setup",
    )
    p_table = sub.add_parser(
        "table", help="print the results table, write one plot per row and keep the median seeds' policies"
    )
    p_table.add_argument(
        "--write", action="store_true", help="also put the table into docs/results.md and its summary into README.md"
    )
    p_repeat = sub.add_parser(
        "repeat",
        help="re-run the first epochs of a committed run from its params.json and "
        "say whether every logged number matches",
    )
    p_repeat.add_argument("row", choices=list(ROWS))
    p_repeat.add_argument("--seed", type=int, required=True)
    p_repeat.add_argument("--epochs", type=int, default=2)
    p_window = sub.add_parser("window", help="each seed's mean test success over windows of env steps")
    p_window.add_argument("rows", nargs="+", choices=list(ROWS))
    p_window.add_argument(
        "--steps",
        type=float,
        nargs="+",
        required=True,
        help="pairs of env steps: low high [low high ...]; a window holds the epochs ending after low, up to high",
    )
    args = parser.parse_args(argv)
    if args.cmd == "run":
        if args.epochs is not None and args.epochs < 1:
            parser.error(f"--epochs must be at least 1, got {args.epochs}")
        run(args.row, args.seeds, args.out, args.epochs)
        return
    if args.cmd == "repeat":
        if args.epochs < 1:
            parser.error(f"--epochs must be at least 1, got {args.epochs}")
        print(repeat(args.row, args.seed, args.epochs))
        return
    if args.cmd == "window":
        pairs = list(zip(args.steps[::2], args.steps[1::2]))
        if len(args.steps) % 2 or any(low >= high for low, high in pairs):
            parser.error("--steps takes pairs 'low high' with low < high, e.g. --steps 160e3 200e3 360e3 400e3")
        print(windows(args.rows, pairs))
        return
    text = table()
    print(text)
    if args.write:
        write_tables(text)
    paths = [path for name in ROWS for path in (plot(name), keep_median_policy(name))]
    paths += [plot_comparison(name) for name in COMPARISONS]
    paths += [keep_best_policy(file) for file in BEST_POLICIES]
    for path in paths:
        if path:
            print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    os.environ.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")  # more MPI processes than cores: waiting ranks yield
    main()
