"""The `tapkit` command line: run the course, write student copies, simulate a movie.

    tapkit course run [--profile auto] [--only 01,02] [-p key=value ...] [--out runs/NAME] [--dry-run]
    tapkit course run --resume --out runs/NAME [--force]
    tapkit course student [--out DIR]
    tapkit simulate --out DIR [--frames N] [--size Y X] [--seed S]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Any, Sequence

from tapkit.data.movie import InputError


def parse_value(text: str) -> Any:
    """A `-p` value: a Python literal when it parses as one (5, 0.1, None, (64, 64)), else the string."""
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
    parser = argparse.ArgumentParser(prog="tapkit", description="The tapkit TAP course: run, teach, simulate.")
    sub = parser.add_subparsers(dest="command", required=True)
    course = sub.add_parser("course", help="run the course notebooks or write student copies")
    csub = course.add_subparsers(dest="action", required=True)
    run = csub.add_parser("run", help="execute the notebooks in order with papermill")
    run.add_argument("--profile", default="auto", help="smoke, cpu, gpu or auto (default: auto)")
    run.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 01,02")
    run.add_argument("-p", "--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                     help="a notebook parameter (repeatable), e.g. -p tap_epochs=5 -p data=movie.tif")
    run.add_argument("--out", default=None, help="output folder (default: runs/<timestamp>)")
    run.add_argument("--notebooks", default=None, help="folder with the notebooks (default: ./notebooks)")
    run.add_argument("--dry-run", action="store_true",
                     help="keep the profile's sizes but cut every count (steps, pairs, runs) to a minimum: checks that "
                          "the profile runs end to end in minutes; its numbers mean nothing")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out: rerun only the notebooks that did not finish, with the run's "
                          "stored parameters; pretraining continues from its checkpoint")
    run.add_argument("--force", action="store_true",
                     help="with --resume: allow a --profile, --only or -p value other than the stored one")
    student = csub.add_parser("student", help="write copies without solutions")
    student.add_argument("--out", default="student", help="output folder (default: student)")
    student.add_argument("--notebooks", default=None, help="folder with the notebooks (default: ./notebooks)")
    sim = sub.add_parser("simulate", help="write a simulated movie as TIFF + preview PNG")
    sim.add_argument("--out", required=True, help="output folder")
    sim.add_argument("--frames", type=int, default=None, help="number of frames")
    sim.add_argument("--size", type=int, nargs=2, default=None, metavar=("Y", "X"), help="frame size")
    sim.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    return parser


def cmd_course_run(args: argparse.Namespace) -> int:
    """`tapkit course run`: 0 when every notebook ran, 1 otherwise."""
    from tapkit.course.runner import run_course

    summary = run_course(profile=args.profile, only=args.only, params=parse_params(args.params),
                         out=args.out, notebooks_dir=args.notebooks, dry_run=args.dry_run,
                         resume=args.resume, force=args.force)
    failed = summary.get("failed", [])
    print(f"tapkit: summary in {Path(summary['out']) / 'summary.md'}")
    if failed:
        print(f"tapkit: {len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_course_student(args: argparse.Namespace) -> int:
    """`tapkit course student`: write the student copies."""
    from tapkit.course.runner import write_student_copies

    write_student_copies(args.out, notebooks_dir=args.notebooks)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """`tapkit simulate`: simulate a movie and write `<out>/simulated.tif` and `<out>/simulated.png`."""
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


def main(argv: "Sequence[str] | None" = None) -> int:
    """Entry point of the `tapkit` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler = {("course", "run"): cmd_course_run, ("course", "student"): cmd_course_student,
               ("simulate", None): cmd_simulate}[(args.command, getattr(args, "action", None))]
    try:
        return handler(args)
    except InputError as err:
        print(f"tapkit: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
