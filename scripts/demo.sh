#!/usr/bin/env bash
# The main job on the real sample data, through qgis_process as a user would run it:
# check the installation, prepare the Belgian chip's Sentinel-1/2 stacks, embed every
# date with the bundled models, draw four dates as RGB previews, map GPP, and find what looks
# like one field (similarity) and six kinds of surface (k-means clusters).
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

echo "== 1/6 Check the installation (cameo:checkinstall)"
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

echo "== 2/6 Prepare the Sentinel-1/2 stack of $(basename "$chip") (cameo:preparestack)"
s2_args=()
for f in "$chip"/S2_L2A_*.nc; do s2_args+=("S2=$f"); done
qp cameo:preparestack -- "${s2_args[@]}" "S1=$(ls "$chip"/S1_*.nc)" "OUTPUT_FOLDER=$out/stack" > "$out/preparestack.json"
s2_stack=$(field S2_STACK < "$out/preparestack.json")
s1_stack=$(field S1_STACK < "$out/preparestack.json")
echo "  $(($(wc -l < "$out/stack/dates.csv") - 1)) dates kept -> $s2_stack, $s1_stack"

echo "== 3/6 Embed every date (cameo:embed)"
start=$SECONDS
qp cameo:embed -- "S2_STACK=$s2_stack" "S1_STACK=$s1_stack" "OUTPUT_FOLDER=$out/embeddings" > "$out/embed.json"
seconds=$((SECONDS - start))
dates=$(field DATES < "$out/embed.json")
echo "  $(echo "$dates" | tr ',' '\n' | wc -l) dates x 64 x 64 px in ${seconds} s (with QGIS start-up) -> $(field EMBEDDINGS < "$out/embed.json")"

echo "== 4/6 Draw four dates as RGB (cameo:embeddingrgb) beside Sentinel-2 true colour"
mkdir -p "$out/previews"
for date in 2017-09-23 2018-04-19 2018-06-30 2018-09-01; do
  qp cameo:embeddingrgb -- "INPUT=$out/embeddings/embeddings.vrt" "DATE=$date" \
    "OUTPUT=$out/previews/rgb_$date.tif" > "$out/previews/rgb_$date.json"
  .venv/bin/python scripts/demo_previews.py "$s2_stack" "$out/previews/rgb_$date.tif" "$date" \
    "$out/previews/s2_and_embedding_$date.png"
done
echo "  $out/previews/s2_and_embedding_<date>.png: true colour (left), embedding PCA (right)"

echo "== 5/6 Map GPP from the embeddings (cameo:predictgpp)"
qp cameo:predictgpp -- "EMBEDDINGS=$out/embeddings/embeddings.vrt" "OUTPUT_FOLDER=$out/gpp" > "$out/gpp.json"
echo "  $(ls "$out"/gpp/gpp_*.tif | wc -l) daily GPP rasters -> $(field GPP < "$out/gpp.json")"
echo "== 6/6 Similarity to one field and 6 clusters (cameo:similarity, cameo:cluster)"
# The example: the pixel at row 20, column 40 of the chip (inside a field), as a GeoJSON point.
.venv/bin/python - "$s2_stack" "$out/previews/example.geojson" <<'PY'
import json, sys
import rasterio
with rasterio.open(sys.argv[1]) as data:
    x, y = data.transform * (40.5, 20.5)
    crs = data.crs.to_string()
json.dump({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": crs}},
           "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [x, y]}}]},
          open(sys.argv[2], "w"))
PY
date=2018-06-30
qp cameo:similarity -- "EMBEDDINGS=$out/embeddings/embeddings.vrt" "EXAMPLES=$out/previews/example.geojson" \
  "DATE=$date" "OUTPUT=$out/previews/similarity_$date.tif" > "$out/previews/similarity.json"
.venv/bin/python scripts/demo_previews.py "$s2_stack" "$out/previews/similarity_$date.tif" "$date" \
  "$out/previews/s2_and_similarity_$date.png"
qp cameo:cluster -- "EMBEDDINGS=$out/embeddings/embeddings.vrt" K=6 SEED=0 "OUTPUT=$out/previews/clusters_6.tif" \
  > "$out/previews/clusters.json"
.venv/bin/python scripts/demo_previews.py "$s2_stack" "$out/previews/clusters_6.tif" "$date" \
  "$out/previews/s2_and_clusters_6.png"
echo "  $out/previews/s2_and_similarity_$date.png: true colour (left), similarity to the pixel at row 20,"
echo "  column 40 on $date (right: red = similar, blue = opposite); s2_and_clusters_6.png: 6 k-means"
echo "  clusters of all dates' embeddings"
echo "Demo finished; outputs in $out"
