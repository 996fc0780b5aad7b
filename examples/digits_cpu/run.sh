#!/usr/bin/env bash
# Omnigrok's image finding at CPU scale, on scikit-learn's bundled 8x8 digits (no download): with the
# initial weights scaled up (alpha 8) the MLP memorizes its 1,000 training images first and generalizes
# only later, as weight decay shrinks the weight norm; at alpha 1 it generalizes as it fits.
# The omnigrok preset (ReLU MLP 200 x 3, MSE on one-hot, AdamW lr 1e-3 wd 0.01, batch 200), 100,000 steps,
# both alphas trained together as one stacked model.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-runs/digits_cpu}
grokscope sweep --task digits --alpha 1,8 --eval-every 100 --out "$OUT"
grokscope analyze "$OUT"
grokscope analyze "$OUT" --json > "$OUT/analyze.json"
grokscope report "$OUT" -o "$OUT/report.html"
