#!/usr/bin/env bash
# The forecast's data (docs/forecast.md): two CPU sweeps of `a b = (mod 31)` (the demo preset's transformer at
# d_model 32, 80 % of the 961 pairs as the train pool) over learning rate x weight decay x data fraction x seed,
# 2,000 full-batch steps each.  `fit` (seeds 0-2, 162 runs) fits the model shipped with grokscope;
# `heldout` (seeds 3-6, 216 runs, never used to fit) is what `grokscope forecast backtest` is scored on.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-runs}
GRID=(--preset demo --p 31 --train-ratio 0.8 --d-model 32 --steps 2000
      --lr 1e-3,3e-3,1e-2 --weight-decay 0.3,1,3 --frac 0.5:1.0:0.1)
grokscope sweep "${GRID[@]}" --seed 0,1,2 --out "$OUT/fit" --quiet
grokscope sweep "${GRID[@]}" --seed 3,4,5,6 --out "$OUT/heldout" --quiet
