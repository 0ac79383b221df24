#!/usr/bin/env bash
# Set up CAMEO for development on Debian/Ubuntu: QGIS, a venv, the plugin link.
# Idempotent: each step checks whether it is needed, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

SYSTEM_PYTHON=/usr/bin/python3
VENV=.venv
PLUGINS_DIR=${QGIS_PLUGINS_DIR:-$HOME/.local/share/QGIS/QGIS3/profiles/default/python/plugins}
# QGIS itself, and the geospatial Python packages built against QGIS's own GDAL/PROJ/GEOS.
APT_PACKAGES=(qgis python3-qgis qgis-providers python3-venv python3-pip
              python3-rasterio python3-pyproj python3-shapely
              python3-sklearn python3-matplotlib  # optional: cluster/classify, the pixel inspector
              xvfb x11-apps)  # QGIS desktop under a virtual screen in the tests

say() { printf '[setup] %s\n' "$*"; }

install_apt_packages() {
  local missing=()
  for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    say "missing ${missing[*]}, and this is not a Debian/Ubuntu system: install QGIS >= 3.22"
    say "and those packages with your system's package manager (see README), then rerun."
    exit 1
  fi
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  say "installing ${missing[*]} with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_python_packages() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV (with system site packages, so PyQGIS and GDAL stay visible)"
    "$SYSTEM_PYTHON" -m venv --system-site-packages "$VENV"
  fi
  local stamp="$VENV/.requirements.sha256"
  local wanted
  wanted=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    return 0
  fi
  say "installing pinned Python packages into $VENV"
  "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
  echo "$wanted" > "$stamp"
}

link_plugin() {
  local link="$PLUGINS_DIR/cameo"
  mkdir -p "$PLUGINS_DIR"
  if [ -L "$link" ]; then
    [ "$(readlink -f "$link")" = "$repo" ] && return 0
    say "relinking $link (it pointed to $(readlink -f "$link"))"
    rm "$link"
  elif [ -e "$link" ]; then
    say "$link exists and is not a link to this checkout: remove it (an installed CAMEO"
    say "release?) or set QGIS_PLUGINS_DIR, then rerun."
    exit 1
  fi
  ln -s "$repo" "$link"
  say "linked $link -> $repo"
}

enable_plugin() {
  # `plugins enable` exits non-zero when the plugin is enabled already: check the list.
  scripts/qgis-process plugins 2>/dev/null | grep -q '^\* cameo$' && return 0
  scripts/qgis-process plugins enable cameo >/dev/null 2>&1 || true
  if ! scripts/qgis-process plugins 2>/dev/null | grep -q '^\* cameo$'; then
    say "qgis_process does not list cameo as enabled: run 'scripts/qgis-process plugins' to see why"
    exit 1
  fi
}

install_apt_packages
install_python_packages
link_plugin
enable_plugin
say "ready: $("$VENV/bin/python" -c 'import numpy, onnxruntime; print("numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__)')"
