#!/usr/bin/env bash
# The multi-host lab: `bash scripts/lab.sh up` (npm run lab) builds, starts etcd in an underlay netns,
# runs our flanneld in 3 host namespaces, adds 2 pods per host through our CNI plugins and prints the
# hosts and a cross-host ping matrix. `bash scripts/lab.sh down` (npm run lab:down) removes it all.
# `bash scripts/lab.sh etcd-wipe` kills etcd, deletes its data and restarts it empty (config only).
# LAB_MODE=kube: the Kubernetes API-server double instead of etcd, flanneld --kube-subnet-mgr on each host
# (in-cluster env and service account files), and `kubectl get nodes` with flannel's annotations
# (`bash scripts/lab.sh nodes` prints them again).
# LAB_CONFIG picks the backend and the families: '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}'
# runs the WireGuard fabric (userspace wireguard-go when the kernel has none; each host's flanneld in a
# private mount namespace for wireguard-go's /run/wireguard sockets; `lab_wg I show` in scripts/lab/lib.sh);
# an "IPv6Network" in it makes the lab dual stack (hosts fd00:100::I, pods of both families, and the
# ping matrix in both).
# A failed `up` removes what it created. Needs root; see scripts/lab/lib.sh for the topology and the
# LAB_* variables (LAB_DIR, LAB_PREFIX, LAB_HOSTS, LAB_PODS, ...).
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lab/lib.sh
. scripts/lab/lib.sh

cmd=${1:-up}
case "$cmd" in
  up)
    [ "${LAB_SKIP_BUILD:-}" = 1 ] || npm run --silent build >&2 || { lab_log "build failed"; exit 1; }
    if [ "$LAB_MODE" = kube ] && [ "${LAB_SKIP_BUILD:-}" != 1 ]; then
      node test/kube-apiserver/build.mjs >&2 || { lab_log "build of the API-server double failed"; exit 1; }
    fi
    if ! lab_up; then
      lab_log "up failed; logs:"
      for f in "$LAB_DIR"/etcd.log "$LAB_DIR"/kube-apiserver.log "$LAB_DIR"/h*/flanneld.log; do
        [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
      done
      lab_log "cleaning up"
      lab_down
      exit 1
    fi
    echo
    lab_table
    echo
    echo "cross-host ping matrix (pod -> pod):"
    lab_ping_matrix
    rc=$?
    if [ "$LAB_MODE" = kube ]; then
      echo
      echo "the nodes, as kubectl shows flannel's annotations:"
      lab_kube_nodes
    fi
    echo
    echo "try: ip netns exec $(lab_ns_pod 1 1) ping $(lab_pod_ip 2 1)    ·    tear down: npm run lab:down"
    exit $rc
    ;;
  down)
    lab_down
    lab_log "down"
    ;;
  status)
    lab_table
    echo
    lab_ping_matrix
    [ "$LAB_MODE" != kube ] || { echo; lab_kube_nodes; }
    ;;
  nodes)
    lab_kube_nodes
    ;;
  etcd-wipe)
    # etcd rebuilt empty under running daemons: they re-create their leases (see their logs)
    lab_etcd_wipe || exit 1
    lab_log "etcd wiped and restarted with the config only; leases now:"
    lab_etcdctl get --prefix --keys-only /coreos.com/network/subnets/
    ;;
  *)
    echo "usage: $0 up|down|status|etcd-wipe|nodes" >&2
    exit 2
    ;;
esac
