"""One rank of a test run under torchrun: `tapkit` with two test hooks (not part of the package).

TAPKIT_TEST_GUARD=DIR   on every rank but 0, any attempt to create, open for writing, rename or
                        remove a file under DIR raises PermissionError (a Python audit hook), so a
                        rank > 0 that writes makes the job fail; each rank prints how many such
                        attempts it saw.
TAPKIT_TEST_KILL=R:N    rank R kills itself (SIGKILL, no goodbye) when it draws its N-th batch
                        (1-based);
TAPKIT_TEST_KILL=R:N:stop  rank R stops itself instead (SIGSTOP: alive but hung, for the timeout).
"""

from __future__ import annotations

import os
import signal
import sys

RANK = int(os.environ.get("RANK", 0))
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
attempts: list[str] = []


def guard(root: str) -> None:
    """Refuse every write under `root` in this process (audit events: open, os.rename, os.remove,
    os.mkdir)."""
    root = os.path.realpath(root)

    def inside(path: object) -> bool:
        return isinstance(path, (str, bytes, os.PathLike)) and os.path.realpath(
            os.fsdecode(path)
        ).startswith(root)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & WRITE_FLAGS)
            hit = writing and inside(path)
        elif event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir"):
            hit = any(inside(a) for a in args[:2])
        else:
            return
        if hit:
            attempts.append(f"{event} {args[0]}")
            raise PermissionError(f"rank {RANK} tried to write under {root}: {event} {args[0]}")

    sys.addaudithook(hook)


def kill_at(step: int, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to this process when it draws its `step`-th batch."""
    import tapkit.ssl.trainer as trainer

    original, count = trainer._make_batch, [0]

    def make_batch(model, samplers):
        count[0] += 1
        if count[0] == step:
            print(
                f"ddp_worker: rank {RANK} kills itself at batch {step} "
                f"({signal.Signals(sig).name})",
                flush=True,
            )
            os.kill(os.getpid(), sig)
        return original(model, samplers)

    trainer._make_batch = make_batch


if __name__ == "__main__":
    if os.environ.get("TAPKIT_TEST_GUARD") and RANK != 0:
        guard(os.environ["TAPKIT_TEST_GUARD"])
    if os.environ.get("TAPKIT_TEST_KILL"):
        victim, step, *how = os.environ["TAPKIT_TEST_KILL"].split(":")
        if RANK == int(victim):
            kill_at(int(step), signal.SIGSTOP if how == ["stop"] else signal.SIGKILL)
    from tapkit.cli import main

    code = main(sys.argv[1:])
    print(f"ddp_worker: rank {RANK} write attempts outside rank 0: {len(attempts)}", flush=True)
    sys.exit(code)
