"""Test-session defaults for `python -m pytest` (unit tests and the notebooks run by papermill or
nbval).

The README's test command runs the tests in 2 processes (pytest-xdist, `-n 2 --dist worksteal`: a
process that is done takes queued tests from the other one, so no test waits behind the whole-course
dry run). Every process then computes with ONE thread, and so do the notebook kernels and course
runs it starts (OMP_NUM_THREADS=1 is inherited): 2 processes x 2 threads on 2 cores would
oversubscribe them, and torch's OpenMP threads slow down by far more than 2x when they have to wait
for a core. Without xdist: 2 threads, as before. The longest tests are collected first so that they
start first.
"""

import os

import pytest

# Notebooks run in the fast smoke profile unless the caller asks for another one
# (kernels started by nbval/papermill inherit this environment).
os.environ.setdefault("TAPKIT_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
# Tests compute in float32 on every CPU (exact comparisons with captum, bit-for-bit resume, ...);
# the course's default, bfloat16 autocast on CPUs that have it, is tested where a test sets
# $TAPKIT_CPU_BF16.
os.environ.setdefault("TAPKIT_CPU_BF16", "0")

IN_XDIST = "PYTEST_XDIST_WORKER" in os.environ
# torch threads of this test process (and of kernels it starts, under xdist)
TEST_THREADS = 1 if IN_XDIST else 2
if IN_XDIST:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"

import torch  # noqa: E402  (after the thread variables)

torch.set_num_threads(TEST_THREADS)

# Longest first (seconds on 2 idle cores, measured): the whole-course dry run, the course notebooks,
# the resumable-run and notebook-09 tests, the data-parallel tests.
LONG_FIRST = (
    "test_dry_run.py::test_gpu_profile",
    "test_resume_course.py::test_a_killed_run",
    "test_notebooks.py::test_notebook_runs",
    "test_notebook09.py::test_notebook09",
    "test_distributed.py",
    "test_checkpoints.py",
    "test_segmentation",
    "test_notebook04",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the long tests first (in LONG_FIRST order; xdist hands them out first), the rest as
    collected."""

    def rank(item: pytest.Item) -> int:
        return next((i for i, key in enumerate(LONG_FIRST) if key in item.nodeid), len(LONG_FIRST))

    items.sort(key=rank)  # stable: the collection order within each rank
