#!/usr/bin/env bash
# The GPP experiment on the five real flux towers and the bundled GPP model (CPU): embeds the
#   screened S2 footprint rows of DE-HoH, FR-Fon, FI-Hyy (daily GPP), DE-Kli and IT-Tor (monthly
#   GPP) with the bundled encoders (models/onnx), evaluates NIRv-linear, NIRv x radiation-linear,
#   the previous bundled recipe and the light-use-efficiency model in leave-one-site-out and
#   2017-2019 -> 2020 splits (runs/gpp/results.{json,md}, predictions.npz), then trains the
#   bundled model on all five sites 2017-2020 with its area of applicability and exports
#   models/onnx/cameo_gpp.onnx (+ SHA256SUMS), figures models/figures/gpp_<SITE>.png. PAPER=1 adds the paper's transformer regressor.
#   Measured: 245 s on 2 shared cores without PAPER.
# Usage:  nohup scripts/train_gpp.sh > runs/train_gpp.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export CAMEO_DATA=${CAMEO_DATA:-$(cd .. && pwd)/shared/data}
mkdir -p runs/gpp
echo "$(date -Is) start"
$PY -m models.train.gpp_experiment --out runs/gpp --export models/onnx --figures models/figures \
    --threads "${THREADS:-1}" \
    ${PAPER:+--paper}
echo "$(date -Is) done"
