"""Benchmark tapkit.data.simulate on one core: time for a 100 x 512 x 512 movie and the default
movie.

Run:  python benchmarks/bench_simulate.py
Target: the 100 x 512 x 512 movie well under 10 s on one core. Also prints events per frame and the
fraction of pixels carrying events (division / death).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, set before numpy is imported

import time  # noqa: E402

import numpy as np  # noqa: E402

from tapkit import DEATH, DIVISION  # noqa: E402
from tapkit.data.simulate import simulate_movie  # noqa: E402


def bench(label: str, **kw) -> None:
    """Simulate once, print wall time and event statistics."""
    t0 = time.perf_counter()
    m = simulate_movie(progress=False, **kw)
    dt = time.perf_counter() - t0
    n_t = len(m)
    kinds = [e[0] for e in m.meta["events"]]
    n_div, n_death = kinds.count("division"), kinds.count("death")
    frac = np.bincount(m.events.ravel(), minlength=3) / m.events.size
    cells = np.mean([len(np.unique(lab)) - 1 for lab in m.labels])
    print(f"{label:28s} shape={m.shape}  time={dt:6.2f} s  ({1000 * dt / n_t:.0f} ms/frame)")
    print(
        f"{'':28s} mean nuclei/frame={cells:.1f}  divisions={n_div} deaths={n_death}  "
        f"events/frame={(n_div + n_death) / n_t:.2f}"
    )
    print(
        f"{'':28s} event pixels: division={100 * frac[DIVISION]:.2f}%  "
        f"death={100 * frac[DEATH]:.2f}%  "
        f"all={100 * (frac[DIVISION] + frac[DEATH]):.2f}%"
    )


if __name__ == "__main__":
    bench("100 x 512 x 512", n_frames=100, size=(512, 512), seed=0)
    bench("default (80 x 256 x 256)", seed=0)
