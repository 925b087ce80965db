// This node as flannelctl sees it: its subnet.env and which lease is its own ("me").
import { readFile } from 'node:fs/promises';
import { errorMessage } from '../shared/log.js';
import { formatIP, netEqual, tryParseIP, type IPNet } from '../shared/net/ip.js';
import { parseCIDRList, parseDotEnv } from '../daemon/subnet/subnet-file.js';
import type { LeaseRow } from './datastore.js';

export interface SubnetEnv {
  path: string;
  /** the file's lines; undefined when it could not be read (`error` says why) */
  raw?: Map<string, string>;
  error?: string;
  network?: IPNet;
  subnet?: IPNet;
  ipv6Network?: IPNet;
  ipv6Subnet?: IPNet;
  mtu?: number;
  ipMasq?: boolean;
}

const one = (v: string | undefined): IPNet | undefined => {
  const l = parseCIDRList(v);
  return l.length === 1 ? l[0] : undefined;
};

export function parseSubnetEnv(path: string, text: string): SubnetEnv {
  const raw = parseDotEnv(text);
  const e: SubnetEnv = { path, raw };
  const set = <K extends 'network' | 'subnet' | 'ipv6Network' | 'ipv6Subnet'>(k: K, v: IPNet | undefined) => {
    if (v) e[k] = v;
  };
  set('network', one(raw.get('FLANNEL_NETWORK')));
  set('subnet', one(raw.get('FLANNEL_SUBNET')));
  set('ipv6Network', one(raw.get('FLANNEL_IPV6_NETWORK')));
  set('ipv6Subnet', one(raw.get('FLANNEL_IPV6_SUBNET')));
  const mtu = raw.get('FLANNEL_MTU');
  if (mtu !== undefined && /^\d+$/.test(mtu)) e.mtu = Number(mtu);
  const masq = raw.get('FLANNEL_IPMASQ');
  if (masq !== undefined) e.ipMasq = masq === 'true';
  return e;
}

export async function readSubnetEnv(path: string): Promise<SubnetEnv> {
  try {
    return parseSubnetEnv(path, await readFile(path, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { path, error: code === 'ENOENT' ? 'no such file' : errorMessage(err) };
  }
}

export interface Identity {
  subnetEnv?: SubnetEnv;
  publicIP?: string;
  nodeName?: string;
}

/**
 * This node's lease and how it was recognised: the Node name (kube mode), else subnet.env's
 * FLANNEL_SUBNET (what the daemon last wrote), else --public-ip.
 */
export function findMe(rows: readonly LeaseRow[], id: Identity): { row?: LeaseRow; how: string } {
  if (id.nodeName) {
    const row = rows.find((r) => r.node === id.nodeName);
    if (row) return { row, how: `node name ${id.nodeName}` };
  }
  const sn = id.subnetEnv?.subnet;
  if (sn) {
    const row = rows.find((r) => r.lease.subnet && netEqual(r.lease.subnet, sn));
    if (row) return { row, how: `${id.subnetEnv!.path}` };
  }
  const ip = id.publicIP ? tryParseIP(id.publicIP) : undefined;
  if (ip) {
    const row = rows.find((r) => formatIP(r.lease.attrs.publicIP) === formatIP(ip));
    if (row) return { row, how: `--public-ip ${formatIP(ip)}` };
  }
  return { how: 'none of --node-name, subnet.env, --public-ip matches a lease' };
}
