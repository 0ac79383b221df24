#!/usr/bin/env bash
# The full bundled training run on the shared data (CPU; about 27 + 20 minutes on 2 cores):
#   s2 and s1 autoencoders in parallel (one thread each), then fusion, then export of
#   models/onnx (+ SHA256SUMS, parity check on the validation chip, cost count), then
#   the model-card figures. Logs, checkpoints, CSV logs and loss curves go to runs/bundled/.
# Usage: scripts/train_bundled.sh [config]     (run in the background: nohup ... &)
#        COMPARE=1 scripts/train_bundled.sh   also trains the centre-only S2 comparison
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-bundled}
PY=${PYTHON:-.venv/bin/python}
export CAMEO_DATA=${CAMEO_DATA:-$(cd .. && pwd)/shared/data}
mkdir -p runs
echo "$(date -Is) start ($CONFIG)"
$PY -m models.train s2 --config "$CONFIG" > runs/train_${CONFIG}_s2.log 2>&1 &
S2=$!
$PY -m models.train s1 --config "$CONFIG" > runs/train_${CONFIG}_s1.log 2>&1 &
S1=$!
wait $S2
wait $S1
echo "$(date -Is) modality autoencoders done"
$PY -m models.train fusion --config "$CONFIG" > runs/train_${CONFIG}_fusion.log 2>&1
echo "$(date -Is) fusion done"
$PY -m models.train export --config "$CONFIG" > runs/train_${CONFIG}_export.log 2>&1
echo "$(date -Is) export done"
$PY -m models.train evaluate --config "$CONFIG" > runs/train_${CONFIG}_evaluate.log 2>&1 || echo "evaluate failed"
if [ "${COMPARE:-0}" = 1 ]; then
  # Same S2 model and budget, centre-only loss, own run folder; evaluated on the same validation windows.
  $PY -m models.train s2 --config "$CONFIG" --runs-dir runs/centre_only --set s2.loss.context=false \
      > runs/train_${CONFIG}_s2_centre_only.log 2>&1
fi
echo "$(date -Is) all done"
