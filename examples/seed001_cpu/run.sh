#!/usr/bin/env bash
# Seed 001's two findings at CPU scale (Carvalho et al., grokking as distribution shift):
#  1. equidistant subclasses: with f = 0 (no sample of the down-sampled subclass) the model never learns it;
#     with f = 0.2 it does, long after the training set is memorized;
#  2. equivariant subclasses: learned even at f = 0, from their distance-1 neighbours in the same class
#     (f = 0.2 alongside, for comparison).
# MLP of the carvalho2024 preset (init x 8, lr 1e-3), 2,000 training samples, 10,000-sample balanced test set.
# One change for CPU time: weight decay 0.1 instead of the paper's 1e-4 (the norm-decay time scale
# 1/(lr*wd) drops from 1e7 to 1e4 steps), 10,000 steps.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-runs/seed001_cpu}
COMMON=(--model mlp --n-train 2000 --weight-decay 0.1 --steps 10000 --eval-every 10)
# f = 0 and f = 0.2 differ only in their data: one sweep trains them together as one stacked model.
grokscope sweep --task equidistant --downsample-frac 0,0.2 "${COMMON[@]}" --out "$OUT/equidistant"
grokscope sweep --task equivariant --downsample-frac 0,0.2 "${COMMON[@]}" --out "$OUT/equivariant"
grokscope analyze "$OUT/equidistant" "$OUT/equivariant"
grokscope analyze "$OUT/equidistant" "$OUT/equivariant" --json > "$OUT/analyze.json"
grokscope report "$OUT/equidistant" "$OUT/equivariant" -o "$OUT/report.html"
