#!/usr/bin/env bash
# The main job on the real sample data, through qgis_process as a user would run it:
# check the installation, prepare the Belgian chip's Sentinel-1/2 stacks, embed every
# date with the bundled models, draw four dates as RGB previews and map GPP.
# Outputs go to runs/demo/.
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

echo "== 1/5 Check the installation (cameo:checkinstall)"
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

echo "== 2/5 Prepare the Sentinel-1/2 stack of $(basename "$chip") (cameo:preparestack)"
s2_args=()
for f in "$chip"/S2_L2A_*.nc; do s2_args+=("S2=$f"); done
qp cameo:preparestack -- "${s2_args[@]}" "S1=$(ls "$chip"/S1_*.nc)" "OUTPUT_FOLDER=$out/stack" > "$out/preparestack.json"
s2_stack=$(field S2_STACK < "$out/preparestack.json")
s1_stack=$(field S1_STACK < "$out/preparestack.json")
echo "  $(($(wc -l < "$out/stack/dates.csv") - 1)) dates kept -> $s2_stack, $s1_stack"

echo "== 3/5 Embed every date (cameo:embed)"
start=$SECONDS
qp cameo:embed -- "S2_STACK=$s2_stack" "S1_STACK=$s1_stack" "OUTPUT_FOLDER=$out/embeddings" > "$out/embed.json"
seconds=$((SECONDS - start))
dates=$(field DATES < "$out/embed.json")
echo "  $(echo "$dates" | tr ',' '\n' | wc -l) dates x 64 x 64 px in ${seconds} s (with QGIS start-up) -> $(field EMBEDDINGS < "$out/embed.json")"

echo "== 4/5 Draw four dates as RGB (cameo:embeddingrgb) beside Sentinel-2 true colour"
mkdir -p "$out/previews"
for date in 2017-09-23 2018-04-19 2018-06-30 2018-09-01; do
  qp cameo:embeddingrgb -- "INPUT=$out/embeddings/embeddings.vrt" "DATE=$date" \
    "OUTPUT=$out/previews/rgb_$date.tif" > "$out/previews/rgb_$date.json"
  .venv/bin/python scripts/demo_previews.py "$s2_stack" "$out/previews/rgb_$date.tif" "$date" \
    "$out/previews/s2_and_embedding_$date.png"
done
echo "  $out/previews/s2_and_embedding_<date>.png: true colour (left), embedding PCA (right)"

echo "== 5/5 Map GPP from the embeddings (cameo:predictgpp)"
qp cameo:predictgpp -- "EMBEDDINGS=$out/embeddings/embeddings.vrt" "OUTPUT_FOLDER=$out/gpp" > "$out/gpp.json"
echo "  $(ls "$out"/gpp/gpp_*.tif | wc -l) daily GPP rasters -> $(field GPP < "$out/gpp.json")"
echo "Demo finished; outputs in $out"
