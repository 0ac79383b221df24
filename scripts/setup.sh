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
# Where apt offers ONNX Runtime (Debian 13 and newer, Ubuntu releases that have it), it
# has every training and test package too: there apt installs everything, pip nothing.
APT_ONLY_PACKAGES=(python3-onnxruntime python3-torch python3-onnx python3-tqdm
                   python3-matplotlib python3-pytest python3-hypothesis
                   python3-dask python3-distributed python3-pil)

say() { printf '[setup] %s\n' "$*"; }

apt_has() {  # apt_has PACKAGE: the configured archives offer it
  [ -n "$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)')" ]
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_apt_packages() {
  local missing=() package
  if ! command -v apt-get >/dev/null; then
    for package in "${APT_PACKAGES[@]}"; do installed "$package" || missing+=("$package"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "missing ${missing[*]}, and this is not a Debian/Ubuntu system: install QGIS >= 3.22"
    say "and those packages with your system's package manager (see README), then rerun."
    exit 1
  fi
  if installed python3-onnxruntime || apt_has python3-onnxruntime; then
    APT_PACKAGES+=("${APT_ONLY_PACKAGES[@]}")
  fi
  for package in "${APT_PACKAGES[@]}"; do installed "$package" || missing+=("$package"); done
  [ ${#missing[@]} -eq 0 ] && return 0
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
  if installed python3-onnxruntime; then
    return 0  # everything came from apt: nothing for pip, and numpy stays Debian's
  fi
  local stamp="$VENV/.requirements.sha256"
  local wanted
  wanted=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    return 0
  fi
  # Hold the numpy QGIS ships: a package that needs another one fails here instead of
  # replacing the numpy PyQGIS and GDAL are compiled against.
  local numpy_version
  numpy_version=$("$SYSTEM_PYTHON" -c 'import numpy; print(numpy.__version__)')
  echo "numpy==$numpy_version" > "$VENV/numpy-constraint.txt"
  say "installing pinned Python packages into $VENV (numpy held at $numpy_version)"
  "$VENV/bin/python" -m pip install -q -c "$VENV/numpy-constraint.txt" -r requirements-dev.txt
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
