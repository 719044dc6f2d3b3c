"""The command line of ``her-demos`` (also ``python -m her.experts`` and ``experiment/data_generation/
fetch_data_generation.py``): generate scripted demonstrations with ``her.experts``, as an .npz or a Minari
dataset, or convert demos between the two (``her.demo_convert``). Errors are one line: exit 2 for bad
arguments, 1 when generating or writing failed.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click

from her import cli, experts
from her.experts import Expert, Generated, GenerationError, generate


def default_output(env_id: str, num_episodes: int) -> str:
    """``data_fetch_random_<N>.npz`` for FetchPickAndPlace (the reference's name), ``data_fetch_<task>_<N>.npz``
    for the other Fetch tasks, ``data_<task>_<N>.npz`` for any other (``data_panda_stack_100.npz``)."""
    from her.envs import task_name

    task = task_name(env_id.split(":")[-1])
    if task == "FetchPickAndPlace":
        return f"data_fetch_random_{num_episodes}.npz"
    fetch = task.startswith("Fetch")
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", task.removeprefix("Fetch")).lower()
    return f"data_fetch_{words}_{num_episodes}.npz" if fetch else f"data_{words}_{num_episodes}.npz"


FORMATS = ("npz", "minari")


@click.command(
    context_settings={**cli.CONTEXT, "allow_extra_args": True},
    help="Write scripted demonstrations for a goal env as an .npz of plain arrays (decision D11): o, ag (E, T+1, "
    "dim), g, u (E, T, dim), info_is_success (E, T, 1), env_id, format, version, and the simulator state of "
    "every observation, state/<name> (E, T+1, size).",
    epilog="Episode i starts from env.reset(seed=SeedSequence(seed, spawn_key=(i,))), so the same command writes "
    "the same file. Exit codes: 0 written, 1 --only_success gave up, 2 bad arguments.",
)
@click.option(
    "--env",
    default="FetchPickAndPlace",
    metavar="ENV",
    help=f"task: {', '.join(experts.all_experts())}, or a gymnasium id such as FetchPush-v4 or "
    "module:EnvId (with --expert, any goal env) (default: FetchPickAndPlace)",
)
@click.option(
    "--expert",
    default=None,
    metavar="MODULE:CALLABLE",
    help="your own expert instead of the task's: a function from the observation dict to an action, "
    "or a class whose instances are (one per episode); e.g. examples.reach_expert:expert",
)
@click.option(
    "--num_episodes", type=cli.INT, default=100, metavar="NUM_EPISODES", help="episodes to write (default: 100)"
)
@click.option("--seed", type=cli.INT, default=0, metavar="SEED", help="seed of the episode resets (default: 0)")
@click.option(
    "--output",
    default=None,
    metavar="OUTPUT",
    help="file to write; default data_fetch_random_<N>.npz for PickAndPlace (the reference's "
    "name) and data_fetch_<task>_<N>.npz otherwise, e.g. data_fetch_push_100.npz",
)
@click.option(
    "--only_success", is_flag=True, help="keep only successful episodes, running more until --num_episodes succeed"
)
@click.option(
    "--max_attempts",
    type=cli.INT,
    default=None,
    metavar="MAX_ATTEMPTS",
    help="with --only_success, give up after this many episodes (default: 10 x --num_episodes)",
)
@click.option(
    "--noise",
    type=cli.FLOAT,
    default=0.0,
    metavar="NOISE",
    help="std of Gaussian noise added to the expert's actions, as executed and recorded: a weaker "
    "expert, or (0.1) one shown off its path and recovering, as the stack recipe wants "
    "(default: 0.0)",
)
@click.option("--uncompressed", is_flag=True, help="store the arrays without deflate compression")
@click.option(
    "--format",
    type=cli.Choice(FORMATS),
    default="npz",
    help="npz: this project's file; minari: a local Minari dataset (in $MINARI_DATASETS_PATH, "
    "else ~/.minari/datasets) whose id is --output, default her/<task>/expert-<N>-v0; needs "
    "pip install 'her-tf2[minari]' (default: npz)",
)
@click.option(
    "--convert",
    metavar="SOURCE",
    default=None,
    help="convert demos instead of generating them: an .npz to the Minari dataset --output (an id), "
    "or a Minari dataset (an id or its folder) to the .npz --output; every array is kept",
)
@click.option(
    "--gym_packages",
    default="",
    metavar="MODULES",
    help="with --convert: modules to import that register the env an .npz names (a demo file imports none by itself)",
)
@click.pass_context
def _command(ctx: click.Context, **options: Any) -> int:
    cli.reject_extra_args(ctx)
    return _run(SimpleNamespace(**options))


def _check_output(path: Path) -> str | None:
    from her.config import ConfigError, check_path

    try:
        check_path("output", str(path))
    except ConfigError as err:
        return str(err)
    if path.is_dir():
        return f"--output {path} is a directory"
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return f"--output {path}: folder {parent} does not exist"
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"--output {path} is not writable"
    return None


def main(argv: list[str] | None = None) -> int:
    """her-demos on ``argv`` (default: the process's arguments); returns the exit code."""
    return cli.run(_command, argv)


def _run(args: SimpleNamespace) -> int:
    def fail(message: str, code: int = 2) -> int:
        print(f"error: {message}", file=sys.stderr)
        return code

    from her.demo import save_demos
    from her.envs import resolve_env_id
    from her.errors import TrainingError, UserError

    if args.convert:
        try:
            return _convert(args.convert, args.output, args.gym_packages)
        except UserError as err:
            return fail(str(err))
        except TrainingError as err:  # a write that failed (a full disk)
            return fail(str(err), code=1)
    try:
        env_id = resolve_env_id(args.env)
        expert = experts.load_expert(args.expert) if args.expert else experts.expert_for(env_id)
    except ValueError as err:
        return fail(str(err))
    problem = _number_problem(args)
    if problem:
        return fail(problem)
    if args.format == "minari":
        return _generate_minari(args, env_id, expert, fail)
    output = Path(args.output or default_output(env_id, args.num_episodes))
    problem = _check_output(output)
    if problem:
        return fail(problem)

    try:
        result = _generate(args, env_id, expert)
    except GenerationError as err:
        return fail(str(err), code=1)
    except Exception as err:  # noqa: BLE001 - the expert or the env failed mid-episode: one line, no file
        if args.expert is None:
            raise
        return fail(f"--expert {args.expert} failed while acting ({type(err).__name__}: {err})", code=1)
    try:
        save_demos(
            output, result.episodes, env_id, compresslevel=None if args.uncompressed else 1, no_states=result.no_states
        )
    except OSError as err:
        return fail(f"cannot write {output}: {err.strerror or err}")

    _summary(args, result)
    print(f"wrote {args.num_episodes} episodes of {env_id} (T={result.episodes['u'].shape[1]}) to {output}")
    return 0


def _generate(args: SimpleNamespace, env_id: str, expert: Expert | type) -> Generated:
    """The episodes the command line asks for, whichever format they are written in."""
    return generate(
        env_id,
        args.num_episodes,
        args.seed,
        only_success=args.only_success,
        max_attempts=args.max_attempts,
        noise=args.noise,
        expert=expert,
    )


def _number_problem(args: SimpleNamespace) -> str | None:
    """What is wrong with the numbers of the command line, if anything (checked in this order)."""
    if args.num_episodes < 1:
        return f"--num_episodes must be at least 1, got {args.num_episodes}"
    if args.seed < 0:
        return f"--seed must be an integer >= 0 (numpy's seeds are), got {args.seed}"
    if not 0 <= args.noise < float("inf"):
        return f"--noise must be a number >= 0, got {args.noise}"
    if args.max_attempts is not None and args.max_attempts < args.num_episodes:
        return f"--max_attempts ({args.max_attempts}) must be at least --num_episodes ({args.num_episodes})"
    return None


def _summary(args: SimpleNamespace, result: Generated) -> None:
    n = args.num_episodes
    print(f"{result.successes}/{n} episodes succeeded ({100 * result.successes / n:.0f}%)")
    if args.only_success:
        print(
            f"the expert succeeded in {result.successes} of {result.attempts} attempts "
            f"({100 * result.successes / result.attempts:.0f}%)"
        )


def _generate_minari(args: SimpleNamespace, env_id: str, expert: Expert | type, fail) -> int:
    from her import minari_demos
    from her.envs import task_name
    from her.errors import TrainingError, UserError

    dataset_id = args.output or f"her/{task_name(env_id)}/expert-{args.num_episodes}-v0"
    try:
        minari_demos.check_new_id(dataset_id)  # before minutes of generating, not after
        result = _generate(args, env_id, expert)
        noise = f", actions through Gaussian noise {args.noise}" if args.noise else ""
        folder = minari_demos.write_dataset(
            result.episodes,
            env_id,
            dataset_id,
            description=f"her-demos scripted expert on {env_id}: {args.num_episodes} episodes, seed {args.seed}{noise}",
        )
    except (GenerationError, TrainingError) as err:
        return fail(str(err), code=1)
    except UserError as err:
        return fail(str(err))
    _summary(args, result)
    print(
        f"wrote {args.num_episodes} episodes of {env_id} (T={result.episodes['u'].shape[1]}) as Minari dataset "
        f"{dataset_id} ({folder}); train on it with --demo_file {dataset_id}"
    )
    return 0


def _convert(source: str, output: str | None, gym_packages: str = "") -> int:
    from her import demo_convert, minari_demos
    from her.config import check_path, coerce, package_list

    check_path("convert", source)
    if output:
        check_path("output", output)
    if minari_demos.looks_like_dataset(source):
        if not output:
            raise minari_demos.MinariError("--convert from a Minari dataset needs --output FILE.npz")
        problem = _check_output(Path(output))
        if problem:
            raise minari_demos.MinariError(problem)
        count, env_id = demo_convert.import_demos(source, output)
        print(f"wrote {count} episodes of {env_id} from Minari dataset {source} to {output}")
    else:
        if not output:
            raise minari_demos.MinariError(
                "--convert from an .npz needs --output DATASET_ID, e.g. her/FetchPush/expert-100-v0"
            )
        packages = package_list(coerce("gym_packages", gym_packages))
        count, env_id, folder = demo_convert.export_demos(source, output, packages)
        print(f"wrote {count} episodes of {env_id} from {source} as Minari dataset {output} ({folder})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
