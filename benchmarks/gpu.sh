#!/usr/bin/env bash
# Every GPU figure and check of the project in one run, logs and results under OUT_DIR.
#
#     bash benchmarks/gpu.sh OUT_DIR MNIST_ROOT [DEVICE]
#
# MNIST_ROOT holds MNIST idx files (e.g. ../shared/data/mnist-test-half). Stages, in order:
# CUDA-vs-CPU correctness (python -m gmn.check, plus the benchmark's augmentation check:
# benchmarks.cuda_checks), INR fitting speed, GMN training
# throughput, CKA speed, then the INR-classification benchmark on the 5,000 MNIST images
# (80/20 split, 10% of the training part for validation, 3 seeds, 16 epochs). A stage that
# fails is reported and the next one still runs; STAGE_LIMIT (seconds, default 900) bounds
# each stage, MNIST_LIMIT the last one; STAGES="fit cka" runs only the stages named.
set -u
out=${1:?usage: bash benchmarks/gpu.sh OUT_DIR MNIST_ROOT [DEVICE]}
root=${2:?usage: bash benchmarks/gpu.sh OUT_DIR MNIST_ROOT [DEVICE]}
device=${3:-cuda}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the package without installing it
python=${PYTHON:-python3}

stage() {  # stage NAME LIMIT COMMAND...: run, log to OUT/NAME.log, print its tail
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  [[ -z ${STAGES:-} || " $STAGES " == *" $name "* ]] || return 0
  echo "=== $name: $*"
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local status=$?
  echo "=== $name: exit $status after $((SECONDS - start)) s"
  ((status == 0)) || failed+=("$name")
  grep -v '|.*it/s\]' "$out/$name.log" | tail -n 40
}

"$python" - <<'EOF'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}")
EOF
limit=${STAGE_LIMIT:-900}
failed=()
stage cuda_checks "$limit" "$python" -m benchmarks.cuda_checks --device "$device" \
    --out "$out/cuda_checks.json"
stage fit "$limit" "$python" -m benchmarks.fit --device "$device" --root "$root" \
    --num-images 4096 --chunk-size 4096 --baseline-images 8
stage throughput "$limit" "$python" -m benchmarks.throughput --device "$device" \
    --batch 128 1024 --width 64 128 --layers 4
stage throughput_bf16 "$limit" "$python" -m benchmarks.throughput --device "$device" \
    --batch 1024 --width 64 128 --layers 4 --bf16
stage cka "$limit" "$python" -m benchmarks.cka --device "$device"
stage mnist "${MNIST_LIMIT:-$limit}" "$python" -m benchmarks.inr_classification \
    --dataset mnist --root "$root" --source-split test --split 0.72,0.08,0.2 \
    --epochs 16 --device "$device" --out "$out/mnist" --no-progress
((${#failed[@]} == 0)) || { echo "=== failed stages: ${failed[*]}"; exit 1; }
