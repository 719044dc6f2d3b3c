"""A hyperparameter search with Optuna over two keys of FetchReach, pruning poor trials through the callback.

    pip install -e '.[tune]'
    python examples/tune.py                    # 12 trials of at most 5 epochs each

Each trial is one ``her.learn`` in this process, with a log folder of its own under ``runs/tune``; its callback
reports every epoch's test success rate to Optuna and stops the run as soon as Optuna prunes the trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna

import her


def objective(trial: optuna.Trial, folder: Path, **keys: Any) -> float:
    """The mean test success rate over a trial's epochs: how fast it learns, not only where it ends."""
    params = {"replay_k": trial.suggest_int("replay_k", 0, 8), "noise_eps": trial.suggest_float("noise_eps", 0.05, 0.5)}
    pruned = False

    def report(row: Mapping[str, float]) -> bool:
        nonlocal pruned
        trial.report(row["test/success_rate"], step=int(row["epoch"]))
        pruned = trial.should_prune()
        return pruned  # True stops the run after this epoch, its policies written

    run = her.learn(
        **{"env": "FetchReach", "n_epochs": 5, "seed": 0, **keys, **params},
        log_path=folder / f"trial_{trial.number}",
        callback=report,
    )
    if pruned:
        raise optuna.TrialPruned()
    return sum(row["test/success_rate"] for row in run.rows) / len(run.rows)


def main(
    n_trials: int = 12, folder: str | Path = "runs/tune", pruner: optuna.pruners.BasePruner | None = None, **keys: Any
) -> optuna.Study:
    """Run the search (one seed for every trial, so they differ only by their keys); ``keys`` go to every run."""
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )
    study.optimize(lambda trial: objective(trial, Path(folder), **keys), n_trials=n_trials)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    if done:
        print(
            f"best of {len(done)} complete trials: {study.best_params}, mean success {study.best_value:.3f} "
            f"({Path(folder) / f'trial_{study.best_trial.number}'})"
        )
    return study


if __name__ == "__main__":
    main()
