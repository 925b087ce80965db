#!/usr/bin/env bash
# Throughput: iperf3 pod-to-pod across hosts through OUR fabric (the lab: flanneld + our CNI plugins)
# versus the same kernel VXLAN set up by hand with ip(8) (the device, routes, neighbour and FDB entries
# flanneld would program, plus the pod-side bridge port and masquerade rules the CNI chain makes, see
# hand_pod), interleaved run by run so machine
# noise hits both alike. Prints a table and the ratio of medians (target ≥ 0.95).
# Then a wireguard row: the same pod-to-pod runs through a second lab on the wireguard backend
# (userspace wireguard-go here: the kernel has no WireGuard), reported, not targeted.
#   ROUNDS (default 5), SECS per run (default 4), WG=0 skips the wireguard row,
#   LAB_SKIP_BUILD=1 uses the dist/ already built
# Everything lives in its own namespaces (fl-bt-* for our fabric, fl-bh-* for the hand-made one) and is
# removed at the end, also on failure or Ctrl-C.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-4}

export LAB_PREFIX=fl-bt-$$- LAB_HOSTS=2 LAB_PODS=1 LAB_UNDERLAY=192.168.101
export LAB_DIR
LAB_DIR=$(mktemp -d /tmp/flannel-bench-tput.XXXXXX)
# shellcheck source=scripts/lab/lib.sh
. scripts/lab/lib.sh

H=fl-bh-$$-   # the hand-made twin
HAND_NS=()
cleanup() {
  for n in "${HAND_NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  wg_lab lab_down
  lab_down
}
WG_DIR=$(mktemp -d /tmp/flannel-bench-tput-wg.XXXXXX)
WG_PREFIX=fl-bw-$$-
# the wireguard lab: lib.sh's functions with its own state dir, prefix, underlay and config
wg_lab() {
  LAB_DIR=$WG_DIR LAB_PREFIX=$WG_PREFIX LAB_UNDERLAY=192.168.103 LAB_ETCD_IP=192.168.103.254 LAB_ETCD=http://192.168.103.254:2379 \
    LAB_CONFIG='{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}' "$@"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hand_up() {
  local ns
  for ns in ${H}ul ${H}h1 ${H}h2 ${H}p1 ${H}p2; do
    HAND_NS+=("$ns"); ip netns add "$ns"; ip -n "$ns" link set lo up
  done
  ip -n ${H}ul link add br0 type bridge
  ip -n ${H}ul link set br0 up
  local i mac1 mac2
  for i in 1 2; do
    ip link add "ul$i" netns ${H}ul type veth peer name eth0 netns ${H}h$i
    ip -n ${H}ul link set "ul$i" master br0 up
    ip -n ${H}h$i addr add 192.168.102.$i/24 dev eth0
    ip -n ${H}h$i link set eth0 up
    ip netns exec ${H}h$i sysctl -qw net.ipv4.ip_forward=1
    ip -n ${H}h$i link add flannel.100 type vxlan id 100 local 192.168.102.$i dev eth0 dstport 8472 nolearning
    ip -n ${H}h$i link set flannel.100 mtu 1450
  done
  ip -n ${H}h1 addr add 10.10.0.0/32 dev flannel.100
  ip -n ${H}h2 addr add 10.10.16.0/32 dev flannel.100
  ip -n ${H}h1 link set flannel.100 up
  ip -n ${H}h2 link set flannel.100 up
  mac1=$(ip -n ${H}h1 -br link show flannel.100 | awk '{print $3}')
  mac2=$(ip -n ${H}h2 -br link show flannel.100 | awk '{print $3}')
  ip -n ${H}h1 neigh add 10.10.16.0 lladdr "$mac2" dev flannel.100 nud permanent
  ip netns exec ${H}h1 bridge fdb append "$mac2" dev flannel.100 dst 192.168.102.2
  ip -n ${H}h1 route add 10.10.16.0/20 via 10.10.16.0 dev flannel.100 onlink
  ip -n ${H}h2 neigh add 10.10.0.0 lladdr "$mac1" dev flannel.100 nud permanent
  ip netns exec ${H}h2 bridge fdb append "$mac1" dev flannel.100 dst 192.168.102.1
  ip -n ${H}h2 route add 10.10.0.0/20 via 10.10.0.0 dev flannel.100 onlink
  hand_pod ${H}h1 ${H}p1 10.10.0.1 10.10.0.2
  hand_pod ${H}h2 ${H}p2 10.10.16.1 10.10.16.2
}

# The pod side as the lab's CNI chain leaves it, so both sides differ only in who programmed the
# fabric: a hairpin bridge port and the bridge plugin's per-pod masquerade chain (which also turns
# conntrack on for the host, as on a flannel node).
hand_pod() { # host podns gw podip
  ip -n "$1" link add cni0 type bridge 2>/dev/null || true
  ip -n "$1" addr add "$3/20" dev cni0
  ip -n "$1" link set cni0 up
  ip link add veth0 netns "$1" type veth peer name eth0 netns "$2"
  ip -n "$1" link set veth0 master cni0 up
  ip -n "$1" link set veth0 type bridge_slave hairpin on
  printf '*nat\n:CNI-hand - [0:0]\n-A CNI-hand -d %s/20 -j ACCEPT\n-A CNI-hand ! -d 224.0.0.0/4 -j MASQUERADE\n-A POSTROUTING -s %s/32 -j CNI-hand\nCOMMIT\n' \
    "${3%.*}.0" "$4" | ip netns exec "$1" iptables-restore --noflush
  ip -n "$2" addr add "$4/20" dev eth0
  ip -n "$2" link set eth0 mtu 1450 up
  ip -n "$2" route add default via "$3"
}

# iperf_run CLIENT-NS SERVER-NS SERVER-IP: one TCP run, prints Gbit/s received.
# The server is bounded by timeout(1) and the client starts once the server listens: a client that
# raced the server's bind could leave a one-off server waiting forever.
iperf_run() {
  local out
  timeout $((SECS + 15)) ip netns exec "$2" iperf3 -s -1 -B "$3" >/dev/null 2>&1 &
  local spid=$!
  lab_wait 5 sh -c "ip netns exec '$2' ss -Hltn 'sport = :5201' | grep -q ." || { kill "$spid" 2>/dev/null; echo 0; return; }
  out=$(timeout $((SECS + 10)) ip netns exec "$1" iperf3 -c "$3" -t "$SECS" -J 2>/dev/null) || out=''
  wait "$spid" 2>/dev/null
  [ -n "$out" ] || { echo 0; return; }
  node -e 'const j=JSON.parse(process.argv[1]);console.log((j.end.sum_received.bits_per_second/1e9).toFixed(2))' "$out"
}

echo "building and starting the lab (2 hosts, 1 pod each) and the hand-made twin..." >&2
[ "${LAB_SKIP_BUILD:-}" = 1 ] || npm run --silent build >&2 || exit 1
lab_up >&2 || { echo "lab failed" >&2; exit 1; }
hand_up || { echo "hand-made topology failed" >&2; exit 1; }
ours_src=$(lab_ns_pod 1 1); ours_dst=$(lab_ns_pod 2 1); ours_ip=$(lab_pod_ip 2 1)
lab_wait 10 ip netns exec "$ours_src" ping -c1 -W1 "$ours_ip" || { echo "our fabric does not pass traffic" >&2; exit 1; }
lab_wait 10 ip netns exec ${H}p1 ping -c1 -W1 10.10.16.2 || { echo "hand-made fabric does not pass traffic" >&2; exit 1; }

ours=(); hand=()
printf '\n| round | ours (Gbit/s) | by hand (Gbit/s) |\n|---|---|---|\n'
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    a=$(iperf_run "$ours_src" "$ours_dst" "$ours_ip"); b=$(iperf_run ${H}p1 ${H}p2 10.10.16.2)
  else
    b=$(iperf_run ${H}p1 ${H}p2 10.10.16.2); a=$(iperf_run "$ours_src" "$ours_dst" "$ours_ip")
  fi
  ours+=("$a"); hand+=("$b")
  printf '| %d | %s | %s |\n' "$r" "$a" "$b"
done
node -e '
  const med = (a) => { const s = a.map(Number).sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const [o, h] = [process.argv[1].split(" "), process.argv[2].split(" ")];
  const mo = med(o), mh = med(h);
  console.log(`| **median** | **${mo.toFixed(2)}** | **${mh.toFixed(2)}** |`);
  console.log(`\nratio ours/by-hand (medians): ${(mo / mh).toFixed(3)}  (target >= 0.95)`);
' "${ours[*]}" "${hand[*]}"

[ "${WG:-1}" = 1 ] || exit 0
# --- wireguard row -------------------------------------------------------------------------------
echo "starting a second lab on the wireguard backend..." >&2
wg_lab lab_up >&2 || { echo "wireguard lab failed" >&2; exit 1; }
wg_src=$(wg_lab lab_ns_pod 1 1); wg_dst=$(wg_lab lab_ns_pod 2 1); wg_ip=$(wg_lab lab_pod_ip 2 1)
lab_wait 10 ip netns exec "$wg_src" ping -c1 -W1 "$wg_ip" || { echo "the wireguard fabric does not pass traffic" >&2; exit 1; }
wg=()
for r in $(seq 1 "$ROUNDS"); do wg+=("$(iperf_run "$wg_src" "$wg_dst" "$wg_ip")"); done
node -e '
  const med = (a) => { const s = a.map(Number).sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const [o, w] = [process.argv[1].split(" "), process.argv[2].split(" ")];
  console.log(`\n| backend (ours, pod to pod) | runs (Gbit/s) | median (Gbit/s) |\n|---|---|---|`);
  console.log(`| vxlan (kernel) | ${o.join(" ")} | ${med(o).toFixed(2)} |`);
  console.log(`| wireguard (userspace wireguard-go) | ${w.join(" ")} | ${med(w).toFixed(2)} |`);
  console.log(`\nwireguard/vxlan (medians): ${(med(w) / med(o)).toFixed(3)}  (reported, not a target)`);
' "${ours[*]}" "${wg[*]}"
