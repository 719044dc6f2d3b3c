"""docs/api.md, the page of the public Python names, generated from their docstrings and signatures.

    python -m her.apidoc            # rewrite docs/api.md
    python -m her.apidoc --check    # exit 1 if docs/api.md is not what the code says (tests/test_apidoc.py)

The configuration keys' table comes from the fields of ``her.config.Config``, as ``--help`` does.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import typing
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"
WIDTH = 100  # longer signatures get a parameter per line


def signature(name: str, obj: Callable[..., Any]) -> str:
    """``name(params) -> return``, annotations as written in the source (they are strings there)."""
    sig = inspect.signature(obj)
    params, star = [], False
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        text = p.name
        if p.kind is p.VAR_POSITIONAL:
            text, star = "*" + text, True
        elif p.kind is p.VAR_KEYWORD:
            text = "**" + text
        elif p.kind is p.KEYWORD_ONLY and not star:
            params.append("*")
            star = True
        if p.annotation is not p.empty:
            text += f": {p.annotation}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        params.append(text)
    returns = "" if sig.return_annotation is sig.empty else f" -> {sig.return_annotation}"
    line = f"{name}({', '.join(params)}){returns}"
    if len(line) <= WIDTH:
        return line
    return f"{name}(\n" + "".join(f"    {p},\n" for p in params) + f"){returns}"


def entry(name: str, obj: Any, level: str = "###") -> str:
    """One name: its heading, its signature (for what can be called) and its docstring."""
    if isinstance(obj, (property, cached_property)):
        obj = obj.fget if isinstance(obj, property) else obj.func
        code = f"{name}  # property"
    elif inspect.isclass(obj):
        bases = [b.__qualname__ for b in obj.__bases__ if b is not object]
        code = f"class {name}" + (f"({', '.join(bases)})" if bases and "Protocol" not in bases else "")
    else:
        code = signature(name, obj)
    doc = inspect.getdoc(obj) or ""
    return f"{level} `{name.split('(')[0]}`\n\n```python\n{code}\n```\n\n{doc}\n"


def members(cls: type, names: list[str], prefix: str) -> list[str]:
    return [entry(f"{prefix}.{name}", cls.__dict__[name], "####") for name in names]


def config_table() -> str:
    from her import config as cfg

    derived = {"gamma", "n_epochs", "log_path"}  # their defaults depend on the task (as --help says)
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in cfg.OPTIONS:
        optional = type(None) in typing.get_args(typing.get_type_hints(cfg.Config)[f.name])
        kind = cfg.base_type(f.name).__name__ + (" or None" if optional else "")
        default = "derived" if f.name in derived else f"`{f.default!r}`"
        alias = f" (also `{f.metadata['alias']}`)" if "alias" in f.metadata else ""
        meaning = f.metadata["help"].replace("|", "\\|").replace("<", "\\<")  # not a table cell, not HTML
        lines.append(f"| `{f.name}`{alias} | {kind} | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


def render() -> str:
    """The whole page."""
    from her import api, callbacks, config, errors, policy

    parts = [
        "# Python API\n",
        "Generated from the docstrings by `python -m her.apidoc`; `tests/test_apidoc.py` fails when this page and "
        "the code differ. Train from Python with `her.learn`, act with a saved policy through `her.policy.load`. "
        "Importing `her` does not import TensorFlow; the first `learn` does.\n",
        "## Training\n",
        "In the signatures, `PathLike` is `str | os.PathLike` and `Callbacks` is a callback, a list of them, or "
        "None.\n",
        entry("her.learn", api.learn),
        entry("her.resume", api.resume),
        entry("her.Run", api.Run),
        *members(api.Run, ["policy", "best_policy", "resume"], "Run"),
        "## Callbacks\n",
        (inspect.getdoc(callbacks) or "") + "\n",
        entry("her.Callback", callbacks.Callback),
        entry("her.errors.CallbackError", errors.CallbackError),
        "## Acting with a saved policy\n",
        (inspect.getdoc(policy) or "") + "\n",
        entry("her.policy.load", policy.load),
        entry("her.policy.Policy", policy.Policy),
        *members(policy.Policy, ["act", "q_value"], "Policy"),
        entry("her.policy.PolicyFileError", policy.PolicyFileError),
        "## Errors\n",
        "Bad input raises a `UserError` before anything is written (the command line's `error:` line, exit 2); a "
        "run that cannot go on raises a `TrainingError` (exit 1). Both carry the command line's one-line message.\n",
        entry("her.errors.UserError", errors.UserError),
        entry("her.config.ConfigError", config.ConfigError),
        entry("her.errors.TrainingError", errors.TrainingError),
        "## Configuration keys\n",
        "Every key is a keyword of `her.learn` and an option of `python -m her.run` (`--key value`). They are "
        "applied in layers: defaults, task overrides, the demo preset (with `demo_file`), a `recipe`, a recorded "
        "`config`, then the keys given.\n",
        config_table(),
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m her.apidoc", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the page is current (exit 1 if not)")
    parser.add_argument("--output", type=Path, default=PAGE, help=f"the page (default: {PAGE})")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.exists() and args.output.read_text() == text
        if not current:
            print(f"error: {args.output} is out of date: run python -m her.apidoc", file=sys.stderr)
        return 0 if current else 1
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
