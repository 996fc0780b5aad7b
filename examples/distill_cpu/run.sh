#!/usr/bin/env bash
# Seed 000's three findings at CPU scale (p1 = 47, p2 = 43 instead of 113 and 107; a 64-wide 1-layer decoder):
#   1. a student on p2 below the critical fraction groks with KD from a p1 teacher, and not without it;
#   2. a larger model trained on p1 + p2 fails with joint CE where pure distillation from two teachers works;
#   3. continual p1 -> p2: p1 accuracy without and with KD (the forgetting line grokscope prints).
# 7 runs, about 5 minutes on 2 CPU cores; figures measured are in README.md.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-runs/distill_cpu}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # small models: one thread is fastest (and a busy CPU is no trap)
mkdir -p "$OUT"
# singh2025 (`a b @ P`, StableMax CE, AdamW wd 1), shrunk: one vocabulary for 43 and 47; frac is a share of
# the pool (half of all pairs), so frac 1.0 = 50% of the pairs, 0.8 = 40%.
SMALL=(--preset singh2025 --moduli 43,47 --d-model 64 --lr 5e-3 --steps 2500 --eval-every 10 --quiet)

# 1. teacher on p1 (groks), p2 from scratch below the critical fraction (does not), p2 with KD (groks)
grokscope train "${SMALL[@]}" --p 47 --frac 1.0 --out "$OUT/teacher47.zarr"
grokscope train "${SMALL[@]}" --p 43 --frac 0.8 --out "$OUT/scratch43.zarr"
grokscope distill --teacher "$OUT/teacher47.zarr" --p 43 --frac 0.8 --kd-alpha 0.5 --quiet --out "$OUT/kd43.zarr"

# 2. joint: a wider model on p1's 50% + p2's 20%; teachers: the p1 teacher and the KD student of step 1
JOINT=(--teacher "$OUT/teacher47.zarr" --teacher "$OUT/kd43.zarr" --joint --frac 0.4 --d-model 96 --batch-size 512
       --steps 2000 --eval-every 20 --quiet)
grokscope distill "${JOINT[@]}" --kd-alpha 0 --out "$OUT/joint_ce.zarr"
grokscope distill "${JOINT[@]}" --kd-alpha 1 --kd-position answer --out "$OUT/joint_kd.zarr"

# 3. continual: start from the p1 teacher, train on p2 (40%), with and without KD at the @ token
CONT=(--teacher "$OUT/teacher47.zarr" --continual --p 43 --frac 0.8 --lr 1e-3 --steps 1000 --quiet)
grokscope distill "${CONT[@]}" --kd-alpha 0 --out "$OUT/continual_ce.zarr"
grokscope distill "${CONT[@]}" --kd-alpha 0.9 --out "$OUT/continual_kd.zarr"

grokscope analyze "$OUT"
python - "$OUT" <<'PY'
import sys
import numpy as np
from grokscope import RunStore
for name in ("joint_ce", "joint_kd", "continual_ce", "continual_kd"):
    s = RunStore(f"{sys.argv[1]}/{name}.zarr")
    p2, p1 = (s.read(k)[~np.isnan(s.read(k))] for k in ("test_acc", "p1_test_acc"))
    print(f"{name:13s} p2 test acc final {p2[-1]:.3f} (max {p2.max():.3f}); p1 test acc final {p1[-1]:.3f} "
          f"(min {p1.min():.3f})")
PY
