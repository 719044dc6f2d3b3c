"""Per-epoch logging: the printed table, progress.csv's rows, and what a log backend (LogWriter) receives."""

from __future__ import annotations

from conftest import tiny_run

from her import logger
from her.config import build_config


class Recording:
    """A LogWriter that keeps what it was given."""

    def __init__(self):
        self.calls = []

    def write_config(self, params):
        self.calls.append(("config", params["seed"]))

    def write(self, row):
        self.calls.append(("row", row["epoch"]))

    def close(self):
        self.calls.append(("close",))


def test_the_table_lines_up_keys_and_values():
    assert logger.format_table({"epoch": 3, "test/success_rate": 0.25, "total/env_steps": 2000.0}) == "\n".join(
        [
            "-" * 28,
            "| epoch             | 3    |",
            "| test/success_rate | 0.25 |",
            "| total/env_steps   | 2000 |",
            "-" * 28,
        ]
    )


def test_backends_get_an_epoch_only_once_it_is_committed(capsys):
    writer = Recording()
    log = logger.Logger(rows=[{"epoch": 0}], writers=[writer])
    log.log_epoch({"epoch": 1})
    assert writer.calls == [] and "| epoch | 1 |" in capsys.readouterr().out
    log.committed({"epoch": 1})
    log.close()
    assert writer.calls == [("row", 1), ("close",)]
    assert log.csv_text() == "epoch\n0\n1\n"


def test_a_run_gives_its_backends_the_config_then_every_epoch_then_close(tmp_path, monkeypatch):
    from her import train

    writer = Recording()

    def make_writers(config, log_dir, rows=()):
        writer.write_config(config.to_dict())
        return [writer]

    monkeypatch.setattr(train, "make_writers", make_writers)
    rows = train.train(build_config(tiny_run(n_epochs=2, log_path=tmp_path / "run")))
    assert [row["epoch"] for row in rows] == [0, 1]
    assert writer.calls == [("config", 3), ("row", 0), ("row", 1), ("close",)]


def test_the_tensorboard_backend_is_made_only_when_asked_for(tmp_path):
    assert logger.make_writers(build_config(tiny_run(tensorboard=False)), tmp_path) == []
    (writer,) = logger.make_writers(build_config(tiny_run(tensorboard=True)), tmp_path)
    writer.close()
    assert isinstance(writer, logger.TensorBoardWriter) and len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
