"""Test-session defaults for `python -m pytest` (unit tests and the notebooks run by papermill or nbval)."""

import os

# Notebooks run in the fast smoke profile unless the caller asks for another one
# (kernels started by nbval/papermill inherit this environment).
os.environ.setdefault("TAPKIT_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
