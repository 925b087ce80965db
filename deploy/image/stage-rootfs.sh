#!/usr/bin/env bash
# Stages the build context of /Containerfile from THIS machine, offline: no base image is pulled.
#   deploy/image/stage-rootfs.sh <context-dir>      (run `npm run build` first)
# <context-dir>/rootfs gets:
#   /opt/bin/*   dist/exe: the self-contained executables (flanneld; flannel-cni and its names flannel,
#                bridge, host-local, loopback, cnitool, install-cni as hard links to it). No Node in
#                the image, and none needed on the host the init container installs the plugins onto;
#   what flanneld and the plugins exec: ip, iptables/ip6tables (+ -save/-restore, the xtables
#   extensions they dlopen), nft, flock, sh; each with the shared libraries ldd lists, at their paths
#   here (so the image has this machine's glibc, and runs where this machine's binaries run).
# Why not FROM a distro base: no registry is reachable here; a base pulled elsewhere would do as well
# (the layout under /opt/bin is all the Containerfile relies on).
set -euo pipefail
ctx=${1:?usage: stage-rootfs.sh <context-dir>}
root="$(cd "$(dirname "$0")/../.." && pwd)"
dist="$root/dist/exe"
[ -x "$dist/flanneld" ] && [ -x "$dist/install-cni" ] || { echo "stage-rootfs: $dist lacks flanneld or install-cni: run npm run build" >&2; exit 1; }
rootfs="$ctx/rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs"/{opt/bin,tmp,etc,run,proc,sys,dev}
chmod 1777 "$rootfs/tmp"
# merged /usr as here (/bin -> usr/bin, ...), so #!/bin/sh and the loader path /lib64/ld-linux-* resolve
for d in bin sbin lib lib32 lib64; do
  if [ -L "/$d" ]; then
    t=$(readlink "/$d")
    case $t in /*) ;; *) mkdir -p "$rootfs/$t"; cp -P "/$d" "$rootfs/$d" ;; esac
  fi
done

# copies a path as it is here: symlinks stay symlinks (each hop), files keep their mode (bash builtins
# only: this runs for every library, and process starts are what make it slow on a busy machine)
copy_path() {
  local p=$1 t
  while [ -L "$p" ]; do
    [ -e "$rootfs$p" ] || [ -L "$rootfs$p" ] || { mkdir -p "$rootfs${p%/*}"; cp -P "$p" "$rootfs$p"; }
    t=$(readlink "$p")
    case $t in /*) p=$t ;; *) p="${p%/*}/$t" ;; esac
  done
  [ -e "$rootfs$p" ] || { mkdir -p "$rootfs${p%/*}"; cp -p "$p" "$rootfs$p"; }
}

elves=()
for tool in sh ip nft flock iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  p=$(command -v "$tool") || { echo "stage-rootfs: $tool not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
  copy_path "$p"
  elves+=("$(readlink -f "$p")")
done
# the extensions iptables dlopens (ldd cannot see them); they need only libc and libxtables, which
# the iptables binary brings
xt=/usr/lib/x86_64-linux-gnu/xtables
[ -d "$xt" ] && { mkdir -p "$rootfs$xt"; cp -a "$xt/." "$rootfs$xt/"; }
# the self-contained executables link glibc too (libc, libpthread, libdl, libm and the loader)
elves+=("$dist/flanneld" "$dist/flannel-cni")
# every binary and the shared libraries they need, from one ldd run
for f in "${elves[@]}"; do [[ $f == "$dist"/* ]] || copy_path "$f"; done
for lib in $(ldd "${elves[@]}" 2>/dev/null | grep -o '/[^ ):]*\.so[^ ):]*' | sort -u); do copy_path "$lib"; done
# the alternatives the iptables links go through
for a in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  [ -L "/etc/alternatives/$a" ] && copy_path "/etc/alternatives/$a"
done
# -a keeps the hard links: flannel-cni is in the image once, whatever the number of its names
cp -a "$dist/." "$rootfs/opt/bin/"
echo "stage-rootfs: $(du -sh "$rootfs" | cut -f1) in $rootfs"
