// flanneld's command line (main.go init()): Go `flag` syntax (-x and --x, -x=v or -x v, booleans
// take no separate value) and FLANNELD_* environment variables, which only fill flags not given on
// the command line (an empty value is ignored; a repeatable flag gets exactly one value). As in Go,
// -h/--help and bad flags print usage and exit 0, and --version (stderr) is not read from the env.
//
// Our extension: --data-dir / FLANNELD_DATA_DIR, where backends keep state across restarts (the
// vxlan VtepMAC, network.json), default /var/lib/flannel. --cni-bridge / FLANNELD_CNI_BRIDGE: the CNI
// bridge whose old gateway goes when this node is renumbered (default cni0, '' = none).
// --net-config-poll / FLANNELD_NET_CONFIG_POLL: seconds between re-reads of the network config, to
// warn about a change while running (default 15, 0 = off).
// --datastore-down-grace / FLANNELD_DATASTORE_DOWN_GRACE: seconds the datastore may be unreachable (or
// the own lease overdue for renewal) before /readyz fails (default 30). --healthz-stall /
// FLANNELD_HEALTHZ_STALL: seconds a loop may spend on one step without progress before /healthz
// fails (default 120; daemon/metrics/heartbeat.ts). --reconcile-interval / FLANNELD_RECONCILE_INTERVAL:
// the periodic full reconcile of the data path (a duration: 500ms, 2s, 1m; default 60s, 0 = off;
// daemon/backend/reconcile.ts); kernel events trigger one sooner on the netlink adapter.
import { type FlagDef as GoFlagDef, type FlagKind, fillFlagsFromEnv, flagDefaults, flagUsageLines, scanFlags } from '../shared/go/flag.js';
import { DEFAULT_ETCD_PREFIX } from './subnet/etcd/registry.js';
import { DEFAULT_SUBNET_FILE } from './subnet/subnet-file.js';

export interface Options {
  etcdEndpoints: string;
  etcdPrefix: string;
  etcdKeyfile: string;
  etcdCertfile: string;
  etcdCafile: string;
  etcdUsername: string;
  etcdPassword: string;
  iface: string[];
  ifaceRegex: string[];
  ifaceCanReach: string;
  subnetFile: string;
  publicIP: string;
  publicIPv6: string;
  subnetLeaseRenewMargin: number;
  ipMasq: boolean;
  ipMasqFullyRandomDisable: boolean;
  kubeSubnetMgr: boolean;
  kubeApiUrl: string;
  kubeAnnotationPrefix: string;
  kubeconfigFile: string;
  version: boolean;
  healthzIP: string;
  healthzPort: number;
  iptablesResync: number;
  iptablesForwardRules: boolean;
  ipBlackholeRoute: boolean;
  netConfigPath: string;
  setNodeNetworkUnavailable: boolean;
  dataDir: string;
  cniBridge: string;
  netConfigPoll: number;
  datastoreDownGrace: number;
  healthzStall: number;
  reconcileInterval: string;
  v: number;
}

type FlagDef = GoFlagDef<keyof Options>;

const F = (name: string, key: keyof Options, kind: FlagKind, dflt: unknown, usage: string): FlagDef => ({ name, key, kind, dflt, usage });

export const FLAGS: FlagDef[] = [
  F('etcd-endpoints', 'etcdEndpoints', 'string', 'http://127.0.0.1:4001,http://127.0.0.1:2379', 'a comma-delimited list of etcd endpoints'),
  F('etcd-prefix', 'etcdPrefix', 'string', DEFAULT_ETCD_PREFIX, 'etcd prefix'),
  F('etcd-keyfile', 'etcdKeyfile', 'string', '', 'SSL key file used to secure etcd communication'),
  F('etcd-certfile', 'etcdCertfile', 'string', '', 'SSL certification file used to secure etcd communication'),
  F('etcd-cafile', 'etcdCafile', 'string', '', 'SSL Certificate Authority file used to secure etcd communication'),
  F('etcd-username', 'etcdUsername', 'string', '', 'username for BasicAuth to etcd'),
  F('etcd-password', 'etcdPassword', 'string', '', 'password for BasicAuth to etcd'),
  F('iface', 'iface', 'list', [], 'interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each option in order. Returns the first match found.'),
  F('iface-regex', 'ifaceRegex', 'list', [], 'regex expression to match the first interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each regex in order. Returns the first match found. Regexes are checked after specific interfaces specified by the iface option have already been checked.'),
  F('iface-can-reach', 'ifaceCanReach', 'string', '', 'detect interface to use (IP or name) for inter-host communication based on which will be used for provided IP. This is exactly the interface to use of command "ip route get <ip-address>"'),
  F('subnet-file', 'subnetFile', 'string', DEFAULT_SUBNET_FILE, 'filename where env variables (subnet, MTU, ... ) will be written to'),
  F('public-ip', 'publicIP', 'string', '', 'IP accessible by other nodes for inter-host communication'),
  F('public-ipv6', 'publicIPv6', 'string', '', 'IPv6 accessible by other nodes for inter-host communication'),
  F('subnet-lease-renew-margin', 'subnetLeaseRenewMargin', 'int', 60, 'subnet lease renewal margin, in minutes, ranging from 1 to 1439'),
  F('ip-masq', 'ipMasq', 'bool', false, 'setup IP masquerade rule for traffic destined outside of overlay network'),
  F('ip-masq-fully-random-disable', 'ipMasqFullyRandomDisable', 'bool', false, 'disable --random-fully in the MASQUERADE rule'),
  F('kube-subnet-mgr', 'kubeSubnetMgr', 'bool', false, 'contact the Kubernetes API for subnet assignment instead of etcd'),
  F('kube-api-url', 'kubeApiUrl', 'string', '', 'Kubernetes API server URL. Does not need to be specified if flannel is running in a pod.'),
  F('kube-annotation-prefix', 'kubeAnnotationPrefix', 'string', 'flannel.alpha.coreos.com', 'Kubernetes annotation prefix. Can contain single slash "/", otherwise it will be appended at the end.'),
  F('kubeconfig-file', 'kubeconfigFile', 'string', '', 'kubeconfig file location. Does not need to be specified if flannel is running in a pod.'),
  F('version', 'version', 'bool', false, 'print version and exit'),
  F('healthz-ip', 'healthzIP', 'string', '0.0.0.0', 'the IP address for healthz server to listen'),
  F('healthz-port', 'healthzPort', 'int', 0, 'the port for healthz server to listen(0 to disable)'),
  F('iptables-resync', 'iptablesResync', 'int', 5, 'resync period for iptables rules, in seconds'),
  F('iptables-forward-rules', 'iptablesForwardRules', 'bool', true, 'add default accept rules to FORWARD chain in iptables'),
  F('ip-blackhole-route', 'ipBlackholeRoute', 'bool', false, 'add a blackhole route for the own subnet'),
  F('net-config-path', 'netConfigPath', 'string', '/etc/kube-flannel/net-conf.json', 'path to the network configuration file'),
  F('set-node-network-unavailable', 'setNodeNetworkUnavailable', 'bool', true, 'set NodeNetworkUnavailable after ready'),
  F('data-dir', 'dataDir', 'string', '/var/lib/flannel', 'directory for state kept across restarts, e.g. the vxlan VtepMAC (extension of this implementation)'),
  F('cni-bridge', 'cniBridge', 'string', 'cni0', 'the CNI bridge whose previous gateway address is removed when this node gets a new subnet ("" = leave it alone; extension of this implementation)'),
  F('net-config-poll', 'netConfigPoll', 'int', 15, 'seconds between re-reads of the network config to warn about changes while running (0 to disable; extension of this implementation)'),
  F('datastore-down-grace', 'datastoreDownGrace', 'int', 30, 'seconds the datastore may be unreachable, or the own lease overdue for renewal, before /readyz fails (extension of this implementation)'),
  F('reconcile-interval', 'reconcileInterval', 'string', '', 'period of the full reconcile that repairs the data path, e.g. 500ms, 2s, 1m (default 60s, 0 to disable; extension of this implementation)'),
  F('healthz-stall', 'healthzStall', 'int', 120, 'seconds a daemon loop may work on one step without progress before /healthz fails (extension of this implementation)'),
  F('v', 'v', 'int', 0, 'number for the log level verbosity'),
];

export type ParseResult = { kind: 'run'; options: Options } | { kind: 'exit'; code: number; stderr: string };

export function usage(): string {
  const lines = ['Usage: flanneld [OPTION]...', ...flagUsageLines(FLAGS)];
  return `${lines.join('\n')}\n`;
}

export function parseOptions(argv: readonly string[], env: Record<string, string | undefined>, version = 'dev'): ParseResult {
  const o = flagDefaults(FLAGS);
  const scan = scanFlags(FLAGS, argv, o); // Go stops at the first non-flag: the rest is ignored
  if (scan.kind === 'help') return { kind: 'exit', code: 0, stderr: usage() };
  if (scan.kind === 'error') return { kind: 'exit', code: 0, stderr: `${scan.msg}\n${usage()}` };
  const { seen } = scan;

  const opts = o as unknown as Options;
  if (opts.version) return { kind: 'exit', code: 0, stderr: `${version}\n` };

  const err = fillFlagsFromEnv(FLAGS, o, seen, env, (f) => f.name !== 'version');
  if (err) return { kind: 'exit', code: 1, stderr: `${err}\n` };
  return { kind: 'run', options: opts };
}

/** Endpoints from the comma list, as Go's strings.Split. */
export function splitEndpoints(s: string): string[] {
  return s.split(',').map((e) => e.trim()).filter((e) => e !== '');
}

/** --subnet-lease-renew-margin must be 1..1439 minutes. */
export function checkRenewMargin(minutes: number): string | undefined {
  return minutes >= 1 && minutes <= 1439 ? undefined : 'Invalid subnet-lease-renew-margin option, out of acceptable range';
}
