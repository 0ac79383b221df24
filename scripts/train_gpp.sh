#!/usr/bin/env bash
# The GPP experiment on the real flux towers and the bundled GPP model (CPU; measured 14 minutes
#   on 2 shared cores, most of it the paper-size transformer regressor trained for the comparison):
#   embeds the screened S2 footprint rows of DE-HoH, FR-Fon and FI-Hyy with the bundled encoders
#   (models/onnx), evaluates NIRv-linear, the small regressor on raw bands and on embeddings, and the
#   paper's transformer regressor in leave-one-site-out and 2017-2019 -> 2020 splits
#   (runs/gpp/results.{json,md}, predictions.npz; figures models/figures/gpp_<SITE>.png), then
#   trains the bundled model on all three sites 2017-2020 and exports models/onnx/cameo_gpp.onnx
#   (+ SHA256SUMS with every model listed).
# Usage:  nohup scripts/train_gpp.sh > runs/train_gpp.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export CAMEO_DATA=${CAMEO_DATA:-$(cd .. && pwd)/shared/data}
mkdir -p runs/gpp
echo "$(date -Is) start"
$PY -m models.train.gpp_experiment --out runs/gpp --paper --figures models/figures --export models/onnx \
    --threads "${THREADS:-1}"
echo "$(date -Is) done"
