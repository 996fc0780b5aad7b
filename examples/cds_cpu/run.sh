#!/usr/bin/env bash
# Seed 002's sample-wise finding at CPU scale: below a critical data size the model never generalizes,
# near it generalization is slow, above it fast; and the CDS grows with model size.
# 8 data sizes x 3 seeds x 2 widths = 48 runs of `a b = (mod 31)`, trained as 2 stacked groups.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-runs/cds_cpu}
grokscope sweep --preset demo --p 31 --train-ratio 0.6 --lr 3e-3 --steps 2000 \
  --frac 0.3:1.0:0.1 --seeds 3 --d-model 32,64 --out "$OUT"
grokscope cds "$OUT" --epsilon 0.95
grokscope cds "$OUT" --json > "$OUT/cds.json"
grokscope report "$OUT" -o "$OUT/report.html"
