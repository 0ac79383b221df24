#!/usr/bin/env bash
# The main job on the real sample data, through qgis_process as a user would run it.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${CAMEO_DATA:-$(cd .. && pwd)/shared/data}
out=${CAMEO_DEMO_OUT:-$(pwd)/runs/demo}
mkdir -p "$out"
export CAMEO_DATA=$data

echo "== 1. Check the installation"
scripts/qgis-process run cameo:checkinstall --json > "$out/checkinstall.json"
.venv/bin/python - "$out/checkinstall.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
for key in sorted(results):
    print(f"  {key:24s} {results[key]}")
problems = []
if results["MISSING_PACKAGES"]:
    problems.append("missing packages: " + results["MISSING_PACKAGES"])
if not results["MODELS_OK"]:
    problems.append("a bundled model does not match the manifest")
if not results["SAMPLE_DATA_FOUND"]:
    problems.append("sample data not found at " + results["SAMPLE_DATA_DIR"] + " (set CAMEO_DATA)")
if problems:
    sys.exit("demo: " + "; ".join(problems))
PY
echo "Demo finished; outputs in $out"
