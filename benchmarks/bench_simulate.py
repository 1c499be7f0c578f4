"""Benchmark: seconds to simulate the default movie and a 100 x 512 x 512 movie (one core)."""

import time

import torch

from tapkit.simulate import simulate_movie


def bench(**kw) -> float:
    """Seconds for one simulate_movie(**kw) call; prints a one-line summary."""
    t0 = time.perf_counter()
    m = simulate_movie(progress=False, **kw)
    dt = time.perf_counter() - t0
    print(f"{str(m.shape):>18}: {dt:6.2f} s  ({len(m.lineage)} tracks, {len(m.meta['events'])} events, "
          f"event pixels {100 * (m.events > 0).mean():.2f} %)")
    return dt


if __name__ == "__main__":
    torch.set_num_threads(1)
    bench()  # the default movie
    bench(n_frames=100, size=(512, 512))
