#!/usr/bin/env bash
# Seed 002's text finding at CPU scale (Zhu et al.: IMDB/Yelp with a 1-layer encoder and alpha = 10): a large
# initialization makes the encoder memorize its reviews first and generalize only once weight decay has brought
# the weight norm down; alpha = 1 generalizes as it fits.  The corpus is synthetic (make_corpus.py: 4,000
# reviews, majority sentiment of a few words among filler), the zhu2024-imdb preset made smaller for CPU time:
# hidden 64, FFN 128, max length 24, a WordPiece vocabulary of 400, weight decay 0.1 instead of 1e-2
# (time scale 1/(lr*wd) = 1e4 steps), 30,000 mini-batch steps, test set evaluated every 100.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-runs/text_cpu}
mkdir -p "$OUT"
python make_corpus.py 4000 "$OUT/reviews.csv"
# alpha and the data fraction are member fields: the four runs train together as one stacked model.
grokscope sweep --preset zhu2024-imdb --task text --data "$OUT/reviews.csv" --max-len 24 --vocab-size 400 \
  --d-model 64 --d-mlp 128 --weight-decay 0.1 --alpha 1,10 --frac 0.1,1.0 --steps 30000 --eval-every 100 \
  --out "$OUT/sweep"
grokscope analyze "$OUT/sweep"
grokscope dynamics "$OUT/sweep"
grokscope analyze "$OUT/sweep" --json > "$OUT/analyze.json"
grokscope report "$OUT/sweep" -o "$OUT/report.html"
