#!/usr/bin/env bash
# Seed 002's critical data size at CPU scale, sample-wise and model-wise: below a critical data size the model
# never generalizes, near it generalization is slow, above it fast; and how the CDS moves with model size.
# 9 data sizes x 3 seeds x 6 widths = 162 runs of `a b = (mod 31)`, trained as stacked groups of similar sizes.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-runs/cds_cpu}
grokscope sweep --preset demo --p 31 --train-ratio 0.8 --lr 3e-3 --steps 3000 \
  --frac 0.2:1.0:0.1 --seeds 3 --d-model 16,32,48,64,96,128 --out "$OUT"
grokscope cds "$OUT" --epsilon 0.95
grokscope cds "$OUT" --json > "$OUT/cds.json"
grokscope analyze "$OUT" --csv > "$OUT/analyze.csv"
grokscope report "$OUT" -o "$OUT/report.html"
