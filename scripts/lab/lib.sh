# shellcheck shell=bash
# The multi-host lab as shell functions: sourced by scripts/lab.sh, the e2e test and the benchmarks.
#
# Topology (everything inside network namespaces this file creates; nothing in the root namespace):
#   ${P}ul            the underlay: bridge br0 (192.168.100.254/24) and etcd listening on it, or, with
#                     LAB_MODE=kube, the Kubernetes API-server double (test/kube-apiserver) on :6443 (HTTPS,
#                     bearer tokens, kube-flannel's RBAC) with one Node per host and its podCIDR
#   ${P}h1..hN        hosts: eth0 = 192.168.100.i/24 on br0, our flanneld, flannel.<VNI>, cni0
#   ${P}h1p1..        pods, added through our CNI plugins (dist/bin/cnitool + conf/10-flannel.conflist)
# State lives in $LAB_DIR (default <repo>/.lab): pids/, netns list, per-host subnet.env, plugin data dirs,
# logs. `lab_down` kills only the PIDs recorded there (after checking their command line still names
# $LAB_DIR) and deletes only the namespaces recorded there.

LAB_ROOT=${LAB_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LAB_DIR=${LAB_DIR:-$LAB_ROOT/.lab}
LAB_PREFIX=${LAB_PREFIX:-fl-lab-}
LAB_HOSTS=${LAB_HOSTS:-3}
LAB_PODS=${LAB_PODS:-2}
LAB_UNDERLAY=${LAB_UNDERLAY:-192.168.100}
LAB_ETCD_IP=$LAB_UNDERLAY.254
LAB_ETCD=http://$LAB_ETCD_IP:2379
LAB_NETNAME=${LAB_NETNAME:-} # read from the conflist when empty
# the network config put under /coreos.com/network/config (default: conf/net-conf.json, the seed's)
LAB_CONFIG=${LAB_CONFIG:-$(cat "$LAB_ROOT/conf/net-conf.json")}
LAB_VNI=${LAB_VNI:-100}
# the self-contained executables (what ships); LAB_BIN=$LAB_ROOT/dist/bin runs the Node-script build
LAB_BIN=${LAB_BIN:-$LAB_ROOT/dist/exe}
LAB_CONFLIST=${LAB_CONFLIST:-$LAB_ROOT/conf/10-flannel.conflist}
# our plugins first; the reference portmap (kube-flannel's conflist chains it) from Debian's package
LAB_CNI_PATH=${LAB_CNI_PATH:-$LAB_BIN:/usr/lib/cni}
LAB_FLANNELD_ARGS=${LAB_FLANNELD_ARGS:-}
# etcd (flanneld --etcd-endpoints) or kube (flanneld --kube-subnet-mgr against the API-server double)
LAB_MODE=${LAB_MODE:-etcd}
LAB_KUBE_PORT=${LAB_KUBE_PORT:-6443}
LAB_KUBE_URL=https://$LAB_ETCD_IP:$LAB_KUBE_PORT
LAB_KUBE_BIN=${LAB_KUBE_BIN:-$LAB_ROOT/dist/test/kube-apiserver.mjs}

lab_log() { printf 'lab: %s\n' "$*" >&2; }
lab_die() { lab_log "error: $*"; return 1; }

lab_ns_ul() { echo "${LAB_PREFIX}ul"; }
lab_ns_host() { echo "${LAB_PREFIX}h$1"; }
lab_ns_pod() { echo "${LAB_PREFIX}h$1p$2"; }
lab_host_ip() { echo "$LAB_UNDERLAY.$1"; }
lab_host_dir() { echo "$LAB_DIR/h$1"; }
lab_host_ip6() { echo "fd00:100::$1"; }
# Dual stack: the network config has an IPv6Network (hosts get IPv6 underlay addresses, pods both families).
lab_dual_stack() { case "$LAB_CONFIG" in *'"IPv6Network"'*) return 0 ;; esac; return 1; }

# Runs a command in a lab namespace.
lab_in() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

lab_etcdctl() {
  ETCDCTL_API=3 ip netns exec "$(lab_ns_ul)" etcdctl --endpoints=http://127.0.0.1:2379 \
    --dial-timeout=2s --command-timeout=5s "$@"
}

# Creates a namespace and records it for lab_down (before anything can fail).
lab_netns_add() {
  echo "$1" >>"$LAB_DIR/netns"
  ip netns add "$1"
  ip -n "$1" link set lo up
}

# Starts a background process and records its PID under pids/<name>.pid.
lab_spawn() {
  local name=$1 log=$2; shift 2
  "$@" >"$log" 2>&1 &
  local pid=$!
  echo "$pid" >"$LAB_DIR/pids/$name.pid"
}

# True if PID is alive and its command line still names our state dir (so a reused PID is never killed).
lab_pid_is_ours() {
  local pid=$1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$LAB_DIR"
}

# lab_kill NAME [SIGNAL]: stops one recorded process and forgets it.
lab_kill() {
  local name=$1 sig=${2:-TERM} f="$LAB_DIR/pids/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if lab_pid_is_ours "$pid"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do lab_pid_is_ours "$pid" || break; sleep 0.1; done
    if lab_pid_is_ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$f"
}

# Polls a command until it succeeds or the deadline (seconds) passes.
lab_wait() {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}

lab_underlay_up() {
  local ul; ul=$(lab_ns_ul)
  lab_netns_add "$ul"
  ip -n "$ul" link add br0 type bridge
  ip -n "$ul" addr add "$LAB_ETCD_IP/24" dev br0
  ip -n "$ul" link set br0 up
}

lab_etcd_up() {
  local ul; ul=$(lab_ns_ul)
  mkdir -p "$LAB_DIR/etcd"
  lab_spawn etcd "$LAB_DIR/etcd.log" ip netns exec "$ul" etcd --name lab --data-dir "$LAB_DIR/etcd/data" \
    --listen-client-urls "$LAB_ETCD,http://127.0.0.1:2379" --advertise-client-urls "$LAB_ETCD" \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster lab=http://127.0.0.1:2380 --heartbeat-interval=10 --election-timeout=100
  lab_wait 20 lab_etcdctl put /lab/ready 1 || lab_die "etcd did not come up (see $LAB_DIR/etcd.log)"
  lab_etcdctl put /coreos.com/network/config "$LAB_CONFIG" >/dev/null
}

# --- Kubernetes mode (LAB_MODE=kube) ---------------------------------------------------------------
lab_kube_dir() { echo "$LAB_DIR/kube"; }
lab_node_name() { echo "${LAB_PREFIX}h$1"; }
# Host I's podCIDR: the /20 etcd mode would give it (10.10.0.0/20, 10.10.16.0/20, ...) inside the
# default Network 10.0.0.0/8; LAB_KUBE_PODCIDR_FMT overrides it (printf format with the host number).
lab_node_podcidr() {
  if [ -n "${LAB_KUBE_PODCIDR_FMT:-}" ]; then
    # shellcheck disable=SC2059
    printf "$LAB_KUBE_PODCIDR_FMT\n" "$1"
    return
  fi
  local n=$(( ($1 - 1) * 16 ))
  echo "10.$((10 + n / 256)).$((n % 256)).0/20"
}
lab_kube_admin_token() { node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).tokens.admin)' "$(lab_kube_dir)/ready.json"; }

# lab_kube_call METHOD [JSON-ARGS]: the double's test-control API (POST /_double/METHOD), as admin.
lab_kube_call() {
  local d; d=$(lab_kube_dir)
  ip netns exec "$(lab_ns_ul)" curl -sS --fail-with-body --max-time 10 --cacert "$d/ca.crt" \
    -H "Authorization: Bearer $(lab_kube_admin_token)" -X POST --data "${2:-[]}" \
    "https://127.0.0.1:$LAB_KUBE_PORT/_double/$1"
}

# lab_kubectl ARGS...: kubectl (if installed) as admin against the double, from the underlay namespace.
lab_kubectl() {
  local d; d=$(lab_kube_dir)
  [ -f "$d/kubeconfig" ] || printf 'apiVersion: v1\nkind: Config\n' >"$d/kubeconfig"
  ip netns exec "$(lab_ns_ul)" env HOME="$d" KUBECONFIG="$d/kubeconfig" kubectl \
    --server "https://127.0.0.1:$LAB_KUBE_PORT" --certificate-authority "$d/ca.crt" \
    --token "$(lab_kube_admin_token)" --cache-dir "$d/kubectl-cache" "$@"
}

# The API-server double in the underlay namespace, reachable from every host at $LAB_KUBE_URL.
lab_kube_up() {
  local ul d; ul=$(lab_ns_ul); d=$(lab_kube_dir)
  [ -f "$LAB_KUBE_BIN" ] || lab_die "$LAB_KUBE_BIN is missing: run node test/kube-apiserver/build.mjs" || return 1
  mkdir -p "$d"
  # flanneld reads the Network from --net-config-path in kube mode (kube-flannel's ConfigMap)
  printf '%s\n' "$LAB_CONFIG" >"$LAB_DIR/net-conf.json"
  # shellcheck disable=SC2086
  lab_spawn kube-apiserver "$LAB_DIR/kube-apiserver.log" ip netns exec "$ul" node "$LAB_KUBE_BIN" \
    --host 0.0.0.0 --port "$LAB_KUBE_PORT" --auth --rbac flannel --san "$LAB_ETCD_IP" --dir "$d" \
    ${LAB_KUBE_ARGS:-}
  lab_wait 20 test -s "$d/ready.json" || lab_die "the API-server double did not come up (see $LAB_DIR/kube-apiserver.log)"
}

# lab_kube_add_node I: registers host I's Node (as kubelet would) with its podCIDR (as node-ipam would).
lab_kube_add_node() {
  local i=$1
  lab_kube_call addNode "[{\"name\":\"$(lab_node_name "$i")\",\"podCIDRs\":[\"$(lab_node_podcidr "$i")\"],\"internalIP\":\"$(lab_host_ip "$i")\"}]" >/dev/null ||
    lab_die "could not register node $(lab_node_name "$i") in the double"
}

# flannel's view of the nodes, as an operator would ask for it.
lab_kube_nodes() {
  local p='flannel\.alpha\.coreos\.com'
  if command -v kubectl >/dev/null 2>&1; then
    lab_kubectl get nodes -o "custom-columns=NAME:.metadata.name,PODCIDR:.spec.podCIDR,PUBLIC-IP:.metadata.annotations.$p/public-ip,BACKEND:.metadata.annotations.$p/backend-type,BACKEND-DATA:.metadata.annotations.$p/backend-data,NET-UNAVAILABLE:.status.conditions[?(@.type==\"NetworkUnavailable\")].status"
  else
    lab_log "kubectl not installed: the nodes as the double stores them"
    lab_kube_call listNodes | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const n of JSON.parse(s)){const a=n.metadata.annotations??{};console.log(n.metadata.name,n.spec.podCIDR,a["flannel.alpha.coreos.com/public-ip"],a["flannel.alpha.coreos.com/backend-data"])}})'
  fi
}

# lab_etcd_wipe: etcd rebuilt empty (issue 9): kill -9, delete its data dir, start it again on the same
# URLs and put the config back, as an operator restoring a lost etcd would. The flanneld keep running.
lab_etcd_wipe() {
  lab_kill etcd KILL
  rm -rf "$LAB_DIR/etcd/data"
  lab_etcd_up
}

# lab_host_join I [PODS]: one more host (I > LAB_HOSTS is fine) with its flanneld and PODS pods (default 1).
lab_host_join() {
  local i=$1 n=${2:-1} j
  lab_host_up "$i" && lab_flanneld_start "$i" && lab_wait_subnet_env "$i" || return 1
  [ "${LAB_MANUAL_PODS:-}" = 1 ] || lab_write_netconf "$i" || return 1
  for j in $(seq 1 "$n"); do lab_pod_up "$i" "$j" || return 1; done
}

# lab_host_up I: the host namespace, its underlay NIC and a private state dir.
lab_host_up() {
  local i=$1 h ul; h=$(lab_ns_host "$i"); ul=$(lab_ns_ul)
  lab_netns_add "$h"
  ip link add "ul$i" netns "$ul" type veth peer name eth0 netns "$h"
  ip -n "$ul" link set "ul$i" master br0 up
  ip -n "$h" addr add "$(lab_host_ip "$i")/24" dev eth0
  ip -n "$h" link set eth0 up
  ip netns exec "$h" sysctl -qw net.ipv4.ip_forward=1
  if lab_dual_stack; then
    # dual stack (an IPv6Network in LAB_CONFIG): the host's IPv6 underlay address, no DAD wait
    ip -n "$h" addr add "$(lab_host_ip6 "$i")/64" dev eth0 nodad
    ip netns exec "$h" sysctl -qw net.ipv6.conf.all.forwarding=1
  fi
  mkdir -p "$(lab_host_dir "$i")"
  [ "$LAB_MODE" != kube ] || lab_kube_add_node "$i"
}

# lab_flanneld_start I: runs our flanneld in host I (subnet file and state under the host's dir).
lab_flanneld_start() {
  local i=$1 d; d=$(lab_host_dir "$i")
  mkdir -p "$d/state"
  if [ "$LAB_MODE" = kube ]; then
    # in-cluster style: the service host/port env and the service account files (token, ca.crt), which
    # FLANNELD_KUBE_SA_DIR moves from /var/run/secrets/kubernetes.io/serviceaccount into the lab dir
    # shellcheck disable=SC2086
    lab_spawn "flanneld-h$i" "$d/flanneld.log" ip netns exec "$(lab_ns_host "$i")" \
      env FLANNELD_DATA_DIR="$d/state" NODE_NAME="$(lab_node_name "$i")" POD_NAMESPACE=kube-flannel \
      KUBERNETES_SERVICE_HOST="$LAB_ETCD_IP" KUBERNETES_SERVICE_PORT="$LAB_KUBE_PORT" \
      FLANNELD_KUBE_SA_DIR="$(lab_kube_dir)/serviceaccount" "$LAB_BIN/flanneld" \
      --kube-subnet-mgr --net-config-path="$LAB_DIR/net-conf.json" --iface=eth0 --subnet-file="$d/subnet.env" $LAB_FLANNELD_ARGS
    return
  fi
  local wrap=()
  lab_is_wireguard && lab_private_wg_ns wrap
  # shellcheck disable=SC2086
  lab_spawn "flanneld-h$i" "$d/flanneld.log" ip netns exec "$(lab_ns_host "$i")" \
    "${wrap[@]}" env FLANNELD_DATA_DIR="$d/state" "$LAB_BIN/flanneld" \
    --etcd-endpoints="$LAB_ETCD" --iface=eth0 --subnet-file="$d/subnet.env" $LAB_FLANNELD_ARGS
}

lab_is_wireguard() { case "$LAB_CONFIG" in *'"wireguard"'*) return 0 ;; esac; return 1; }

# lab_private_wg_ns ARRAY: with the wireguard backend, the command prefix (into ARRAY) that gives the
# host's flanneld (and the wireguard-go it starts) a private mount namespace with its own tmpfs on
# /run/wireguard, where wireguard-go's UAPI sockets live (its path is fixed: /var/run/wireguard/<dev>.sock),
# so the hosts' flannel-wg sockets do not collide. Only the empty mount point /run/wireguard is made on
# the machine. The prefix execs in place, so the recorded PID stays flanneld's.
lab_private_wg_ns() {
  local -n out=$1
  mkdir -p /run/wireguard
  # shellcheck disable=SC2016
  out=(unshare --mount --propagation private sh -c 'mount -t tmpfs -o size=1m,mode=0700 flannel-lab-wg /run/wireguard && exec "$0" "$@"')
}

# lab_wg I ARGS...: `wg ARGS` as host I's flanneld sees it (its netns and mount namespace).
lab_wg() {
  local i=$1; shift
  nsenter -t "$(lab_flanneld_pid "$i")" -m -n wg "$@"
}

lab_flanneld_pid() { cat "$LAB_DIR/pids/flanneld-h$1.pid" 2>/dev/null; }

# lab_wait_subnet_env I: waits until flanneld has written the host's subnet.env.
# Fails at once when that flanneld has exited (a refused config, an unreachable store).
lab_wait_subnet_env() {
  local f end; f="$(lab_host_dir "$1")/subnet.env"; end=$((SECONDS + ${2:-30}))
  until grep -q '^FLANNEL_SUBNET=' "$f" 2>/dev/null; do
    lab_pid_is_ours "$(lab_flanneld_pid "$1")" || lab_die "flanneld on h$1 exited before writing subnet.env (see $(lab_host_dir "$1")/flanneld.log)" || return 1
    [ $SECONDS -lt $end ] || lab_die "flanneld on h$1 wrote no subnet.env (see $(lab_host_dir "$1")/flanneld.log)" || return 1
    sleep 0.1
  done
}

# Subnet of host I as a network (10.10.16.0/20), from its subnet.env (FLANNEL_SUBNET=10.10.16.1/20).
lab_host_subnet() {
  local s a l o1 o2 o3 o4 n
  s=$(sed -n 's/^FLANNEL_SUBNET=//p' "$(lab_host_dir "$1")/subnet.env" 2>/dev/null)
  [ -n "$s" ] || return 1
  a=${s%/*}; l=${s#*/}
  IFS=. read -r o1 o2 o3 o4 <<<"$a"
  n=$(( ((o1 << 24) | (o2 << 16) | (o3 << 8) | o4) & ((0xffffffff << (32 - l)) & 0xffffffff) ))
  echo "$((n >> 24 & 255)).$((n >> 16 & 255)).$((n >> 8 & 255)).$((n & 255))/$l"
}

lab_vtep_mac() {
  ip -n "$(lab_ns_host "$1")" -j link show "flannel.$LAB_VNI" 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s)[0].address)}catch{process.exit(1)}})'
}

# Number of routes via flannel.<VNI> in host I.
# Peer routes on host I: onlink routes on flannel.<VNI> (vxlan), gateway routes on eth0 (host-gw).
lab_peer_routes() {
  local h; h=$(lab_ns_host "$1")
  case "$LAB_CONFIG" in
    *'"host-gw"'*) ip -n "$h" route show dev eth0 2>/dev/null | grep -c ' via ' || true ;;
    *'"wireguard"'*) lab_wg "$1" show flannel-wg peers 2>/dev/null | grep -c . || true ;;
    *) ip -n "$h" route show dev "flannel.$LAB_VNI" 2>/dev/null | grep -c onlink || true ;;
  esac
}

# lab_wait_peers I N: waits until host I has N peer routes.
lab_wait_peers() {
  local i=$1 n=$2 end=$((SECONDS + ${3:-30}))
  while [ "$(lab_peer_routes "$i")" -ne "$n" ]; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}

# The lab copy of conf/10-flannel.conflist for host I: subnetFile, dataDir and the IPAM data dir
# point into the host's state dir (never /run/flannel or /var/lib/cni).
lab_write_netconf() {
  local i=$1 d; d=$(lab_host_dir "$i")
  mkdir -p "$d/net.d" "$d/flannel-data" "$d/ipam"
  node - "$LAB_CONFLIST" "$d" >"$d/net.d/10-flannel.conflist" <<'EOF'
const fs = require('node:fs');
const [src, dir] = process.argv.slice(2);
const conf = JSON.parse(fs.readFileSync(src, 'utf8'));
for (const p of conf.plugins ?? [conf]) {
  if (p.type !== 'flannel') continue;
  p.subnetFile = `${dir}/subnet.env`;
  p.dataDir = `${dir}/flannel-data`;
  p.ipam = { ...(p.ipam ?? {}), dataDir: `${dir}/ipam` };
  if (p.ipam.type === undefined) p.ipam.type = 'host-local';
}
process.stdout.write(JSON.stringify(conf, null, 2) + '\n');
EOF
}

lab_netname() {
  if [ -n "$LAB_NETNAME" ]; then echo "$LAB_NETNAME"; return; fi
  node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).name)' "$LAB_CONFLIST"
}

# lab_cnitool I add|del POD-NETNS: our cnitool inside host I with the host's lab conflist.
lab_cnitool() {
  local i=$1 verb=$2 pod=$3 d; d=$(lab_host_dir "$i")
  ip netns exec "$(lab_ns_host "$i")" env NETCONFPATH="$d/net.d" CNI_PATH="$LAB_CNI_PATH" \
    CNI_CACHE_DIR="$d/cni-cache" "$LAB_BIN/cnitool" "$verb" "$(lab_netname)" "/var/run/netns/$pod"
}

# lab_pod_up I J: pod J on host I through our plugins (LAB_MANUAL_PODS=1: by hand, bridge + veth + routes,
# only to exercise the fabric without the plugins).
lab_pod_up() {
  local i=$1 j=$2 pod; pod=$(lab_ns_pod "$i" "$j")
  lab_netns_add "$pod"
  if [ "${LAB_MANUAL_PODS:-}" = 1 ]; then lab_pod_up_by_hand "$i" "$j" "$pod"; return; fi
  # the flannel plugin logs its delegate config on stderr, as the Go one: keep it beside the result
  lab_cnitool "$i" add "$pod" >"$(lab_host_dir "$i")/p$j.result.json" 2>"$(lab_host_dir "$i")/p$j.stderr" ||
    lab_die "cnitool add for $pod failed (see $(lab_host_dir "$i")/p$j.result.json and p$j.stderr)"
}

lab_pod_up_by_hand() {
  local i=$1 j=$2 pod=$3 h s gw len mtu
  h=$(lab_ns_host "$i")
  s=$(sed -n 's/^FLANNEL_SUBNET=//p' "$(lab_host_dir "$i")/subnet.env"); gw=${s%/*}; len=${s#*/}
  mtu=$(sed -n 's/^FLANNEL_MTU=//p' "$(lab_host_dir "$i")/subnet.env")
  if ! ip -n "$h" link show cni0 >/dev/null 2>&1; then
    ip -n "$h" link add cni0 mtu "$mtu" type bridge
    ip -n "$h" addr add "$gw/$len" dev cni0
    ip -n "$h" link set cni0 up
  fi
  ip link add "veth$j" netns "$h" mtu "$mtu" type veth peer name eth0 netns "$pod" mtu "$mtu"
  ip -n "$h" link set "veth$j" master cni0 up
  ip -n "$pod" addr add "${gw%.*}.$((${gw##*.} + j))/$len" dev eth0
  ip -n "$pod" link set eth0 up
  ip -n "$pod" route add default via "$gw"
}

lab_pod_ip() {
  ip -n "$(lab_ns_pod "$1" "$2")" -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1
}

lab_pod_ip6() {
  ip -n "$(lab_ns_pod "$1" "$2")" -6 -o addr show dev eth0 scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1
}

# All pods as "I J IP" lines (dual stack: then "I J IP6 v6" lines).
lab_pods() {
  local i j
  for i in $(seq 1 "$LAB_HOSTS"); do
    for j in $(seq 1 "$LAB_PODS"); do echo "$i $j $(lab_pod_ip "$i" "$j")"; done
  done
  lab_dual_stack || return 0
  for i in $(seq 1 "$LAB_HOSTS"); do
    for j in $(seq 1 "$LAB_PODS"); do echo "$i $j $(lab_pod_ip6 "$i" "$j") v6"; done
  done
}

# lab_ping FROM-HOST FROM-POD IP: one ping with a short deadline (-w), true if answered.
lab_ping() {
  ip netns exec "$(lab_ns_pod "$1" "$2")" ping -c 1 -W 1 -w 2 -q "$3" >/dev/null 2>&1
}

# Prints the cross-host ping matrix; returns 1 if any pair fails. Each row's pings run in parallel.
lab_ping_matrix() {
  local pods; mapfile -t pods < <(lab_pods)
  local header="from \\ to" p failed=0
  printf '%-16s' "$header"
  for p in "${pods[@]}"; do set -- $p; printf ' %-12s' "h$1p$2${4:-}"; done; echo
  local src dst
  for src in "${pods[@]}"; do
    set -- $src; local si=$1 sj=$2 sf=${4:-}
    local tmp; tmp=$(mktemp -d)
    local k=0 pings=()
    for dst in "${pods[@]}"; do
      set -- $dst
      # one family per row: v4 pods ping v4 addresses, v6 rows v6 ones
      if [ "${4:-}" != "$sf" ]; then echo - >"$tmp/$k"; k=$((k + 1)); continue; fi
      ( if lab_ping "$si" "$sj" "$3"; then echo ok; else echo FAIL; fi >"$tmp/$k" ) &
      pings+=($!)
      k=$((k + 1))
    done
    # only the pings: a bare `wait` would also wait for the etcd and flanneld this shell started
    wait "${pings[@]}"
    printf '%-16s' "h${si}p${sj}${sf}"
    k=0
    for dst in "${pods[@]}"; do
      local r; r=$(cat "$tmp/$k")
      [ "$r" = ok ] || [ "$r" = - ] || failed=1
      printf ' %-12s' "$r"
      k=$((k + 1))
    done
    echo
    rm -rf "$tmp"
  done
  return $failed
}

lab_table() {
  # the backend's per-host identity: the VtepMAC (vxlan) or the WireGuard public key
  local id=VtepMAC w=19
  if lab_is_wireguard; then id=PublicKey; w=44; fi
  printf "%-6s %-15s %-15s %-${w}s %s\n" host underlay subnet "$id" pods
  local i j pods v
  for i in $(seq 1 "$LAB_HOSTS"); do
    pods=""
    for j in $(seq 1 "$LAB_PODS"); do pods+="h${i}p$j=$(lab_pod_ip "$i" "$j") "; done
    if lab_is_wireguard; then v=$(lab_wg "$i" show flannel-wg public-key 2>/dev/null || echo -); else v=$(lab_vtep_mac "$i" || echo -); fi
    printf "%-6s %-15s %-15s %-${w}s %s\n" "h$i" "$(lab_host_ip "$i")" "$(lab_host_subnet "$i" || echo -)" "$v" "$pods"
  done
}

lab_up() {
  [ "$(id -u)" -eq 0 ] || lab_die "the lab needs root (network namespaces)" || return 1
  local t0=$SECONDS
  if [ -e "$LAB_DIR/netns" ] || [ -d "$LAB_DIR/pids" ]; then
    lab_log "a previous lab is still recorded in $LAB_DIR: tearing it down first"
    lab_down
  fi
  mkdir -p "$LAB_DIR/pids"
  : >"$LAB_DIR/netns"
  [ -x "$LAB_BIN/flanneld" ] || lab_die "$LAB_BIN/flanneld is missing: run npm run build" || return 1
  [ "$LAB_PODS" -eq 0 ] || [ "${LAB_MANUAL_PODS:-}" = 1 ] || [ -x "$LAB_BIN/cnitool" ] || lab_die "$LAB_BIN/cnitool is missing: run npm run build" || return 1
  if [ "$LAB_MODE" = kube ]; then
    lab_log "underlay $(lab_ns_ul) + the Kubernetes API-server double at $LAB_KUBE_URL"
    lab_underlay_up && lab_kube_up || return 1
  else
    lab_log "underlay $(lab_ns_ul) + etcd at $LAB_ETCD"
    lab_underlay_up && lab_etcd_up || return 1
  fi
  local i j
  for i in $(seq 1 "$LAB_HOSTS"); do lab_host_up "$i" || return 1; done
  lab_log "starting flanneld on $LAB_HOSTS hosts"
  for i in $(seq 1 "$LAB_HOSTS"); do lab_flanneld_start "$i" || return 1; done
  for i in $(seq 1 "$LAB_HOSTS"); do lab_wait_subnet_env "$i" || return 1; done
  for i in $(seq 1 "$LAB_HOSTS"); do
    lab_wait_peers "$i" $((LAB_HOSTS - 1)) || lab_die "h$i did not program its $((LAB_HOSTS - 1)) peers" || return 1
  done
  [ "$LAB_PODS" -gt 0 ] || { lab_log "up in $((SECONDS - t0)) s (no pods; state in $LAB_DIR)"; return 0; }
  lab_log "adding $LAB_PODS pods per host through $(basename "$LAB_CONFLIST")"
  for i in $(seq 1 "$LAB_HOSTS"); do
    [ "${LAB_MANUAL_PODS:-}" = 1 ] || lab_write_netconf "$i" || return 1
    for j in $(seq 1 "$LAB_PODS"); do lab_pod_up "$i" "$j" || return 1; done
  done
  lab_log "up in $((SECONDS - t0)) s (state in $LAB_DIR)"
}

lab_down() {
  local f name
  if [ -d "$LAB_DIR/pids" ]; then
    for f in "$LAB_DIR"/pids/*.pid; do
      [ -e "$f" ] || continue
      name=$(basename "$f" .pid)
      [ "$name" = etcd ] && continue
      lab_kill "$name" TERM
    done
    lab_kill etcd TERM
  fi
  if [ -f "$LAB_DIR/netns" ]; then
    # pods first, then hosts, then the underlay (reverse creation order)
    tac "$LAB_DIR/netns" | while read -r name; do
      [ -n "$name" ] || continue
      ip netns del "$name" 2>/dev/null || true
    done
  fi
  rm -rf "$LAB_DIR"
}
