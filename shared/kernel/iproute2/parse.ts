// iproute2's `-json` output as Link / Addr / Route / Neigh / Fdb / BridgeVlan.
import type { Family } from '../../net/ip.js';
import { KernelError } from '../errors.js';
import type { Addr, BridgeVlan, Fdb, Link, Neigh, Route } from '../kernel.js';

export type J = Record<string, unknown>;
export const isObj = (v: unknown): v is J => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseJsonArray(text: string, argv: readonly string[]): J[] {
  const t = text.trim();
  if (t === '') return [];
  try {
    const v: unknown = JSON.parse(t);
    return Array.isArray(v) ? v.filter(isObj) : [];
  } catch (cause) {
    throw new KernelError(`${argv.join(' ')}: cannot parse JSON output`, { code: 'EIO', argv, exitCode: 0, cause });
  }
}

export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

export function parseLink(j: J): Link {
  const flags = Array.isArray(j.flags) ? (j.flags as unknown[]) : [];
  const info = isObj(j.linkinfo) ? j.linkinfo : undefined;
  const data = info && isObj(info.info_data) ? info.info_data : undefined;
  const slave = info && isObj(info.info_slave_data) ? info.info_slave_data : undefined;
  const kind = str(info?.info_kind) ?? (j.link_type === 'loopback' ? 'loopback' : undefined);
  const link: Link = {
    name: str(j.ifname) ?? '',
    index: num(j.ifindex) ?? 0,
    mtu: num(j.mtu) ?? 0,
    mac: str(j.address) ?? '',
    up: flags.includes('UP'),
    promisc: flags.includes('PROMISC'),
  };
  if (kind !== undefined) link.kind = kind;
  const master = str(j.master);
  if (master !== undefined) link.master = master;
  const operstate = str(j.operstate);
  if (operstate !== undefined) link.operstate = operstate;
  const peer = num(j.link_index);
  if (peer !== undefined) link.peerIndex = peer;
  if (kind === 'vxlan' && data) {
    link.vxlan = {
      vni: num(data.id) ?? 0,
      port: num(data.port) ?? 0,
      learning: data.learning === true,
      gbp: data.gbp === true,
    };
    const local = str(data.local) ?? str(data.local6);
    if (local !== undefined) link.vxlan.local = local;
    const dev = str(data.link) ?? str(j.link);
    if (dev !== undefined) link.vxlan.dev = dev;
  }
  if (kind === 'bridge') link.bridge = { vlanFiltering: data?.vlan_filtering === 1 };
  if (slave && info?.info_slave_kind === 'bridge') {
    link.port = { hairpin: slave.hairpin === true, isolated: slave.isolated === true };
  }
  return link;
}

export function addrsOf(l: J): Addr[] {
  const dev = str(l.ifname) ?? '';
  const out: Addr[] = [];
  if (!Array.isArray(l.addr_info)) return out;
  for (const a of l.addr_info) {
    if (!isObj(a) || str(a.local) === undefined) continue;
    const addr: Addr = {
      dev,
      family: a.family === 'inet6' ? 6 : 4,
      cidr: `${str(a.local)}/${num(a.prefixlen) ?? (a.family === 'inet6' ? 128 : 32)}`,
      scope: str(a.scope) ?? 'global',
    };
    if (a.tentative === true) addr.tentative = true;
    if (a.dadfailed === true) addr.dadfailed = true;
    out.push(addr);
  }
  return out;
}

export function parseRoute(j: J, family: Family): Route {
  const r: Route = { family, dst: str(j.dst) ?? 'default' };
  const type = str(j.type);
  if (type === 'blackhole' || type === 'unreachable' || type === 'prohibit') r.type = type;
  const via = str(j.gateway) ?? (isObj(j.via) ? str(j.via.host) : undefined);
  if (via !== undefined) r.via = via;
  const dev = str(j.dev);
  if (dev !== undefined) r.dev = dev;
  const flags = Array.isArray(j.flags) ? (j.flags as unknown[]) : [];
  if (flags.includes('onlink')) r.onlink = true;
  const src = str(j.prefsrc);
  if (src !== undefined) r.src = src;
  const table = j.table;
  if (typeof table === 'number') r.table = table;
  else if (typeof table === 'string' && /^\d+$/.test(table)) r.table = Number(table);
  const scope = str(j.scope);
  if (scope === 'global' || scope === 'link' || scope === 'host') r.scope = scope;
  const metric = num(j.metric);
  if (metric !== undefined) r.metric = metric;
  const proto = str(j.protocol);
  if (proto !== undefined) r.proto = proto;
  if (Array.isArray(j.metrics)) {
    for (const m of j.metrics) {
      if (!isObj(m)) continue;
      if (num(m.mtu) !== undefined) r.mtu = num(m.mtu)!;
      if (num(m.advmss) !== undefined) r.advmss = num(m.advmss)!;
    }
  }
  return r;
}
