"""Per-epoch logging: a table on stdout, the rows of progress.csv, and the log backends (``LogWriter``).

progress.csv is written inside each checkpoint, so the log and the state it resumes from never disagree;
the backends (TensorBoard today) receive an epoch once its checkpoint is committed. A new backend is a class
with the three methods of ``LogWriter`` and a line in ``make_writers``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from her import atomic

if TYPE_CHECKING:
    from her.config import Config


class LogWriter(Protocol):
    """A log backend, on rank 0: the configuration once, then each committed epoch's row, then close."""

    def write_config(self, params: Mapping[str, Any]) -> None: ...
    def write(self, row: Mapping[str, float]) -> None: ...
    def close(self) -> None: ...


def make_writers(config: Config, log_dir: str | Path, rows: Sequence[Mapping[str, float]] = ()) -> list[LogWriter]:
    """The backends ``config`` asks for, each already given the configuration and, on a resume, the committed
    ``rows`` it lacks (a kill between a commit and the backend's write loses none)."""
    writers: list[LogWriter] = []
    if config.tensorboard:
        writers.append(TensorBoardWriter(log_dir, rows))
    for writer in writers:
        writer.write_config(config.to_dict())
    return writers


def format_table(row: Mapping[str, float]) -> str:
    """The epoch's metrics as a two-column table, as the reference prints them."""

    def fmt(value: float) -> str:
        if isinstance(value, float) and not value.is_integer():
            return f"{value:.4g}"
        return f"{value:g}" if isinstance(value, float) else str(value)

    cells = [(key, fmt(value)) for key, value in row.items()]
    key_width = max(len(k) for k, _ in cells)
    value_width = max(len(v) for _, v in cells)
    rule = "-" * (key_width + value_width + 7)
    lines = [rule] + [f"| {k:<{key_width}} | {v:<{value_width}} |" for k, v in cells] + [rule]
    return "\n".join(lines)


class Logger:
    """Prints a table per epoch, keeps the rows of ``progress.csv`` (written by the trainer's checkpoints) and
    passes committed epochs on to the backends.

    A closed stdout (``| head``, a pager that quit) stops the printing, not the training.
    """

    def __init__(self, rows: list[dict] | None = None, writers: Sequence[LogWriter] = ()):
        self.stdout: TextIO | None = sys.stdout  # None once stdout was found closed
        self.rows: list[dict[str, Any]] = list(rows or [])
        self.writers = list(writers)

    def log_epoch(self, row: Mapping[str, float]) -> None:
        """Before the epoch's checkpoint: the row joins progress.csv's and is printed."""
        self.rows.append(dict(row))
        self.print(format_table(row))

    def committed(self, row: Mapping[str, float]) -> None:
        """After the epoch's checkpoint is committed: the backends get the row (a resume never repeats it)."""
        for writer in self.writers:
            writer.write(row)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()

    def print(self, text: str) -> None:
        if self.stdout is None:
            return
        try:
            print(text, file=self.stdout, flush=True)
        except BrokenPipeError:
            # Point the descriptor at /dev/null too, so that the interpreter's flush at exit stays quiet.
            if self.stdout is sys.stdout:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            self.stdout = None

    def csv_text(self) -> str:
        return rows_to_csv(self.rows)


def write_params(log_dir: str | Path, params: Mapping[str, Any]) -> None:
    atomic.write_text(Path(log_dir) / "params.json", json.dumps(params, indent=2, sort_keys=True) + "\n")


class TensorBoardWriter:
    """Every logged scalar as a TensorBoard event on the env-step axis (``tensorboard --logdir runs``).

    The step is ``total/env_steps``, as SB3 and cleanrl log, so runs with other MPI process or env counts line up;
    the epoch is a scalar of its own. The configuration is written once, as text. Events are TFRecords of
    ``Event`` protos written directly, so training does not need the tensorboard package (``tf.summary`` does);
    only viewing them does.
    """

    def __init__(self, log_dir: str | Path, rows: Sequence[Mapping[str, float]] = ()):
        import tensorflow as tf  # only once TensorFlow is in use anyway

        self._tf = tf
        written = self.epochs_written(log_dir) if rows else set()
        # TensorBoard's own names add the pid and a count: a resume within the same second must not truncate the
        # file of the session before it.
        base = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        path = next(path for n in itertools.count() if not (path := Path(log_dir) / f"{base}.{n}").exists())
        self._writer = tf.io.TFRecordWriter(str(path))
        self._write(tf.compat.v1.Event(wall_time=time.time(), file_version="brain.Event:2"))
        for row in rows:
            if row.get("epoch") not in written:
                self.write(row)

    def epochs_written(self, log_dir: str | Path) -> set[float]:
        """The epochs the folder's event files hold, up to the first damaged record of each (a kill mid-write)."""
        tf = self._tf
        epochs: set[float] = set()
        for path in Path(log_dir).glob("events.out.tfevents.*"):
            try:
                for record in tf.data.TFRecordDataset(str(path)):
                    event = tf.compat.v1.Event.FromString(record.numpy())
                    epochs.update(v.simple_value for v in event.summary.value if v.tag == "epoch")
            except (tf.errors.OpError, ValueError):  # a record cut short or corrupted: the rest is unreadable
                continue
        return epochs

    def _write(self, event: Any) -> None:
        self._writer.write(event.SerializeToString())

    def write(self, row: Mapping[str, float]) -> None:
        Summary = self._tf.compat.v1.Summary
        values = [Summary.Value(tag=key, simple_value=float(value)) for key, value in row.items()]
        step = int(row["total/env_steps"])
        self._write(self._tf.compat.v1.Event(wall_time=time.time(), step=step, summary=Summary(value=values)))
        self._writer.flush()

    def write_config(self, params: Mapping[str, Any]) -> None:
        """The configuration as a two-column markdown table in TensorBoard's text tab."""
        tf = self._tf
        lines = ["| key | value |", "|---|---|"] + [f"| {key} | {json.dumps(params[key])} |" for key in sorted(params)]
        meta = tf.compat.v1.SummaryMetadata(plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="text"))
        value = tf.compat.v1.Summary.Value(tag="config", metadata=meta, tensor=tf.make_tensor_proto("\n".join(lines)))
        self._write(tf.compat.v1.Event(wall_time=time.time(), step=0, summary=tf.compat.v1.Summary(value=[value])))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    fieldnames: list[str] = []
    for row in rows:
        fieldnames += [key for key in row if key not in fieldnames]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_progress(path: str | Path) -> list[dict[str, float]]:
    """Rows of a progress.csv; integer cells as int, others as float (empty cells NaN).

    Written back with ``rows_to_csv``, the rows give the same text: a resumed run keeps its earlier rows exactly.
    """

    def number(text: str) -> float:
        if text == "":
            return float("nan")
        try:
            return int(text)
        except ValueError:
            return float(text)

    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = []
        for row in reader:
            if None in row.values() or None in row:  # csv's marks of too few or too many cells
                raise ValueError(f"line {reader.line_num} of {path} does not have one cell per column (cut short?)")
            rows.append({k: number(v) for k, v in row.items()})
        return rows
