"""The `tapkit` command line: run the course, write student copies, simulate a movie, pretrain.

tapkit course run [--profile auto] [--only 01,02] [-p key=value ...] [--out runs/NAME]
    [--dry-run | --short]
tapkit course run --resume --out runs/NAME [--force]
tapkit course student [--out DIR]
tapkit simulate --out DIR [--frames N] [--size Y X] [--seed S]
tapkit train --data NAME_OR_PATH --out DIR [--pretext tap] [--epochs N ...] [--resume] [--sync-bn]
torchrun --nproc_per_node N -m tapkit train ...      (the same command, data-parallel)
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from tapkit.data.movie import InputError


def parse_value(text: str) -> Any:
    """A `-p` value: a Python literal when it parses as one (5, 0.1, None, (64, 64)), else the
    string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_params(items: "Sequence[str] | None") -> dict:
    """Turn ['tap_epochs=5', 'data=movie.tif'] into {'tap_epochs': 5, 'data': 'movie.tif'}."""
    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise InputError(f"-p {item!r}: write parameters as key=value, e.g. -p tap_epochs=5.")
        params[key.strip()] = parse_value(value.strip())
    return params


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the `tapkit` command."""
    parser = argparse.ArgumentParser(
        prog="tapkit", description="The tapkit TAP course: run, teach, simulate."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    course = sub.add_parser("course", help="run the course notebooks or write student copies")
    csub = course.add_subparsers(dest="action", required=True)
    run = csub.add_parser("run", help="execute the notebooks in order with papermill")
    run.add_argument("--profile", default="auto", help="smoke, cpu, gpu or auto (default: auto)")
    run.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 01,02")
    run.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a notebook parameter (repeatable), e.g. -p tap_epochs=5 -p data=movie.tif",
    )
    run.add_argument("--out", default=None, help="output folder (default: runs/<timestamp>)")
    run.add_argument(
        "--notebooks", default=None, help="folder with the notebooks (default: ./notebooks)"
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="keep the profile's sizes but cut every count (steps, pairs, runs) to a minimum: "
        "checks that the profile runs end to end in minutes; its numbers mean nothing",
    )
    run.add_argument(
        "--short",
        action="store_true",
        help="keep ALL of the profile's sizes (movie, batch, crop pairs) and run a few steps per "
        "notebook: the gpu profile's memory and speed at real sizes in minutes (the GPU check); "
        "numbers mean nothing",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out: rerun only the notebooks that did not finish, with the "
        "run's stored parameters; pretraining continues from its checkpoint",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="with --resume: allow a --profile, --only or -p value other than the stored one",
    )
    student = csub.add_parser("student", help="write copies without solutions")
    student.add_argument("--out", default="student", help="output folder (default: student)")
    student.add_argument(
        "--notebooks", default=None, help="folder with the notebooks (default: ./notebooks)"
    )
    sim = sub.add_parser("simulate", help="write a simulated movie as TIFF + preview PNG")
    sim.add_argument("--out", required=True, help="output folder")
    sim.add_argument("--frames", type=int, default=None, help="number of frames")
    sim.add_argument(
        "--size", type=int, nargs=2, default=None, metavar=("Y", "X"), help="frame size"
    )
    sim.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_train_parser(sub)
    return parser


# `tapkit train` flags that set a key of the profile's `tap` section (the notebooks' tap_* settings)
TRAIN_SETTINGS = {
    "epochs": int,
    "steps_per_epoch": int,
    "batch_size": int,
    "patch": int,
    "lr": float,
    "val_steps": int,
    "val_fraction": float,
    "val_region": float,
}


def add_train_parser(sub: Any) -> None:
    """The `tapkit train` subcommand: pretrain any pretext task, in one process or under
    torchrun."""
    train = sub.add_parser(
        "train",
        help="pretrain a pretext task on a movie (also under torchrun: data-parallel)",
        description="Pretrain with the notebooks' tap_* settings of a profile. Runs unchanged "
        "under `torchrun --nproc_per_node N -m tapkit train ...` (one process per GPU).",
    )
    train.add_argument(
        "--data",
        required=True,
        help="a dataset name (simulated, hela-subset, ...) or a TIFF / folder / CTC sequence path",
    )
    train.add_argument(
        "--out",
        required=True,
        help="output folder: <task>_<data>.pt and <task>_<data>_history.json",
    )
    train.add_argument(
        "--pretext",
        default="tap",
        help="tap, mim, contrastive, or a task of the profile's pretext "
        "section such as mim-intensity (default: tap)",
    )
    train.add_argument(
        "--profile",
        default="auto",
        help="the profile whose tap settings are the defaults "
        "(smoke, cpu, gpu; default auto: gpu with CUDA, else cpu)",
    )
    for key, kind in TRAIN_SETTINGS.items():
        train.add_argument(
            f"--{key.replace('_', '-')}",
            type=kind,
            default=None,
            help=f"the profile's tap {key} unless given (notebooks: tap_{key}); batch: global",
        )
    train.add_argument(
        "--delta", type=int, nargs="+", default=None, help="frame offsets (default: the profile's)"
    )
    train.add_argument(
        "--val-at",
        choices=("start", "end"),
        default=None,
        help="validate on the first or last frames (default: start for simulated data, end "
        "otherwise)",
    )
    train.add_argument(
        "-o",
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model option (repeatable): architecture (base_filters=16, n_depth=2) or task "
        "option (lam=0.01, masking=intensity, temperature=0.2)",
    )
    train.add_argument(
        "--binning",
        type=int,
        default=None,
        help="bin frames NxN (default: the dataset's recommended)",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument(
        "--device", default="auto", help="auto, cpu, cuda (under torchrun: this rank's GPU)"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoint in --out, if there is one",
    )
    train.add_argument(
        "--shards",
        type=int,
        default=None,
        help="crop streams making up the batch (default: one "
        "per process); fix it to resume exactly with another number of processes",
    )
    train.add_argument(
        "--sync-bn", action="store_true", help="under torchrun: BatchNorm statistics over all ranks"
    )


def cmd_course_run(args: argparse.Namespace) -> int:
    """`tapkit course run`: 0 when every notebook ran, 1 otherwise."""
    from tapkit.course.runner import run_course

    if args.short and args.dry_run:
        raise InputError(
            "tapkit course run: --dry-run and --short exclude each other: --dry-run cuts every "
            "count and the batch, --short keeps every size and cuts only the steps. Pass one of "
            "them."
        )
    summary = run_course(
        profile=args.profile,
        only=args.only,
        params=parse_params(args.params),
        out=args.out,
        notebooks_dir=args.notebooks,
        dry_run="short" if args.short else args.dry_run,
        resume=args.resume,
        force=args.force,
    )
    failed = summary.get("failed", [])
    print(f"tapkit: summary in {Path(summary['out']) / 'summary.md'}")
    if failed:
        print(f"tapkit: {len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_course_student(args: argparse.Namespace) -> int:
    """`tapkit course student`: write the student copies."""
    from tapkit.course.student import write_student_copies

    write_student_copies(args.out, notebooks_dir=args.notebooks)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """`tapkit simulate`: simulate a movie and write `<out>/simulated.tif` and
    `<out>/simulated.png`."""
    from tapkit.data.io import write_tiff
    from tapkit.data.simulate import simulate_movie
    from tapkit.plot.frames import save_frames

    kwargs: dict[str, Any] = {"seed": args.seed}
    if args.frames is not None:
        kwargs["n_frames"] = args.frames
    if args.size is not None:
        kwargs["size"] = tuple(args.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    movie = simulate_movie(**kwargs)
    write_tiff(movie, out / "simulated.tif")
    save_frames(movie, out / "simulated.png")
    print(f"tapkit: wrote {movie!r} to {out / 'simulated.tif'} and {out / 'simulated.png'}")
    return 0


def train_plan(args: argparse.Namespace) -> dict:
    """Check every `tapkit train` argument cheaply (no data read, no process group) and return the
    run's plan."""
    from tapkit.course.config import data_key
    from tapkit.course.profiles import get_profile, resolve_profile, tap_for_data
    from tapkit.data import datasets
    from tapkit.ssl import distributed
    from tapkit.ssl.pretext import PRETEXTS, build_model
    from tapkit.ssl.train_config import TrainConfig
    from tapkit.validate import whole

    try:
        profile = get_profile(resolve_profile(args.profile))
    except ValueError as err:
        raise InputError(f"--profile {args.profile}: {err}") from err
    tasks = {**{name: {} for name in PRETEXTS}, **profile["pretext"]["tasks"]}
    if args.pretext not in tasks:
        raise InputError(
            f"--pretext {args.pretext}: not a pretext task; use one of {', '.join(sorted(tasks))}."
        )
    data = datasets.resolve(args.data)
    advice = datasets.recommended(data)  # real movies: the recipe of datasets.REAL_DATA_TAP
    settings = dict(tap_for_data(profile["tap"], advice["tap"]), val_at=advice["val_at"])
    settings.update(
        {
            k: getattr(args, k)
            for k in (*TRAIN_SETTINGS, "delta", "val_at")
            if getattr(args, k) is not None
        }
    )
    options = {
        **settings.pop("model_kwargs", {}),
        **tasks[args.pretext],
        **parse_params(args.options),
    }
    config = TrainConfig.from_dict(
        {
            **settings,
            "model_kwargs": options,
            "seed": args.seed,
            "shards": args.shards,
            "sync_bn": args.sync_bn,
        }
    )  # every setting checked
    pretext = args.pretext.split("-")[0]
    build_model(pretext, **options).check_crop(config.patch)  # the task's options, before any data
    world = int(os.environ.get("WORLD_SIZE", 1)) if distributed.launched() else 1
    distributed.check_shards(config.batch_size, config.shards, world)
    if args.binning is not None:
        whole(1, example=2, hint=" (1: full resolution)")("--binning", args.binning)
    stem = Path(args.out) / f"{args.pretext}_{data_key(data)}"
    checkpoint = stem.with_name(stem.name + ".pt")
    if checkpoint.exists() and not args.resume:
        raise InputError(
            f"{checkpoint} exists: add --resume to continue that training, or use another --out."
        )
    return dict(
        pretext=pretext,
        data=data,
        profile=profile,
        config=config,
        checkpoint=checkpoint,
        history=stem.with_name(stem.name + "_history.json"),
    )


def _train_movie(plan: dict, args: argparse.Namespace) -> Any:
    """The training movie of `tapkit train` (simulated ones with the profile's sim sizes),
    binned."""
    from tapkit.data import datasets

    data = plan["data"]
    movie = (
        datasets.load(data, seed=args.seed, **plan["profile"]["sim"])
        if data.startswith("simulated")
        else datasets.load(data)
    )
    factor = args.binning if args.binning is not None else datasets.recommended(data)["binning"]
    return movie.bin(factor) if factor > 1 else movie


def _stopped_by_launcher(signum: int, frame: Any) -> None:
    """SIGTERM handler of a `tapkit train` rank: turn the launcher's stop into an error that is
    reported."""
    raise RuntimeError("stopped by the launcher (SIGTERM), usually because another process failed")


def cmd_train(args: argparse.Namespace) -> int:
    """`tapkit train`: pretrain; under torchrun every rank runs this and rank 0 alone writes
    files."""
    from tapkit.ssl import distributed
    from tapkit.ssl.trainer import train

    # every bad argument is reported here, before the group, the data or a step
    plan = train_plan(args)
    rank, device = distributed.setup(args.device)
    # torchrun stops the other ranks with SIGTERM when one fails: let them say how to resume
    if rank.enabled:
        signal.signal(signal.SIGTERM, _stopped_by_launcher)
    try:
        movie = _train_movie(plan, args)
        _model, history = train(
            plan["pretext"],
            [movie],
            config=plan["config"],
            device=device,
            checkpoint=plan["checkpoint"],
            resume=args.resume,
        )
    except InputError:
        raise
    except Exception as err:
        first = (
            "\ntapkit: if another process failed first (a lost connection or a timeout here), the "
            "launcher's report names it (torchrun: 'Root Cause')"
            if rank.enabled
            else ""
        )
        print(
            f"tapkit: error: process {rank.rank} of {rank.world_size} stopped: "
            f"{type(err).__name__}: {err}{first}\n"
            "tapkit: the job stops. To continue, run the same command with --resume: it continues "
            f"from {plan['checkpoint']} (its last saved epoch) if that exists.",
            file=sys.stderr,
            flush=True,
        )
        return 1
    finally:
        distributed.cleanup()
    if rank.rank == 0:
        tmp = plan["history"].with_name(plan["history"].name + ".tmp")
        tmp.write_text(json.dumps(history, indent=1))
        os.replace(tmp, plan["history"])
        print(
            f"tapkit: wrote {plan['checkpoint']} and {plan['history']} "
            f"({len(history.get('train_loss', []))} epochs, {rank.world_size} process(es))"
        )
    return 0


def main(argv: "Sequence[str] | None" = None) -> int:
    """Entry point of the `tapkit` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler = {
        ("course", "run"): cmd_course_run,
        ("course", "student"): cmd_course_student,
        ("simulate", None): cmd_simulate,
        ("train", None): cmd_train,
    }[(args.command, getattr(args, "action", None))]
    try:
        return handler(args)
    except InputError as err:
        print(f"tapkit: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
