#!/usr/bin/env bash
# The full bundled training run on the shared data (CPU, 2 cores; about 27 + 20 minutes):
#   s2 and s1 autoencoders in parallel (one thread each, 27-minute budget each), then the
#   fusion stage (20 minutes), then the export to models/onnx (+ SHA256SUMS, the parity
#   check on the validation chip, the MAC count), then the model-card evaluation and
#   figures (models/figures). Checkpoints, CSV logs and loss curves: runs/<config>/<stage>/.
# Usage (in the background):  nohup scripts/train_bundled.sh > runs/train_bundled.log 2>&1 &
#   COMPARE=1 also runs the context-aware vs centre-only S2 comparison (COMPARE_MINUTES each,
#   default 10, both in parallel) into runs/compare/comparison.json.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-bundled}
PY=${PYTHON:-.venv/bin/python}
export CAMEO_DATA=${CAMEO_DATA:-$(cd .. && pwd)/shared/data}
mkdir -p runs
echo "$(date -Is) start ($CONFIG)"
$PY -m models.train s2 --config "$CONFIG" > "runs/train_${CONFIG}_s2.log" 2>&1 &
S2=$!
$PY -m models.train s1 --config "$CONFIG" > "runs/train_${CONFIG}_s1.log" 2>&1 &
S1=$!
wait $S2
wait $S1
echo "$(date -Is) modality autoencoders done"
if [ "${COMPARE:-0}" = 1 ]; then
  $PY -m models.train.compare --config "$CONFIG" --minutes "${COMPARE_MINUTES:-10}" --variant context \
      > runs/compare_context.log 2>&1 &
  C1=$!
  $PY -m models.train.compare --config "$CONFIG" --minutes "${COMPARE_MINUTES:-10}" --variant centre \
      > runs/compare_centre.log 2>&1 &
  C2=$!
fi
$PY -m models.train fusion --config "$CONFIG" > "runs/train_${CONFIG}_fusion.log" 2>&1
echo "$(date -Is) fusion done"
$PY -m models.train export --config "$CONFIG" > "runs/train_${CONFIG}_export.log" 2>&1
echo "$(date -Is) export done"
$PY -m models.train evaluate --config "$CONFIG" > "runs/train_${CONFIG}_evaluate.log" 2>&1
echo "$(date -Is) evaluation done"
if [ "${COMPARE:-0}" = 1 ]; then
  wait $C1
  wait $C2
  $PY -m models.train.compare --config "$CONFIG" --variant score > runs/compare_score.log 2>&1
  echo "$(date -Is) comparison done"
fi
echo "$(date -Is) all done"
