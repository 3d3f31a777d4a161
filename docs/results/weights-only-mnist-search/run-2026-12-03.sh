#!/bin/bash
# usage: run.sh NAME [diagnosis args...]
# second round (2026-12-03, main at a01b4ae and later): every run gets the bilinear-readout recipe plus one change
name=$1; shift
source /work/venv/bin/activate
cd /work/main
export OMP_NUM_THREADS=1 PYTHONPATH=/work/main
/usr/bin/time -v python -m benchmarks.weights_only_diagnosis \
  --data "--dataset mnist --root ../shared/data/mnist-test-half --source-split test --split 0.72,0.08,0.2" \
  --out /tmp/runs/mnist --permute "$@" > /tmp/i16/$name.json 2> /tmp/i16/$name.log
