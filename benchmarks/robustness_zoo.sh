#!/usr/bin/env bash
# Benchmark: `alfia robustness` on a zoo model (BENCHMARKS.md, "The same edits on LightGBM", issue 23): the P12 A+B
# cohort, LightGBM trained on it (full profile), and every edit on all of its test stays. Prints the load average
# before and after, and the edit table (OUT_DIR/robustness/robustness.csv).
# Usage: benchmarks/robustness_zoo.sh OUT_DIR [MODEL]   (needs ../shared/data beside the repository)
set -euo pipefail
OUT=${1:?usage: robustness_zoo.sh OUT_DIR [MODEL]}
MODEL=${2:-LightGBM}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P12=$ROOT/../shared/data/physionet2012
ALFIA=${ALFIA:-"$ROOT/.venv/bin/alfia"}
[ -d "$P12" ] || { echo "real data absent: $P12" >&2; exit 2; }
mkdir -p "$OUT"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -f "$OUT/p12.parquet" ] || $ALFIA cohort physionet2012 --records "$P12/set-a.tar.gz" --records "$P12/set-b.tar.gz" \
    --outcomes "$P12/Outcomes-a.txt" --outcomes "$P12/Outcomes-b.txt" --out "$OUT/p12.parquet"
[ -f "$OUT/zoo/$MODEL/config.json" ] || $ALFIA baselines "$OUT/p12.parquet" --out "$OUT/zoo" --models "$MODEL"
start=$(date +%s.%N)
$ALFIA robustness "$OUT/zoo/$MODEL" --input "$OUT/p12.parquet" --out "$OUT/robustness"
echo "robustness: $(echo "$(date +%s.%N) - $start" | bc) s; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$ROOT/.venv/bin/python" - "$OUT/robustness/robustness.csv" <<'PY'
import sys

import pandas as pd

table = pd.read_csv(sys.argv[1])
columns = ["model", "perturbation", "n_applied", "flip_rate", "mean_delta_prob", "auroc_change",
           "share_expected_direction", "note"]
print(table[columns].to_string(index=False))
PY
