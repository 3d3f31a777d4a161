#!/bin/bash
# independent-init digits INRs, 1 seed, the GMN without canonical features, trained by the benchmark
# on V views per image (each its own initialisation) for 60/V epochs: the same number of steps per view-epoch budget
source /work/venv/bin/activate
cd /work/main
NC='"lr": 3e-3, "canonical_standardization": false, "rank_embedding": false, "fourier_frequencies": 16, "num_layers": 2'
for V in 4 1; do
  E=$((60 / V))
  /usr/bin/time -v python -m benchmarks.inr_classification --inr-init independent --views $V \
    --families gmn,mlp,cnn --seeds 2 --epochs 2 --threads 1 --no-progress \
    --gmn-config "{\"epochs\": $E, $NC}" --out /tmp/runs/digits-independent-views$V \
    > /tmp/ind/views$V.log 2>&1
done
