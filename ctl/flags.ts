// flannelctl's command line: `flannelctl <command> [flags]`, flags in Go `flag` syntax as flanneld's
// (-x and --x, -x=v or -x v, booleans take no separate value). The datastore flags and their defaults
// are flanneld's (daemon/options.ts), so an operator copies them from the daemon's unit or DaemonSet;
// FLANNELD_* environment variables fill the ones not given, as for flanneld.
import { type FlagDef as GoFlagDef, type FlagKind, fillFlagsFromEnv, flagDefaults, flagUsageLines, scanFlags } from '../shared/go/flag.js';
import { DEFAULT_ETCD_PREFIX } from '../daemon/subnet/etcd/registry.js';
import { DEFAULT_SUBNET_FILE } from '../daemon/subnet/subnet-file.js';

export interface CtlOptions {
  etcdEndpoints: string;
  etcdPrefix: string;
  etcdKeyfile: string;
  etcdCertfile: string;
  etcdCafile: string;
  etcdUsername: string;
  etcdPassword: string;
  kubeSubnetMgr: boolean;
  kubeApiUrl: string;
  kubeconfigFile: string;
  kubeAnnotationPrefix: string;
  netConfigPath: string;
  nodeName: string;
  publicIP: string;
  subnetFile: string;
  dataDir: string;
  cniConfDir: string;
  cniBinDir: string;
  output: string;
  releaseLease: boolean;
  force: boolean;
  skip: string[];
  probeTimeout: number;
}

interface FlagDef extends GoFlagDef<keyof CtlOptions> {
  /** read from FLANNELD_<NAME> when not given (the daemon's own flags) */
  env?: boolean;
}

const F = (name: string, key: keyof CtlOptions, kind: FlagKind, dflt: unknown, usage: string, env = false): FlagDef => ({ name, key, kind, dflt, usage, env });

export const CTL_FLAGS: FlagDef[] = [
  F('etcd-endpoints', 'etcdEndpoints', 'string', 'http://127.0.0.1:4001,http://127.0.0.1:2379', 'a comma-delimited list of etcd endpoints', true),
  F('etcd-prefix', 'etcdPrefix', 'string', DEFAULT_ETCD_PREFIX, 'etcd prefix', true),
  F('etcd-keyfile', 'etcdKeyfile', 'string', '', 'SSL key file used to secure etcd communication', true),
  F('etcd-certfile', 'etcdCertfile', 'string', '', 'SSL certification file used to secure etcd communication', true),
  F('etcd-cafile', 'etcdCafile', 'string', '', 'SSL Certificate Authority file used to secure etcd communication', true),
  F('etcd-username', 'etcdUsername', 'string', '', 'username for BasicAuth to etcd', true),
  F('etcd-password', 'etcdPassword', 'string', '', 'password for BasicAuth to etcd', true),
  F('kube-subnet-mgr', 'kubeSubnetMgr', 'bool', false, 'read the leases from the Kubernetes Node objects instead of etcd', true),
  F('kube-api-url', 'kubeApiUrl', 'string', '', 'Kubernetes API server URL', true),
  F('kubeconfig-file', 'kubeconfigFile', 'string', '', 'kubeconfig file location (default: in-cluster config)', true),
  F('kube-annotation-prefix', 'kubeAnnotationPrefix', 'string', 'flannel.alpha.coreos.com', 'Kubernetes annotation prefix', true),
  F('net-config-path', 'netConfigPath', 'string', '/etc/kube-flannel/net-conf.json', 'the network config file (kube mode)', true),
  F('node-name', 'nodeName', 'string', '', 'this node\'s Node name (kube mode; default $NODE_NAME)'),
  F('public-ip', 'publicIP', 'string', '', 'this node\'s public IP, to find its lease when subnet.env does not say', true),
  F('subnet-file', 'subnetFile', 'string', DEFAULT_SUBNET_FILE, 'the subnet.env flanneld writes', true),
  F('data-dir', 'dataDir', 'string', '/var/lib/flannel', 'flanneld\'s state directory (--data-dir)', true),
  F('cni-conf-dir', 'cniConfDir', 'string', '/etc/cni/net.d', 'where the container runtime reads CNI network configs'),
  F('cni-bin-dir', 'cniBinDir', 'string', '/opt/cni/bin', 'where the container runtime looks for CNI plugins (a colon-separated list is allowed)'),
  { ...F('o', 'output', 'string', 'table', 'leases: output format, table or json'), alias: 'output' },
  F('release-lease', 'releaseLease', 'bool', false, 'cleanup: also delete this node\'s lease from etcd'),
  F('force', 'force', 'bool', false, 'cleanup: run even though a flanneld seems to run in this network namespace'),
  F('skip', 'skip', 'list', [], 'doctor: a check to leave out (repeatable): subnet-env, lease, drift, device, mtu, duplicates, sysctl, forward, probe, offload, cni'),
  F('probe-timeout', 'probeTimeout', 'int', 2, 'doctor: seconds to wait for each peer probe'),
];

export const COMMANDS = ['leases', 'doctor', 'cleanup'] as const;
export type Command = (typeof COMMANDS)[number];

export type CtlParse =
  | { kind: 'run'; command: Command; options: CtlOptions }
  | { kind: 'exit'; code: number; stdout?: string; stderr?: string };

export function ctlUsage(): string {
  const lines = [
    'Usage: flannelctl <command> [flags]',
    '',
    'Commands:',
    '  leases    the leases in the datastore (subnet, public IP, backend, VtepMAC, expiry, age; "*" marks this node)',
    '  doctor    checks this node end to end; one line per problem and its fix, exit 1 when there is any',
    '  cleanup   removes what flanneld made on this node (devices, routes, rules, subnet.env); refuses while flanneld runs',
    '',
    'Flags:',
  ];
  lines.push(...flagUsageLines(CTL_FLAGS));
  return `${lines.join('\n')}\n`;
}

/** Parses `<command> [flags]`; a bad command or flag exits 2 with the usage on stderr. */
export function parseCtlArgs(argv: readonly string[], env: Record<string, string | undefined>): CtlParse {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') return { kind: 'exit', code: cmd === undefined ? 2 : 0, stderr: ctlUsage() };
  if (!(COMMANDS as readonly string[]).includes(cmd)) return { kind: 'exit', code: 2, stderr: `flannelctl: unknown command ${JSON.stringify(cmd)}\n${ctlUsage()}` };
  const bad = (msg: string): CtlParse => ({ kind: 'exit', code: 2, stderr: `flannelctl ${cmd}: ${msg}\n${ctlUsage()}` });
  const o = flagDefaults(CTL_FLAGS);
  const scan = scanFlags(CTL_FLAGS, rest, o);
  if (scan.kind === 'help') return { kind: 'exit', code: 0, stderr: ctlUsage() };
  if (scan.kind === 'error') return bad(scan.msg);
  if (scan.stop < rest.length) return bad(`unexpected argument ${JSON.stringify(rest[scan.stop])}`);
  const { seen } = scan;
  const err = fillFlagsFromEnv(CTL_FLAGS, o, seen, env, (f) => f.env === true);
  if (err) return bad(err);
  const opts = o as unknown as CtlOptions;
  if (!opts.nodeName && env.NODE_NAME) opts.nodeName = env.NODE_NAME;
  if (opts.output !== 'table' && opts.output !== 'json') return bad(`-o must be table or json, not ${JSON.stringify(opts.output)}`);
  return { kind: 'run', command: cmd as Command, options: opts };
}
