"""What her-demos and her-plot share on top of click: value types and usage errors worded as they were under
argparse (``argument --seed: invalid int value: 'x'``, ``unrecognized arguments: --bogus``), so that scripts
and users matching those lines keep working now that all four commands use click.

``run`` calls a command as ``her.run.cli`` does: a usage error becomes one ``error:`` line on stderr and exit
code 2; whatever the command's function returns is the exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

# Context settings of every command: -h as well as --help (as argparse had), and lines as wide as run.py's.
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 118}


class _Number(click.ParamType):
    """int or float as argparse's ``type=`` took them (int("+3"), float("inf")), with its wording on failure."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = kind.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.kind):
            return value
        try:
            return self.kind(value)
        except (TypeError, ValueError):
            self.fail(f"invalid {self.name} value: {value!r}", param, ctx)


INT = _Number(int)
FLOAT = _Number(float)


class Choice(click.Choice):
    """click.Choice with argparse's message and its ``{a,b}`` metavar."""

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "{" + ",".join(map(str, self.choices)) + "}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in self.choices:
            return value
        choices = ", ".join(repr(c) for c in self.choices)
        self.fail(f"invalid choice: {value!r} (choose from {choices})", param, ctx)


def usage_message(error: click.UsageError, argv: Sequence[str]) -> str:
    """click's usage error in argparse's words (``argv`` tells a flag given a value from one missing its own)."""
    if isinstance(error, click.NoSuchOption):
        return f"unrecognized arguments: {error.option_name}"
    if isinstance(error, click.MissingParameter) and isinstance(error.param, click.Argument):
        return f"the following arguments are required: {error.param.name}"
    if isinstance(error, click.BadParameter) and error.param is not None:
        name = error.param.opts[0] if isinstance(error.param, click.Option) else error.param.name
        return f"argument {name}: {error.message}"
    if isinstance(error, click.BadOptionUsage):
        explicit = [arg.partition("=")[2] for arg in argv if arg.startswith(f"{error.option_name}=")]
        if explicit:  # --flag=value for an option that takes none
            return f"argument {error.option_name}: ignored explicit argument {explicit[0]!r}"
        return f"argument {error.option_name}: expected one argument"
    return error.format_message().replace("\n", " ")


def reject_extra_args(ctx: click.Context) -> None:
    """For commands with ``allow_extra_args``: stray positional arguments, named as argparse named them."""
    if ctx.args:
        raise click.UsageError(f"unrecognized arguments: {' '.join(ctx.args)}")


def run(command: click.Command, argv: Sequence[str] | None, prog_name: str | None = None) -> int:
    """Run ``command`` on ``argv`` (default: the process's arguments); a usage error is one line and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.UsageError as e:
        print(f"error: {usage_message(e, args)}", file=sys.stderr)
        return 2
    except click.Abort:  # click's rewording of Ctrl-C: keep Python's, as under argparse
        raise KeyboardInterrupt from None
    return int(code or 0)
