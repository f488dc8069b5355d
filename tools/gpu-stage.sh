#!/usr/bin/env bash
# Stages the GPU check (tools/gpu-check.sh) for a device machine that reaches no registry: onnxruntime-gpu (the
# workplace's ../shared/device/stage-ort-gpu.sh), the built models as zstd'd tar pieces under 56 MB (a device call
# carries at most 64 MiB), the pure-Python packages the runtime needs that such a machine lacks, and the prompts
# as token ids. Writes .gpucheck/ (git-ignored) and prints the device calls to make, in order.
# GPU_CHECK_FP32=1 also carries the float32 text model (the CPU float32 baseline; +6 pieces).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PY=${PY:-.venv/bin/python}
S=.gpucheck
rm -rf "$S" && mkdir -p "$S/parts" "$S/wheels" "$S/prompts"
ort_stage=${ORT_STAGE:-../shared/device/stage-ort-gpu.sh}
if [ -x "$ort_stage" ] || [ -f "$ort_stage" ]; then bash "$ort_stage" >/dev/null; else
  echo "no $ort_stage: stage onnxruntime-gpu into .ortgpu/ yourself" >&2; fi

models=(smollm2-135m-instruct-fp16 smollm2-135m-instruct-int8 text-encoder sentiment music-transformer
        music-transformer-fp16)
files=()
for m in "${models[@]}"; do [ -d "models/$m" ] && files+=("models/$m"); done
# the float32 text model's manifest and tokenizer files always (the agreement reference, the chat template)
for f in models/smollm2-135m-instruct/1/*; do
  case "$f" in *.onnx) [ "${GPU_CHECK_FP32:-0}" = 1 ] && files+=("$f") ;; *) files+=("$f") ;; esac
done
tar -chf - "${files[@]}" | zstd -q -3 -T0 | split -b 56M -d -a 2 - "$S/parts/m"

"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$S/wheels" \
  "pydantic==$("$PY" -c 'import pydantic; print(pydantic.VERSION)')" \
  "pydantic-core==$("$PY" -c 'import pydantic_core; print(pydantic_core.__version__)')" \
  pydantic-settings==2.16.3 python-dotenv typing-inspection annotated-types prometheus-client==0.26.0 \
  grpcio-status==1.85.1 googleapis-common-protos
"$PY" -c 'import sys; sys.path.insert(0, "tools"); import gpu_check, pathlib
gpu_check.write_prompts(pathlib.Path("models"), pathlib.Path(".gpucheck/prompts"))'

echo "Staged: $(ls .ortgpu/parts 2>/dev/null | wc -l) onnxruntime-gpu pieces, $(ls $S/parts | wc -l) model pieces."
echo "Device calls, back to back (the machine stays warm ~30 s between calls):"
for p in $(ls .ortgpu/parts 2>/dev/null); do
  echo "  run carry=[\".ortgpu/parts/$p\"]  command: mkdir -p /tmp/ortw && cp .ortgpu/parts/$p /tmp/ortw/"; done
for p in $(ls $S/parts); do
  echo "  run carry=[\"$S/parts/$p\"]  command: mkdir -p /tmp/gpucheck/parts && cp $S/parts/$p /tmp/gpucheck/parts/"; done
echo "  run carry=[\".ortgpu/install.sh\", \"$S/wheels\", \"$S/prompts\"]  timeout_s=540  command: bash tools/gpu-check.sh"
