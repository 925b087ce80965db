#!/usr/bin/env bash
# Convergence: our flanneld in one host namespace with synthetic vxlan peer leases in etcd.
# Measures (1) flanneld start with N existing leases → every peer's route in the kernel, for N = 1000
# and 5000, (2) one new lease put → its route in the kernel, p50/p99 over EVENTS puts, (3) one peer
# route deleted with `ip` → back (repair; n/a when not within 5 s), (4) PUTS leases put as fast as the
# client goes while flanneld runs (started with 0 peers) → all routes, beside the time the puts took.
# Once per kernel adapter (FLANNEL_KERNEL=iproute2 and netlink; KERNELS="iproute2" picks). Targets:
# 5000 peers ≤ 1 s, one event ≤ 5 ms p99, repair ≤ 1 s, puts while running ≤ 1.2× the puts. Prints
# tables with the flanneld runtime. Runs in its own namespaces (fl-bc-*), removed at the end.
#   NS="1000 5000" EVENTS=100 RUNS=3 PUTS=5000 PUT_RUNS=2 KERNELS=
set -uo pipefail
cd "$(dirname "$0")/../.."
export LAB_PREFIX=fl-bc-$$- LAB_HOSTS=1 LAB_PODS=0 LAB_UNDERLAY=192.168.103
export LAB_CONFIG='{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":100}}'
export LAB_DIR
LAB_DIR=$(mktemp -d /tmp/flannel-bench-conv.XXXXXX)
# shellcheck source=scripts/lab/lib.sh
. scripts/lab/lib.sh
trap lab_down EXIT
trap 'exit 130' INT TERM

[ "${LAB_SKIP_BUILD:-}" = 1 ] || npm run --silent build >&2 || exit 1
mkdir -p "$LAB_DIR/pids"; : >"$LAB_DIR/netns"
{ lab_underlay_up && lab_etcd_up && lab_host_up 1; } >&2 || { echo "setup failed" >&2; exit 1; }

# The driver runs inside the underlay namespace so that it reaches etcd on 127.0.0.1; it starts
# flanneld in the host namespace itself (ip netns exec) and watches that namespace's routes.
ip netns exec "$(lab_ns_ul)" node scripts/bench/converge-run.mjs \
  --host-ns "$(lab_ns_host 1)" --etcd-host "$LAB_ETCD" --flanneld "$LAB_BIN/flanneld" --dir "$LAB_DIR" \
  --ns "${NS-1000 5000}" --events "${EVENTS:-100}" --runs "${RUNS:-3}" \
  --puts "${PUTS:-5000}" --put-runs "${PUT_RUNS:-2}" --kernels "${KERNELS:-}" --flanneld-args "$LAB_FLANNELD_ARGS"
