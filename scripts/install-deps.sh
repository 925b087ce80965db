#!/usr/bin/env bash
# Installs everything the lab and the tests need on a fresh Debian machine (run as root), then the
# npm dependencies. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  iproute2 iputils-ping util-linux procps psmisc openssl   # netns, veth, vxlan; ping; nsenter/flock; pgrep; certs
  etcd-server etcd-client                                  # the flannel store (started by tests/lab on loopback or in a netns)
  containernetworking-plugins                              # Go reference plugins in /usr/lib/cni (side-by-side tests, portmap)
  iptables nftables tcpdump iperf3                         # ipMasq rules, captures, throughput bench
  podman runc busybox containerd                           # real container runtimes for the e2e tests (podman; containerd CRI)
  wireguard-go wireguard-tools prometheus                  # userspace WireGuard (this kernel has no module); metrics scraped by a real Prometheus + promtool
  $(command -v kubectl >/dev/null 2>&1 || echo kubernetes-client)  # kubectl 1.20 for the API-server double's tests (not where a kubectl exists: Debian's clashes with the Cloud SDK's /usr/bin/kubectl)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 20.16: process.getBuiltinModule (host-local loads child_process only when it needs flock(1))
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 16) ? 0 : 1)' 2>/dev/null; then
  echo "install-deps: Node.js >= 20.16 is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
