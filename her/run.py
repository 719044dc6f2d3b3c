"""Command line: ``python -m her.run [--key value ...]``. It only parses, builds the configuration and calls train.

Every configuration key is an option, generated from the fields of ``experiment.config.Config``.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import click

from experiment import config as cfg
from her import mpi

_METAVARS = {int: "INT", float: "FLOAT", bool: "0|1", str: "TEXT"}


def config_options(command: Callable) -> Callable:
    """One ``--key`` option per configuration field (plus its alias), all defaulting to 'not given'."""
    for f in reversed(cfg.OPTIONS):
        names = [f"--{f.name}"]
        if "alias" in f.metadata:
            names.append(f"--{f.metadata['alias']}")
        default = f.default
        shown = "derived" if f.name in ("gamma", "n_epochs", "log_path") else default
        help_text = f"{f.metadata['help']}  [default: {shown}]"
        metavar = _METAVARS[cfg._base_type(f.name)]
        command = click.option(*names, f.name, default=None, metavar=metavar, help=help_text)(command)
    return command


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 118})
@config_options
def main(**options: Any) -> None:
    """Train DDPG + HER (with demonstrations when --demo_file is given) on a Fetch task.

    Any configuration key can be given as --key value (or --key=value).
    """
    user = {key: value for key, value in options.items() if value is not None}
    comm = mpi.world()
    config = cfg.build_config(user, mpi_size=comm.size)
    from her.train import train  # TensorFlow is imported only once the command line is known to be valid

    train(config, comm)


def cli(argv: list[str] | None = None) -> int:
    """Run the command; user errors become one line on stderr and exit code 2."""
    from her.checkpoint import PolicyFileError

    comm = mpi.world()

    def user_error(message: str) -> int:
        if comm.rank == 0:
            print(f"error: {message}", file=sys.stderr)
        return 2

    try:
        main.main(args=argv, prog_name="python -m her.run", standalone_mode=False)
    except click.NoSuchOption as e:
        return user_error(f"unknown configuration key {e.option_name}{cfg.nearest_key(e.option_name)}; "
                          "see --help for every key")
    except click.UsageError as e:
        return user_error(e.format_message().replace("\n", " "))
    except (cfg.ConfigError, PolicyFileError) as e:
        return user_error(str(e))
    except KeyboardInterrupt:
        print("interrupted: files written so far are complete", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - any other failure must stop every MPI rank, not just this one
        mpi.fail_job(comm, e)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
