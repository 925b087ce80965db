#!/bin/sh
# Installs the self-contained executables (npm run build → dist/exe) onto a host, as an init container
# or a package would: no Node needed, on the host or here (this is plain sh + coreutils).
#
#   scripts/install.sh [--prefix ROOT] [--cni-bin-dir DIR] [--bin-dir DIR] [--plugins LIST] [--from DIR]
#
#   --prefix ROOT      install under ROOT: plugins into ROOT/opt/cni/bin, flanneld into ROOT/usr/local/bin
#   --cni-bin-dir DIR  where the CNI plugins go (default ROOT/opt/cni/bin)
#   --bin-dir DIR      where flanneld and flannelctl go (default ROOT/usr/local/bin); '' skips them
#   --plugins LIST     comma-separated CNI names (default flannel; "all" = flannel,bridge,host-local,loopback)
#   --from DIR         the built executables (default: dist/exe beside this script)
#
# The CNI plugins are one multi-call file (dist/exe/flannel-cni) under several names: it is copied ONCE
# per bin dir under a temporary name (.flannel-cni.<pid>.tmp, which no runtime execs: it is not a
# plugin name a config can give), fsynced, and each name is then a hard link to it made under its own
# temporary name and renamed over the old file. rename(2) is atomic: a runtime exec'ing /opt/cni/bin/
# flannel meanwhile runs the old file or the new one, never half of one, and an old process keeps its
# inode. A name that already carries the same build (size + the build line at its end) is left alone.
# flanneld is the same kind of file for the node side: flannelctl is a hard link to it, made the same way.
set -eu

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
from="$here/../dist/exe"
prefix=""
cni_bin_dir=""
bin_dir=""
bin_dir_set=0
plugins="flannel"
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2?}; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --cni-bin-dir) cni_bin_dir=${2?}; shift 2 ;;
    --cni-bin-dir=*) cni_bin_dir=${1#*=}; shift ;;
    --bin-dir) bin_dir=${2?}; bin_dir_set=1; shift 2 ;;
    --bin-dir=*) bin_dir=${1#*=}; bin_dir_set=1; shift ;;
    --plugins) plugins=${2?}; shift 2 ;;
    --plugins=*) plugins=${1#*=}; shift ;;
    --from) from=${2?}; shift 2 ;;
    --from=*) from=${1#*=}; shift ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown argument: $1" >&2; usage ;;
  esac
done
[ -n "$cni_bin_dir" ] || cni_bin_dir="$prefix/opt/cni/bin"
[ "$bin_dir_set" = 1 ] || bin_dir="$prefix/usr/local/bin"
[ "$plugins" = all ] && plugins="flannel,bridge,host-local,loopback"

for p in $(echo "$plugins" | tr ',' ' '); do
  case "$p" in
    flannel|bridge|host-local|loopback|cnitool) ;;
    *) echo "install.sh: --plugins: $p is not one of ours (flannel, bridge, host-local, loopback, cnitool)" >&2; exit 2 ;;
  esac
done
src="$from/flannel-cni"
[ -f "$src" ] || { echo "install.sh: $src not found: run npm run build first (or give --from)" >&2; exit 1; }

# The identity of an executable: its size and its last line (the build id scripts/build-exe.mjs appends).
ident() { [ -f "$1" ] && printf '%s %s' "$(wc -c < "$1")" "$(tail -c 128 "$1" | tail -n 1)"; }

# install_names SRC DIR NAME...: SRC copied once into DIR, every NAME a hard link to that copy.
install_names() {
  isrc=$1; dir=$2; shift 2
  mkdir -p "$dir"
  want=$(ident "$isrc")
  todo=""
  for n in "$@"; do
    if [ "$(ident "$dir/$n" || true)" = "$want" ]; then echo "install.sh: unchanged $dir/$n"; else todo="$todo $n"; fi
  done
  [ -n "$todo" ] || return 0
  base=$(basename "$isrc")
  tmp="$dir/.$base.$$.copy.tmp"
  trap 'rm -f "$tmp" "$dir"/.*.$$.tmp' EXIT INT TERM
  cp "$isrc" "$tmp"
  chmod 0755 "$tmp"
  sync "$tmp"
  for n in $todo; do
    ln -f "$tmp" "$dir/.$n.$$.tmp"
    mv -f "$dir/.$n.$$.tmp" "$dir/$n"
    echo "install.sh: installed $dir/$n"
  done
  rm -f "$tmp"
  sync "$dir"
  trap - EXIT INT TERM
}

# shellcheck disable=SC2046 # the names are checked above: no spaces or globs
install_names "$src" "$cni_bin_dir" $(echo "$plugins" | tr ',' ' ')
if [ -n "$bin_dir" ]; then
  [ -f "$from/flanneld" ] || { echo "install.sh: $from/flanneld not found: run npm run build first (or --bin-dir '' to skip it)" >&2; exit 1; }
  install_names "$from/flanneld" "$bin_dir" flanneld flannelctl
fi
