#!/bin/bash
# usage: run.sh NAME [diagnosis args...]; runs from /work/main with the worktree's code
name=$1; shift
source /work/venv/bin/activate
cd /work/main
export OMP_NUM_THREADS=1 PYTHONPATH=/work/wt/issue16-mnist
/usr/bin/time -v python /work/wt/issue16-mnist/benchmarks/weights_only_diagnosis.py \
  --data "--dataset mnist --root ../shared/data/mnist-test-half --source-split test --split 0.72,0.08,0.2" \
  --out /tmp/runs/mnist --permute "$@" > /tmp/issue16-mnist/$name.json 2> /tmp/issue16-mnist/$name.log
