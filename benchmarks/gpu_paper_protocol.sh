#!/usr/bin/env bash
# The paper's recipe on PhysioNet 2012 on a lent GPU (issue 19, point 6), in well under 10 minutes on one H200.
#
#   bash benchmarks/gpu_paper_protocol.sh [WORK_DIR]
#
# What it runs: benchmarks/physionet2012.py --recipe paper --device cuda, i.e. joint LoRA (r=16, alpha=16) on every
# MiniLM layer with ALF + ACH from the start, no warm start, pos_weight auto, AdamW lr 2e-4, batch 16, up to 30
# epochs of all 6,000 training stays, early stopping on val AUPRC with patience 5, 512 tokens; then the test
# metrics with bootstrap CIs and inference timing. It writes WORK_DIR/results.md and results.json; the GPU name
# and the training's peak GPU memory are in WORK_DIR/alfia_alf/load_average.json, ms per sample in results.md.
#
# The device runs its image's python3 and packages, not this project's pins, and reaches no registry: when
# transformers, peft or safetensors are missing there, carry their wheels in WHEELS (default: ./wheels) and this
# script installs them first. PN_DATA points at the PhysioNet 2012 folder (default: ../shared/data/physionet2012
# or ./shared/data/physionet2012). CI never runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-${OUT:-/tmp}/gpu_paper_protocol}"
PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-wheels}"
if ! "$PYTHON" -c "import transformers, peft, safetensors" 2>/dev/null; then
  [ -d "$WHEELS" ] || { echo "transformers/peft missing and no wheels in $WHEELS" >&2; exit 2; }
  "$PYTHON" -m pip install --no-index --find-links "$WHEELS" --no-deps "$WHEELS"/*.whl
fi
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
start=$(date +%s)
"$PYTHON" benchmarks/physionet2012.py --work-dir "$WORK" --recipe paper --device cuda --skip-ablation \
    --threads 8 --n-batch1 100 --n-batch64 640
echo "wall: $(( $(date +%s) - start )) s"
cat "$WORK/results.md" "$WORK/alfia_alf/load_average.json"
