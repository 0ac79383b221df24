#!/usr/bin/env bash
# The main job on the real sample data, through qgis_process as a user would run it:
# check the installation, prepare the Belgian chip's Sentinel-1/2 stacks, embed every
# date with the bundled models, and draw one date as RGB. Outputs go to runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${CAMEO_DATA:-$(cd .. && pwd)/shared/data}
out=${CAMEO_DEMO_OUT:-$(pwd)/runs/demo}
chip="$data/chips/belgium_00002806639B424A"
export CAMEO_DATA=$data
rm -rf "$out"  # a fresh run each time: cameo:embed refuses a folder holding another run
mkdir -p "$out"
qp() {  # run an algorithm with --json; on failure show what qgis_process said
  if ! scripts/qgis-process run "$@" --json 2> "$out/stderr.txt"; then
    grep -v -e "setapi() is deprecated" "$out/stderr.txt" >&2
    echo "demo: $1 failed" >&2
    return 1
  fi
}
field() { .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["results"][sys.argv[1]])' "$1"; }

echo "== 1/4 Check the installation (cameo:checkinstall)"
qp cameo:checkinstall > "$out/checkinstall.json"
.venv/bin/python - "$out/checkinstall.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
for key in ("QGIS_VERSION", "GDAL_VERSION", "NUMPY_VERSION", "ONNXRUNTIME_VERSION", "ONNXRUNTIME_PROVIDERS",
            "RASTERIO_VERSION", "MODELS_OK", "SAMPLE_DATA_DIR"):
    print(f"  {key:22s} {results[key]}")
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

echo "== 2/4 Prepare the Sentinel-1/2 stack of $(basename "$chip") (cameo:preparestack)"
s2_args=()
for f in "$chip"/S2_L2A_*.nc; do s2_args+=("S2=$f"); done
qp cameo:preparestack -- "${s2_args[@]}" "S1=$(ls "$chip"/S1_*.nc)" "OUTPUT_FOLDER=$out/stack" > "$out/preparestack.json"
s2_stack=$(field S2_STACK < "$out/preparestack.json")
s1_stack=$(field S1_STACK < "$out/preparestack.json")
echo "  $(($(wc -l < "$out/stack/dates.csv") - 1)) dates kept -> $s2_stack, $s1_stack"

echo "== 3/4 Embed every date (cameo:embed)"
start=$SECONDS
qp cameo:embed -- "S2_STACK=$s2_stack" "S1_STACK=$s1_stack" "OUTPUT_FOLDER=$out/embeddings" > "$out/embed.json"
seconds=$((SECONDS - start))
dates=$(field DATES < "$out/embed.json")
echo "  $(echo "$dates" | tr ',' '\n' | wc -l) dates x 64 x 64 px in ${seconds} s (with QGIS start-up) -> $(field EMBEDDINGS < "$out/embed.json")"

echo "== 4/4 Draw 2018-06-30 as RGB (cameo:embeddingrgb)"
qp cameo:embeddingrgb -- "INPUT=$out/embeddings/embeddings.vrt" "DATE=2018-06-30" "OUTPUT=$out/rgb_2018-06-30.tif" > "$out/rgb.json"
.venv/bin/python -c 'import rasterio.shutil, sys; rasterio.shutil.copy(sys.argv[1], sys.argv[2], driver="PNG")' \
  "$out/rgb_2018-06-30.tif" "$out/rgb_2018-06-30.png"
echo "  $out/rgb_2018-06-30.tif (preview: rgb_2018-06-30.png)"
echo "Demo finished; outputs in $out"
