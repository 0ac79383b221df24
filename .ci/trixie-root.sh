#!/usr/bin/env bash
# CI's second QGIS: a Debian 13 (trixie) root with QGIS 3.44 from trixie-backports,
# Python 3.13, numpy 2 and Debian's own onnxruntime, rasterio, pyproj, shapely, torch.
#
#   .ci/trixie-root.sh path           print the root's folder (keyed on the package list)
#   .ci/trixie-root.sh build          build it unless it exists (debootstrap + apt, root)
#   .ci/trixie-root.sh run CMD...     run CMD inside it, in this checkout, with CAMEO_DATA
#
# The root is kept in $CAMEO_CI_CACHE (default /var/cache/cameo-ci) as trixie-<hash>,
# a hash of .ci/trixie-packages.txt and of the build steps below, so later CI runs reuse it and a
# changed package list builds a new one. It is built in a temporary folder and renamed
# into place only when complete. Mounts are undone on every exit (trap).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
CACHE=${CAMEO_CI_CACHE:-/var/cache/cameo-ci}
MIRROR=${CAMEO_CI_MIRROR:-http://deb.debian.org/debian}
PACKAGE_LIST="$here/trixie-packages.txt"

say() { printf '[trixie-root] %s\n' "$*" >&2; }

root_dir() {  # keyed on what goes into the root: the package list and the build steps
  local key
  key=$( (cat "$PACKAGE_LIST"; declare -f write_apt_sources build_root) | sha256sum | cut -c1-12)
  echo "$CACHE/trixie-$key"
}

packages() { grep -v '^\s*#' "$PACKAGE_LIST" | grep -v '^\s*$'; }

MOUNTED=()
mount_into() {  # mount_into ROOT SOURCE TARGET [mount options...]
  local root=$1 source=$2 target=$1$3
  shift 3
  mkdir -p "$target"
  mount "$@" "$source" "$target"
  MOUNTED=("$target" "${MOUNTED[@]}")
}

unmount_all() {
  local target
  for target in "${MOUNTED[@]}"; do
    umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || say "could not unmount $target"
  done
  MOUNTED=()
}
RUN_TMP=""
cleanup() {
  unmount_all
  if [ -n "$RUN_TMP" ]; then rm -rf "$RUN_TMP"; fi
}
trap cleanup EXIT

mount_system() {  # the kernel file systems apt, Python and QGIS expect
  local root=$1
  mount_into "$root" proc /proc -t proc
  mount_into "$root" sysfs /sys -t sysfs
  mount_into "$root" /dev /dev --bind
  mount_into "$root" devpts /dev/pts -t devpts -o newinstance,ptmxmode=0666
  mount_into "$root" tmpfs /dev/shm -t tmpfs
  mount_into "$root" tmpfs /run -t tmpfs
}

write_apt_sources() {
  local root=$1
  cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: trixie trixie-updates trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -f "$root/etc/apt/sources.list"
  # QGIS 3.44 (every binary package built from the qgis source) from backports only.
  cat > "$root/etc/apt/preferences.d/qgis-backports" <<EOF
Package: src:qgis
Pin: release n=trixie-backports
Pin-Priority: 990
EOF
  echo 'APT::Install-Recommends "false";' > "$root/etc/apt/apt.conf.d/90no-recommends"
}

build_root() {
  local root partial
  root=$(root_dir)
  if [ -x "$root/usr/bin/qgis_process" ]; then
    say "reusing $root"
    return 0
  fi
  command -v debootstrap >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null
  mkdir -p "$CACHE"
  partial="$root.partial"
  rm -rf "$partial"
  say "debootstrap trixie into $partial"
  debootstrap --variant=minbase trixie "$partial" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  write_apt_sources "$partial"
  mount_system "$partial"
  say "apt-get install $(packages | tr '\n' ' ')"
  chroot "$partial" apt-get update -qq
  # shellcheck disable=SC2046
  DEBIAN_FRONTEND=noninteractive chroot "$partial" apt-get install -y -qq $(packages) \
    >"$CACHE/apt.log" 2>&1 || { tail -30 "$CACHE/apt.log" >&2; exit 1; }
  chroot "$partial" apt-get clean
  unmount_all
  mv "$partial" "$root"
  say "built $root"
}

run_in_root() {  # this checkout and the sample data appear at the same paths inside
  local root data
  root=$(root_dir)
  [ -x "$root/usr/bin/qgis_process" ] || { say "no root at $root: run '$0 build' first"; exit 1; }
  data=$(cd "${CAMEO_DATA:-$repo/../shared/data}" && pwd)
  if [ -L "$repo/.venv" ]; then
    say "$repo/.venv is a symbolic link; the root mounts its own venv there: use a checkout"
    say "whose .venv is a folder (as 'make setup' makes it) or has none"
    exit 1
  fi
  mount_system "$root"
  # A fresh /tmp each run (on disk, removed afterwards), so the cached root stays as
  # built; mounted first, so a checkout or data folder under /tmp shows through it.
  RUN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cameo-trixie-tmp.XXXXXX")
  chmod 1777 "$RUN_TMP"
  mount_into "$root" "$RUN_TMP" /tmp --bind
  mount_into "$root" "$repo" "$repo" --bind
  mount_into "$root" "$data" "$data" --bind
  mount -o remount,bind,ro "$root$data"
  local git_dir  # a worktree's .git is a file naming the main repository's: show that too
  git_dir=$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
  if [ -n "$git_dir" ] && [ "${git_dir#"$repo"/}" = "$git_dir" ]; then
    mount_into "$root" "$git_dir" "$git_dir" --bind
    mount -o remount,bind,ro "$root$git_dir"
  fi
  # The checkout's .venv belongs to the host's Python: inside, .venv is the root's own
  # (made there by `make setup`), so the README's commands run unchanged.
  mkdir -p "$root/opt/cameo-venv" "$repo/.venv"
  mount_into "$root" "$root/opt/cameo-venv" "$repo/.venv" --bind
  local status=0
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
    TERM="${TERM:-dumb}" CAMEO_DATA="$data" CI="${CI:-}" \
    QGIS_PLUGINS_DIR="${CAMEO_ROOT_PLUGINS_DIR:-/root/.local/share/QGIS/QGIS3/profiles/default/python/plugins}" \
    bash -c 'cd "$0" && exec "$@"' "$repo" "$@" || status=$?
  return "$status"
}

# Every mount happens in a private mount namespace: the host never sees them, and the
# kernel drops them when this script ends, however it ends (the trap unmounts first).
if [ -z "${CAMEO_CI_IN_NAMESPACE:-}" ] && [ "${1:-}" != path ]; then
  [ "$(id -u)" -eq 0 ] || { say "needs root (debootstrap, chroot, mounts)"; exit 1; }
  CAMEO_CI_IN_NAMESPACE=1 exec unshare --mount --propagation private "$0" "$@"
fi

case "${1:-}" in
  path) root_dir ;;
  build) build_root ;;
  run) shift; run_in_root "$@" ;;
  *) echo "usage: $0 path | build | run CMD..." >&2; exit 2 ;;
esac
