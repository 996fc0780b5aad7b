#!/usr/bin/env bash
# The same two findings with the encoder (--model transformer: the 9 pair vectors as tokens after a [CLS]
# token, 2 pre-LN layers, init x 8), smaller for CPU time: d_model 64, d_mlp 128, 400 training samples,
# weight decay 0.1, 4,000 steps, test set evaluated every 20 steps.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-runs/seed001_cpu_transformer}
COMMON=(--model transformer --d-model 64 --d-mlp 128 --n-train 400 --weight-decay 0.1 --steps 4000 --eval-every 20)
grokscope sweep --task equidistant --downsample-frac 0,0.2 "${COMMON[@]}" --out "$OUT/equidistant"
grokscope sweep --task equivariant --downsample-frac 0,0.2 "${COMMON[@]}" --out "$OUT/equivariant"
grokscope analyze "$OUT/equidistant" "$OUT/equivariant"
grokscope analyze "$OUT/equidistant" "$OUT/equivariant" --json > "$OUT/analyze.json"
