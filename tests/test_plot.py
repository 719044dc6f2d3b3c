"""her/plot.py: grouping of runs by configuration, the figure, the PNG and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from her import plot
from her.logger import rows_to_csv

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BASE = {
    "env": "FetchReach",
    "env_id": "FetchReach-v4",
    "replay_k": 4,
    "n_epochs": 3,
    "mpi_size": 1,
    "demo_file": None,
    "load_path": None,
}


def make_run(root: Path, name: str, epochs: int = 3, success: float = 0.5, **params) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "params.json").write_text(json.dumps({**BASE, "log_path": str(folder), **params}))
    rows = [
        {
            "epoch": e,
            "test/success_rate": success * (e + 1) / epochs,
            "test/mean_Q": -1.0,
            "total/env_steps": 1000 * (e + 1),
        }
        for e in range(epochs)
    ]
    (folder / "progress.csv").write_text(rows_to_csv(rows))
    return folder


@pytest.fixture
def three_runs(tmp_path):
    return [
        make_run(tmp_path, "a", seed=0, success=0.4),
        make_run(tmp_path, "b", seed=1, success=0.8),
        make_run(tmp_path, "c", seed=0, replay_k=8),
    ]


def legend_texts(fig) -> list[str]:
    (legend,) = fig.legends  # one legend for both panels
    return [t.get_text() for t in legend.get_texts()]


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > len(PNG_SIGNATURE) and data.startswith(PNG_SIGNATURE)


def test_seeds_and_paths_do_not_split_a_group_but_other_keys_do():
    params = [
        {**BASE, "seed": 0, "log_path": "runs/a-20240101-000000"},
        {**BASE, "seed": 1, "log_path": "runs/b-20240101-000100", "load_path": "x.npz", "env": "FetchReach-v4"},
        {**BASE, "seed": 0, "log_path": "runs/c", "replay_k": 8},
        {**BASE, "seed": 2, "log_path": "runs/d", "demo_file": "data.npz"},
        {**BASE, "seed": 3, "log_path": "runs/e", "replay_k": 8},
    ]
    assert plot.group_params(params) == [[0, 1], [2, 4], [3]]


def test_labels_name_task_differing_keys_and_run_count():
    groups = [[{**BASE, "seed": 0}, {**BASE, "seed": 1}], [{**BASE, "demo_file": "data.npz", "seed": 0}]]
    assert plot.group_labels(groups) == ["FetchReach demo_file=None (n=2)", "FetchReach demo_file=data.npz (n=1)"]
    assert plot.group_labels(groups[:1]) == ["FetchReach"]
    other_task = [[BASE], [{**BASE, "env": "FetchPush", "env_id": "FetchPush-v4"}]]
    assert plot.group_labels(other_task) == ["FetchReach (n=1)", "FetchPush (n=1)"]


def test_median_and_quartiles_per_epoch_over_the_runs_that_reached_it(tmp_path):
    runs = plot.load_runs(
        [make_run(tmp_path, "long", epochs=4, success=1.0), make_run(tmp_path, "short", epochs=2, success=0.5, seed=1)]
    )
    curve = plot.aggregate(runs, "test/success_rate")
    np.testing.assert_array_equal(curve["epoch"], [0, 1, 2, 3])
    np.testing.assert_allclose(curve["median"], [(0.25 + 0.25) / 2, (0.5 + 0.5) / 2, 0.75, 1.0])
    np.testing.assert_array_equal(curve["total/env_steps"], [1000, 2000, 3000, 4000])
    smoothed = plot.aggregate(runs[:1], "test/success_rate", window=2)["median"]
    np.testing.assert_allclose(smoothed, [0.25, 0.375, 0.625, 0.875])


def test_plot_writes_a_png_with_one_legend_entry_per_group(three_runs, tmp_path):
    out = tmp_path / "plot.png"
    fig = plot.plot(three_runs, out)
    assert_png(out)
    assert legend_texts(fig) == ["FetchReach replay_k=4 (n=2)", "FetchReach replay_k=8 (n=1)"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["epoch", "env steps (all MPI processes)"]
    assert not list(tmp_path.glob(".plot.png.*"))  # no temp file left behind


def test_folders_without_progress_are_skipped_with_a_warning(three_runs, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    fig = plot.plot([*three_runs, empty], tmp_path / "p.png")
    assert len(legend_texts(fig)) == 2
    assert capsys.readouterr().err == f"warning: skipping {empty}: no progress.csv\n"


def test_no_usable_folder_is_a_one_line_error_and_exit_code_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(plot.PlotError):
        plot.load_runs([tmp_path / "empty"])
    capsys.readouterr()
    assert plot.main([str(tmp_path / "empty"), "--output", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("error: ") and len(err) == 2  # the warning, then the error
    assert not (tmp_path / "p.png").exists()


def test_the_output_suffix_chooses_the_format_and_others_are_refused(three_runs, tmp_path, capsys):
    plot.plot(three_runs, tmp_path / "p.pdf")
    assert (tmp_path / "p.pdf").read_bytes().startswith(b"%PDF")
    plot.plot(three_runs, tmp_path / "p.svg")
    assert b"<svg" in (tmp_path / "p.svg").read_bytes()[:1000]
    assert plot.main([*map(str, three_runs), "--output", str(tmp_path / "p.jpeg")]) == 2
    assert capsys.readouterr().err == f"error: --output {tmp_path / 'p.jpeg'}: name a .png, .pdf or .svg file\n"


def test_a_progress_csv_cut_short_is_skipped_with_a_warning(three_runs, tmp_path, capsys):
    cut = tmp_path / "cut"
    cut.mkdir()
    text = (three_runs[0] / "progress.csv").read_text()
    (cut / "progress.csv").write_text(text[: text.index("\n", text.index("\n") + 1) + 5])  # a row cut after 5 chars
    fig = plot.plot([*three_runs, cut], tmp_path / "p.png")
    assert len(legend_texts(fig)) == 2
    assert capsys.readouterr().err == (
        f"warning: skipping {cut}: line 3 of {cut / 'progress.csv'} does not have one cell per column (cut short?)\n"
    )


def test_unknown_key_is_an_error(three_runs, tmp_path, capsys):
    assert plot.main([*map(str, three_runs), "--key", "no/such", "--output", str(tmp_path / "p.png")]) == 2
    assert "no/such" in capsys.readouterr().err


def test_cli_as_a_script(three_runs, tmp_path):
    script = Path(plot.__file__)
    result = subprocess.run(
        [sys.executable, str(script), *map(str, three_runs), "--key", "test/mean_Q", "--smooth", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "plot.png"  # the default output, in the current folder
    assert_png(tmp_path / "plot.png")


def test_a_params_json_that_is_no_object_is_skipped_with_a_warning(three_runs, tmp_path, capsys):
    listed = make_run(tmp_path, "listed")
    (listed / "params.json").write_text("[1, 2]")
    fig = plot.plot([*three_runs, listed], tmp_path / "p.png")
    assert len(legend_texts(fig)) == 2
    assert capsys.readouterr().err == (
        f"warning: skipping {listed}: its params.json is a JSON list, not a run's configuration\n"
    )


@pytest.mark.parametrize(
    "output, expected",
    [
        ("nodir/x.png", "folder {tmp}/nodir does not exist"),
        ("a" * 300 + ".png", "longer than the 255 bytes a file system allows"),
    ],
)
def test_an_output_that_cannot_be_written_is_named_before_any_work(three_runs, tmp_path, capsys, output, expected):
    assert plot.main([*map(str, three_runs), "--output", str(tmp_path / output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --output {tmp_path / output}") and err.count("\n") == 1
    assert expected.format(tmp=tmp_path) in err and ".tmp" not in err
