"""The committed result policies still do what the README's table says: a guard for the env, observation and
actor paths, which a library upgrade or a refactor could otherwise break without any other test noticing.

The tests that play committed policies are research artefacts' checks, marked ``artefacts`` (CI runs them with
the rest; ``-m "not artefacts"`` leaves them out).
"""

from __future__ import annotations

import numpy as np
import pytest

import her.policy
from experiment import results
from her.envs import info_success, make_env

ROWS = [name for name in results.ROWS if (results.RESULTS / name / "policy.npz").exists()]
EPISODES = 20
# 20 episodes measure a 0.95 success rate to within about +-0.1; a broken path drops it to near 0.
MARGIN = 0.25
# A floor at or below this passes a policy that never succeeds, or one that succeeds only where the goal happens
# to lie where the task starts: such a row's play could not fail, so it is not played.
LEAST_FLOOR = 0.1


def median_final(name: str) -> float:
    return float(np.median([results.final_success(rows) for _, rows in results.read_runs(name)]))


def played(name: str) -> object:
    floor = median_final(name) - MARGIN
    if floor > LEAST_FLOOR:
        return name
    reason = (
        f"its runs end at a median success of {median_final(name):.2f}: no floor of {EPISODES} episodes "
        "tells its policy from a broken one"
    )
    return pytest.param(name, marks=pytest.mark.skip(reason=reason))


def test_every_row_of_the_table_with_runs_has_a_policy():
    with_runs = [name for name in results.ROWS if results.read_runs(name)]
    assert with_runs and set(with_runs) <= set(ROWS)


@pytest.mark.artefacts
@pytest.mark.parametrize("name", [played(name) for name in ROWS])
def test_a_committed_policy_succeeds_about_as_often_as_its_row_says(name):
    success = play_success(her.policy.load(results.RESULTS / name / "policy.npz"))
    assert success >= median_final(name) - MARGIN, (name, success)


def play_success(policy, episodes=EPISODES):
    """Success rate of deterministic episodes on env seed 12345, which no committed run used."""
    env = make_env(policy.env_id, seed=12345)
    successes = []
    for _ in range(episodes):
        obs, _ = env.reset()
        for _ in range(env.spec.max_episode_steps):
            obs, _, _, _, info = env.step(policy.act(obs))
        successes.append(info_success(info))
    return float(np.mean(successes))


@pytest.mark.artefacts
@pytest.mark.parametrize("file", [f for f in results.BEST_POLICIES if (results.RESULTS / f).exists()])
def test_a_kept_best_policy_succeeds_about_as_often_as_its_best_epoch(file):
    policy = her.policy.load(results.RESULTS / file)
    # Its best epoch's rate was measured on 40 test episodes; 20 more measure it to within about +-0.2.
    assert play_success(policy) >= policy.meta["test_success_rate"] - 0.3, policy.meta


def fake_run(folder, seed, successes, n_epochs=3, steps_per_epoch=1000, stop_success_rate=0.9, stop_patience=10):
    import csv
    import json

    folder.mkdir(parents=True)
    (folder / "params.json").write_text(
        json.dumps(
            {
                "seed": seed,
                "n_epochs": n_epochs,
                "mpi_size": 2,
                "stop_patience": stop_patience,
                "stop_success_rate": stop_success_rate,
            }
        )
    )
    with open(folder / "progress.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["epoch", "test/success_rate", "total/env_steps", "time/total"])
        writer.writeheader()
        for epoch, success in enumerate(successes):
            writer.writerow(
                {
                    "epoch": epoch,
                    "test/success_rate": success,
                    "total/env_steps": (epoch + 1) * steps_per_epoch,
                    "time/total": 60.0 * (epoch + 1),
                }
            )


def test_the_table_and_a_comparison_plot_from_known_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    monkeypatch.setattr(results, "ROWS", {"a": results.Row("Task A", "FetchReach", 3)})
    monkeypatch.setattr(results, "COMPARISONS", {"both": ("A", ["a"], "log", "steps+minutes")})
    fake_run(tmp_path / "a" / "seed1", 1, [0.2, 0.6, 0.95])
    fake_run(tmp_path / "a" / "seed2", 2, [0.5, 0.7, 0.8])
    fake_run(tmp_path / "a" / "seed3", 3, [0.1])  # unfinished: left out
    row = results.table().splitlines()[-1]
    # To 0.5: epochs 1 and 0 (2k and 1k steps; 2 and 1 min); 0.9 by seed 1 only; finals 0.583 and 0.667.
    assert row == (
        "| Task A | 1, 2 | 3, 3 (3) | 2k (1-2k) steps, 1.5 (1.0-2.0) min | 3k (3-3k) steps, 3.0 "
        f"(3.0-3.0) min; 1/2 seeds | 0.62 (0.58-0.67) | 2 on {results.CORES} | no: predate them |"
    ), row
    (tmp_path / "a" / "seed2" / "versions.json").write_text("{}")
    assert results.table().splitlines()[-1].endswith(" | 1 of 2 seeds |")
    (tmp_path / "a" / "seed1" / "versions.json").write_text("{}")
    assert results.table().splitlines()[-1].endswith(" | yes |")
    assert results.plot_comparison("both") == tmp_path / "both.png" and (tmp_path / "both.png").stat().st_size > 0


def test_minute_curves_read_each_seed_at_common_times():
    fast = ({}, [{"time/total": 60.0, "test/success_rate": 0.5}, {"time/total": 120.0, "test/success_rate": 1.0}])
    slow = ({}, [{"time/total": 180.0, "test/success_rate": 0.2}])
    minutes, curves = results.minute_curves([fast, slow], points=3)  # 1, 2 and 3 minutes
    np.testing.assert_allclose(minutes, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(curves, [[0.5, 1.0, 1.0], [np.nan, np.nan, 0.2]])


def test_a_run_is_finished_at_its_cap_or_by_its_stop_rule(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    fake_run(tmp_path / "a" / "seed1", 1, [0.95, 0.95], n_epochs=5, stop_patience=2)  # stopped by the rule
    fake_run(tmp_path / "a" / "seed2", 2, [0.95, 0.95], n_epochs=5, stop_patience=2, stop_success_rate=None)
    fake_run(tmp_path / "a" / "seed3", 3, [0.1, 0.2], n_epochs=2, stop_success_rate=None)  # at its cap
    assert [params["seed"] for params, _ in results.read_runs("a")] == [1, 3]


def test_the_readme_summary_keeps_task_to_0_9_and_final_success():
    text = (
        "| task | seeds | epochs (cap) | to 0.5 | to 0.9 | final success | MPI processes on cores |\n"
        "|---|---|---|---|---|---|---|\n"
        "| Task A | 1, 2 | 3, 3 (3) | 2k steps | 3k steps | 0.62 (0.58-0.67) | 2 on 2 |"
    )
    assert results.summary(text).splitlines()[2] == "| Task A | 3k steps | 0.62 (0.58-0.67) |"


def test_a_pooled_0_9_counts_as_reaching_0_9():
    rows = [
        {"test/success_rate": 0.85, "total/env_steps": 1000.0, "time/total": 60.0},
        {"test/success_rate": (0.95 + 0.85) / 2, "total/env_steps": 2000.0, "time/total": 120.0},
    ]
    assert results.first_reach(rows, 0.9) == (2000.0, 2.0)
    assert results.first_reach(rows, 0.95) is None


def test_window_means_compare_rows_at_equal_env_steps(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    monkeypatch.setattr(
        results, "ROWS", {"a": results.Row("A", "FetchReach", 4), "b": results.Row("B", "FetchReach", 2)}
    )
    fake_run(tmp_path / "a" / "seed1", 1, [0.1, 0.2, 0.3, 0.5], n_epochs=4, steps_per_epoch=1000)
    fake_run(tmp_path / "b" / "seed7", 7, [0.4, 0.6], n_epochs=2, steps_per_epoch=2000)
    # (0, 2k]: a's epochs at 1k and 2k, b's at 2k; (2k, 4k]: a's at 3k and 4k, b's at 4k; (4k, 6k]: none.
    assert results.windows(["a", "b"], [(0, 2000), (2000, 4000), (4000, 6000)]).splitlines() == [
        "row/seed | 0-2k | 2-4k | 4-6k",
        "a/seed1 | 0.15 | 0.40 | -",
        "b/seed7 | 0.40 | 0.60 | -",
    ]


def test_window_rejects_unpaired_steps(capsys):
    with pytest.raises(SystemExit):
        results.main(["window", "slide", "--steps", "160e3"])
    assert "pairs" in capsys.readouterr().err


def test_repeat_refuses_zero_epochs(capsys):
    with pytest.raises(SystemExit):
        results.main(["repeat", "slide", "--seed", "0", "--epochs", "0"])
    assert "--epochs must be at least 1, got 0" in capsys.readouterr().err
