// What `flannelctl doctor` reads of this node before judging it: one snapshot, gathered by gather.ts
// from the real node and built by hand in the unit tests. The checks (checks.ts) only read it.
import type { Addr, Fdb, Link, Neigh, Route } from '../../shared/kernel/kernel.js';
import type { Config } from '../../daemon/subnet/config.js';
import type { LeaseRow } from '../datastore.js';
import type { SubnetEnv } from '../node.js';

/** The result of one active probe of a peer's VXLAN endpoint (probe.ts). */
export interface ProbeResult {
  /** the peer's subnet (`10.10.16.0/20`) */
  subnet: string;
  publicIP: string;
  /** the peer's VTEP address pinged through the overlay */
  target: string;
  ok: boolean;
  /** why not, when !ok: what the UDP port check found */
  detail?: string;
}

export interface CniFacts {
  confDir: string;
  /** the network config files of confDir (.conf, .conflist, .json), in the runtime's order */
  files: Array<{ name: string; text?: string; error?: string }>;
  binDirs: string[];
  /** plugin names found executable in one of binDirs */
  executables: Set<string>;
}

export interface Facts {
  now: number;
  subnetEnv: SubnetEnv;
  config?: Config;
  /** why the datastore could not be read (then `leases` is empty) */
  datastoreError?: string;
  leases: LeaseRow[];
  me?: LeaseRow;
  meHow: string;
  links: Link[];
  addrs: Addr[];
  /** main-table routes, both families */
  routes: Route[];
  /** the vxlan device's own entries (vxlan backend, device present) */
  vxlan?: { dev: string; port: number; routes: Route[]; neighs: Neigh[]; fdb: Fdb[] };
  sysctl: { ipForward?: string; ip6Forward?: string; brNfCallIptables?: string };
  /** filter/FORWARD as read (iptables mode), or what went wrong reading it */
  forward?: { policy?: string; ourRules: boolean; error?: string };
  /** nat/POSTROUTING jump and FLANNEL-POSTRTG (iptables) or the nft table, when FLANNEL_IPMASQ=true */
  masq?: { present: boolean; error?: string };
  probes: ProbeResult[];
  offload: { kernelRelease: string; ethtool: boolean; txChecksumIpGeneric?: boolean };
  cni: CniFacts;
}

/** One problem: which check found it, what is wrong, and the first thing to try. */
export interface Problem {
  check: string;
  problem: string;
  fix: string;
}

export function formatProblem(p: Problem): string {
  return `${p.check}: ${p.problem}; fix: ${p.fix}`;
}
