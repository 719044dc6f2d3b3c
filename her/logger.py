"""Per-epoch logging: a table on stdout and one row of progress.csv (rewritten atomically) per epoch."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, TextIO
from collections.abc import Mapping, Sequence

from her import atomic


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
    """Prints a table per epoch and keeps the rows of ``progress.csv`` (written by the trainer's checkpoints).

    A closed stdout (``| head``, a pager that quit) stops the printing, not the training.
    """

    def __init__(self, rows: list[dict] | None = None):
        self.stdout: TextIO | None = sys.stdout  # None once stdout was found closed
        self.rows: list[dict[str, Any]] = list(rows or [])

    def log_epoch(self, row: Mapping[str, float]) -> None:
        self.rows.append(dict(row))
        self.print(format_table(row))

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

    The step is ``total/env_steps``, as SB3 and cleanrl log, so runs with other worker or env counts line up;
    the epoch is a scalar of its own. The configuration is written once, as text. Events are TFRecords of
    ``Event`` protos written directly, so training does not need the tensorboard package (``tf.summary`` does);
    only viewing them does.
    """

    def __init__(self, log_dir: str | Path):
        import tensorflow as tf  # only once TensorFlow is in use anyway

        self._tf = tf
        path = Path(log_dir) / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        self._writer = tf.io.TFRecordWriter(str(path))
        self._write(tf.compat.v1.Event(wall_time=time.time(), file_version="brain.Event:2"))

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
        return [{k: number(v) for k, v in row.items()} for row in csv.DictReader(f)]
