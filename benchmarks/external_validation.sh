#!/usr/bin/env bash
# Benchmark: external validation of the tabular zoo (BENCHMARKS.md, "External validation").
#   (a) trained on synthetic MIMIC-IV (20,000 stays), scored on the real MIMIC-IV demo and eICU demo cohorts
#   (b) trained on PhysioNet 2012 set-a, scored on set-b as an external cohort
# Usage: benchmarks/external_validation.sh OUT_DIR [MODELS]   (needs ../shared/data beside the repository)
set -euo pipefail
OUT=${1:?usage: external_validation.sh OUT_DIR [MODELS]}
MODELS=${2:-KNeighborsUnif,KNeighborsDist,LinearModel,RandomForestGini,RandomForestEntr,ExtraTreesGini,ExtraTreesEntr,LightGBM,LightGBMXT,LightGBMLarge,XGBoost,CatBoost,NeuralNetMLP,WeightedEnsemble}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=$ROOT/../shared/data
ALFIA=${ALFIA:-"$ROOT/.venv/bin/alfia"}
mkdir -p "$OUT"
C=$OUT/cohorts
mkdir -p "$C"
[ -f "$C/mimic_demo.parquet" ] || $ALFIA cohort mimic-iv --mimic-dir "$DATA/mimic-iv-demo" --out "$C/mimic_demo.parquet"
[ -f "$C/eicu_demo.parquet" ] || $ALFIA cohort eicu --eicu-dir "$DATA/eicu-demo" --out "$C/eicu_demo.parquet"
[ -f "$C/mimic_synthetic.parquet" ] || $ALFIA cohort synthetic --variant mimic --n 20000 --seed 42 --out "$C/mimic_synthetic.parquet"
[ -f "$C/physionet2012_a.parquet" ] || $ALFIA cohort physionet2012 --records "$DATA/physionet2012/set-a.tar.gz" \
    --outcomes "$DATA/physionet2012/Outcomes-a.txt" --out "$C/physionet2012_a.parquet"
[ -f "$C/physionet2012_b.parquet" ] || $ALFIA cohort physionet2012 --records "$DATA/physionet2012/set-b.tar.gz" \
    --outcomes "$DATA/physionet2012/Outcomes-b.txt" --out "$C/physionet2012_b.parquet"
cat /proc/loadavg
time $ALFIA baselines "$C/mimic_synthetic.parquet" --out "$OUT/zoo_mimic" --models "$MODELS" --resume \
    --external "$C/mimic_demo.parquet" --external "$C/eicu_demo.parquet"
cat /proc/loadavg
time $ALFIA baselines "$C/physionet2012_a.parquet" --out "$OUT/zoo_physionet2012" --models "$MODELS" --resume \
    --external "$C/physionet2012_b.parquet"
cat /proc/loadavg
$ALFIA compare "$OUT/zoo_mimic" --out "$OUT/report_mimic"
$ALFIA compare "$OUT/zoo_physionet2012" --out "$OUT/report_physionet2012"
