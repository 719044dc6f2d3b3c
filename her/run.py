"""The command line, ``python -m her.run`` (``her-train``; ``her-play`` is its --play): training, ``--resume`` and
``--play``, with their signals, MPI checks and one-line errors.

Every configuration key is an option, generated from the fields of ``her.config.Config``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import click

from her import config as cfg
from her import errors, mpi
from her.versions import version

_ABORT_GRACE_SECONDS = 5.0  # how long other ranks leave rank 0 to report an interruption
_METAVARS = {int: "INT", float: "FLOAT", bool: "0|1", str: "TEXT"}


def config_options(command: Callable) -> Callable:
    """One ``--key`` option per configuration field (plus its alias), all defaulting to 'not given'."""
    for f in reversed(cfg.OPTIONS):
        default = f.default
        shown = "derived" if f.name in ("gamma", "n_epochs", "log_path") else default
        help_text = f"{f.metadata['help']}  [default: {shown}]"
        metavar = _METAVARS[cfg.base_type(f.name)]
        if "alias" in f.metadata:  # an option of its own, so that build_config sees both when both are given
            alias = f.metadata["alias"]
            command = click.option(f"--{alias}", alias, default=None, metavar=metavar, help=f"the same as --{f.name}")(
                command
            )
        command = click.option(f"--{f.name}", f.name, default=None, metavar=metavar, help=help_text)(command)
    return command


# Options that choose what to do rather than configure training; they are not recorded in params.json.
_ACTION_OPTIONS = ("play", "n_episodes", "video", "render", "resume", "config", "save_demos", "only_success")

# Options that take several values, as in rl-zoo (``--env_kwargs a=1 b=2``): joined into one before click parses.
_LIST_OPTIONS = ("--gym_packages", "--env_kwargs")


def join_list_options(argv: list[str]) -> list[str]:
    """``--env_kwargs a=1 b=2 --seed 3`` -> ``--env_kwargs 'a=1 b=2' --seed 3`` (values run until the next option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        out.append(argv[i])
        i += 1
        if out[-1] in _LIST_OPTIONS:
            values = []
            while i < len(argv) and not argv[i].startswith("--"):
                values.append(argv[i])
                i += 1
            out.append(" ".join(values))
    return out


def play_options(with_play: str) -> Callable[[Any], Any]:
    """The options of playing, shared by ``python -m her.run --play`` (helps start ``with_play``) and her-play."""

    def add(command: Any) -> Any:
        for option in reversed(
            [
                click.option(
                    "--n_episodes",
                    type=int,
                    default=10,
                    show_default=True,
                    help="episodes to run with --play" if with_play else "episodes to run",
                ),
                click.option(
                    "--video",
                    default=None,
                    metavar="FILE",
                    help=f"{with_play}write the episodes to FILE (.mp4 or .gif)",
                ),
                click.option(
                    "--render",
                    type=click.BOOL,
                    default=None,
                    metavar="0|1",
                    help=f"{with_play}open a MuJoCo window (default: if a display exists)",
                ),
                click.option(
                    "--save_demos",
                    default=None,
                    metavar="FILE",
                    help=f"{with_play}save the episodes as a demo file (.npz) for --demo_file",
                ),
                click.option(
                    "--only_success", is_flag=True, help="with --save_demos: keep only the successful episodes"
                ),
            ]
        ):
            command = option(command)
        return command

    return add


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 118})
@click.version_option(version(), "--version", prog_name="her-tf2", message="%(prog)s %(version)s")
@click.option(
    "--resume",
    default=None,
    metavar="LOG_DIR",
    help="continue the run in LOG_DIR from its last complete epoch (only --n_epochs, --demo_file, "
    "--load_path and --gym_packages may be added)",
)
@click.option(
    "--config",
    default=None,
    metavar="PARAMS_JSON",
    help="start a new run from a recorded configuration (a run's params.json); flags given override it",
)
@click.option("--play", is_flag=True, help="run the policy of --load_path (a file or a log folder) instead of training")
@play_options(with_play="with --play: ")
@config_options
def main(**options: Any) -> None:
    """Train DDPG + HER (with demonstrations when --demo_file is given) on a Fetch task.

    Any configuration key can be given as --key value (or --key=value).
    """
    action = {key: options.pop(key) for key in _ACTION_OPTIONS}
    user = {key: value for key, value in options.items() if value is not None}
    comm = mpi.world()
    if action["play"]:
        return run_play(user, action, comm)
    if action["resume"] is not None:
        if action["config"] is not None:
            raise cfg.ConfigError("--resume continues a run with its own configuration: drop --config")
        if not action["resume"].strip():
            raise cfg.ConfigError(
                "--resume is an empty string (an unset shell variable?): give the log folder of a run"
            )
        extra = sorted(set(user) - {"n_epochs", "demo_file", "load_path", "gym_packages"})
        if extra:
            raise cfg.ConfigError(
                f"--resume continues a run with its own configuration: drop --{extra[0]} "
                "(only --n_epochs, to train longer, --demo_file or --load_path, for a moved "
                "file, and --gym_packages, for the modules its env needs, may be given)"
            )
        n_epochs = cfg.coerce("n_epochs", user["n_epochs"]) if "n_epochs" in user else None
        demo_file = cfg.coerce("demo_file", user["demo_file"]) if "demo_file" in user else None
        load_path = cfg.coerce("load_path", user["load_path"]) if "load_path" in user else None
        import_tensorflow_quietly()
        from her.train import resume

        gym_packages = cfg.coerce("gym_packages", user.get("gym_packages", ""))
        resume(action["resume"], n_epochs, comm, demo_file=demo_file, load_path=load_path, gym_packages=gym_packages)
        return
    if action["save_demos"] is not None or action["only_success"]:
        raise cfg.ConfigError("--save_demos and --only_success go with --play")
    recorded = cfg.read_recorded(action["config"]) if action["config"] is not None else None
    config = cfg.build_config(user, mpi_size=comm.size, recorded=recorded)
    # A default log folder is named from each rank's own clock, and ranks can straddle a second: all use rank 0's.
    config = dataclasses.replace(config, log_path=comm.bcast(config.log_path))
    check_paths(config, comm)
    import_tensorflow_quietly()  # only once the command line is known to be valid
    from her.train import train

    train(config, comm)


def check_paths(config: cfg.Config, comm: Any) -> None:
    """The log folder, --load_path and --demo_file, checked before TensorFlow's import (seconds): a mistyped path
    answers at once. Reading the files, which needs the env's dimensions, comes later."""
    from her import demo, policy_file
    from her.run_folder import check_log_dir

    def check() -> None:
        if comm.rank == 0:
            check_log_dir(config)
        if config.load_path:
            policy_file.resolve_policy_path(config.load_path)
        if config.demo_file:
            demo.check_demo_file(config.demo_file)

    mpi.on_every_rank(comm, check, (errors.UserError,))


def import_tensorflow_quietly() -> None:
    """Import TensorFlow without its start-up lines (oneDNN notice, absl and CUDA warnings).

    They are written by C++ code at import, some whatever TF_CPP_MIN_LOG_LEVEL says, so stderr's descriptor is
    pointed at a temporary file for the import; if the import fails, what it wrote is shown after all. Later
    logging follows TF_CPP_MIN_LOG_LEVEL (1, warnings and errors, unless the shell sets it).
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def run_play(user: dict[str, Any], action: dict[str, Any], comm: Any) -> None:
    if comm.size > 1:
        raise cfg.ConfigError("--play runs on one process: start it without mpirun")
    if not user.get("load_path"):
        raise cfg.ConfigError("--play needs --load_path <policy file or log folder>")
    unused = sorted(set(user) - {"load_path", "env", "seed", "gym_packages"})
    if unused or action["config"] is not None:
        raise cfg.ConfigError(
            f"--play takes --load_path, --env, --seed, --gym_packages, --n_episodes, --video, "
            f"--render, --save_demos and --only_success, not --{unused[0] if unused else 'config'}: "
            "the policy file holds its configuration"
        )
    if action["only_success"] and action["save_demos"] is None:
        raise cfg.ConfigError("--only_success selects the episodes --save_demos keeps: add --save_demos FILE")
    from her.play import play

    cfg.check_path("load_path", user["load_path"])  # a name too long for the file system is one line too
    play(
        user["load_path"],
        env=user.get("env"),
        n_episodes=action["n_episodes"],
        video=action["video"],
        seed=cfg.coerce("seed", user.get("seed", 0)),
        render=action["render"],
        save_demos=action["save_demos"],
        only_success=action["only_success"],
        gym_packages=cfg.coerce("gym_packages", user.get("gym_packages", "")),
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 118})
@click.option("--load_path", default=None, metavar="PATH", help="a policy file, or a log folder (its policy_best.npz)")
@click.option("--env", default=None, metavar="TEXT", help="play on another version of the policy's task")
@click.option("--seed", default=None, metavar="INT", help="seed of the env's resets  [default: 0]")
@click.option(
    "--gym_packages",
    default=None,
    metavar="TEXT",
    help="modules to import that register the policy's env (a policy file imports none by itself)",
)
@play_options(with_play="")
def play_main(
    load_path: str | None, env: str | None, seed: str | None, gym_packages: str | None, **action: Any
) -> None:
    """Play a trained policy: deterministic episodes, each one's return and success, and the success rate."""
    given = {"load_path": load_path, "env": env, "seed": seed, "gym_packages": gym_packages}
    user = {key: value for key, value in given.items() if value is not None}
    run_play(user, {**action, "play": True, "config": None}, mpi.world())


def cli(  # noqa: C901 - one except per kind of ending, each with its exit code
    argv: list[str] | None = None,
    prog_name: str = "python -m her.run",
    command: click.Command = main,
) -> int:
    """Run the command; user errors become one line on stderr and exit code 2, training errors exit code 1."""
    from her.errors import Interrupted, TrainingError, UserError

    try:
        comm = mpi.world()
    except UserError as e:  # an mpirun of another MPI: every process is alone, so each says it
        print(f"error: {e}", file=sys.stderr)
        return 2
    argv = join_list_options(sys.argv[1:] if argv is None else list(argv))

    # Every error below is raised on all ranks together (the parse is the same everywhere, and train() checks
    # per-rank inputs with mpi.on_every_rank), so rank 0 alone says it; anything else aborts the whole job.
    def fail(message: str, code: int) -> int:
        if comm.rank == 0:
            print(f"error: {message}", file=sys.stderr)
        return code

    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.NoSuchOption as e:
        if command is not main:
            return fail(f"{prog_name} has no option {e.option_name}; see {prog_name} --help", 2)
        return fail(
            f"unknown configuration key {e.option_name}{cfg.nearest_key(e.option_name)}; see --help for every key", 2
        )
    except click.UsageError as e:
        return fail(e.format_message().replace("\n", " "), 2)
    except UserError as e:
        return fail(str(e), 2)
    except TrainingError as e:
        return fail(str(e), 1)
    except Interrupted as e:
        if comm.rank != 0:
            # Rank 0 says where to resume, then aborts the job (and this rank with it). An abort from here
            # first could kill rank 0 before its line; this rank speaks only if rank 0 has not ended the job
            # by then, as when rank 0 is blocked in a collective waiting for this rank. The abort reaches this
            # rank as SIGTERM: it must end it quietly, not raise a second interruption.
            if _main_thread():
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
            time.sleep(_ABORT_GRACE_SECONDS)
        print(e, file=sys.stderr, flush=True)
        if comm.size > 1:
            # A signal reaches the ranks at different moments: one may wait in a collective for a rank that
            # has stopped, and a plain exit would then hang in MPI_Finalize. Abort ends every rank at once.
            comm.abort(e.exit_code)
        return e.exit_code
    except (KeyboardInterrupt, click.Abort) as e:  # before training started; click turns Ctrl-C into Abort
        print("stopped before training started: nothing was written", file=sys.stderr)
        return 143 if isinstance(e, errors.Terminated) else 130
    except Exception as e:  # noqa: BLE001 - any other failure must stop every MPI rank, not just this one
        mpi.fail_job(comm, e)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM (schedulers, ``timeout``, ``kill``) stops training like Ctrl-C: at once, with where to resume."""
    raise errors.Terminated()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(cli())
