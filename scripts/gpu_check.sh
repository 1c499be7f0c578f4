#!/usr/bin/env bash
# The GPU check in one command (run from the repository root on a CUDA machine, < 8 minutes):
# crop-pipeline benchmark with and without torch.compile, then pytest -m gpu; writes gpu_check.json.
# Extra arguments go to benchmarks.gpu_check, e.g. `scripts/gpu_check.sh --tiny --device cpu`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m benchmarks.gpu_check "$@"
