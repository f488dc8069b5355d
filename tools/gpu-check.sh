#!/usr/bin/env bash
# The GPU check: the CUDA path against the CPU provider of the same machine, in one run (tools/gpu_check.py).
# On the device machine, after the pieces tools/gpu-stage.sh staged were carried to /tmp (it prints the calls):
#   bash tools/gpu-check.sh
# Here, with no GPU, on the models of `make models`: its CPU half, or the whole script with the CUDA half run on
# the CPU provider (checks that every step runs; its figures mean nothing):
#   bash tools/gpu-check.sh --cpu-only
#   bash tools/gpu-check.sh --dry-run
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  --cpu-only) exec .venv/bin/python tools/gpu_check.py --models models --providers cpu ;;
  --dry-run) exec .venv/bin/python tools/gpu_check.py --models models --providers cuda,cpu --dry-run --window 1 ;;
esac
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
python3 --version
python3 -c 'import torch, onnxruntime; print("torch", torch.__version__, "| onnxruntime (CPU build)", onnxruntime.__version__)' || true
S=/tmp/gpucheck
bash .ortgpu/install.sh
mkdir -p "$S/models"
cat "$S"/parts/m* | zstd -dc | tar -x -C "$S"
python3 -m pip install -q --no-index --no-deps --target "$S/site" .gpucheck/wheels/*.whl
export PYTHONPATH="/tmp/ortsite:$S/site:$PWD/libs/runtime:$PWD/services/text-generator:$PWD/tools:${PYTHONPATH:-}"
python3 tools/gpu_check.py --models "$S/models" --prompts .gpucheck/prompts --providers cuda,cpu
nvidia-smi || true
