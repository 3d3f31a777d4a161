#!/bin/bash
# usage: run.sh NAME [diagnosis args...]
# independent-initialisation digits INRs (the benchmark's --inr-init independent), 60 epochs,
# lr 1e-2, batch 32, weight decay 0.05, label smoothing 0.1, random permutations, one thread per run
name=$1; shift
source /work/venv/bin/activate
cd /work/main
export OMP_NUM_THREADS=1 PYTHONPATH=/work/main
/usr/bin/time -v python -m benchmarks.weights_only_diagnosis --init independent \
  --out /tmp/runs/digits-independent --permute --epochs 60 --lr 1e-2 --bs 32 --wd 0.05 \
  --label-smoothing 0.1 "$@" > /tmp/ind/$name.json 2> /tmp/ind/$name.log
