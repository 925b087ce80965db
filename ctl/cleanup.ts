// `flannelctl cleanup` (upstream's RFC flannel#886): removes what flanneld made on this node, for an
// uninstall or a backend change by hand:
//   - its devices: flannel.<VNI> / flannel-v6.<VNI> (vxlan), flannel-wg / flannel-wg-v6 (wireguard),
//     flannel.ipip; their routes, neighbour and FDB entries go with them;
//   - routes it made without a device of its own: host-gw routes (a gateway route to a subnet inside
//     FLANNEL_NETWORK other than ours) and the blackhole route of our subnet;
//   - traffic rules: the FLANNEL-POSTRTG / FLANNEL-FWD chains and the jumps to them (IPv4 and IPv6),
//     the flannel-ipv4 / flannel-ipv6 nftables tables (the daemon's own clean-up code);
//   - subnet.env and the daemon's state in --data-dir (network.json, the VtepMAC files);
//   - with --release-lease, this node's lease in etcd.
// Left alone: cni0 and the pods' veths (the container runtime's, with pods on them), the CNI config and
// plugins (install-cni's). Every step runs even when one fails; a second run finds nothing to do.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Iptables } from '../shared/kernel/iptables.js';
import type { Kernel, KernelOp, Link, Route, RouteSpec } from '../shared/kernel/kernel.js';
import type { Nft } from '../shared/kernel/nft.js';
import { NOOP_LOGGER, errorMessage } from '../shared/log.js';
import { formatNet, netContains, netEqual, tryParseCIDR, tryParseIP, type IPNet } from '../shared/net/ip.js';
import { FWD_CHAIN, IPTablesManager, POSTRTG_CHAIN } from '../daemon/traffic/iptables-manager.js';
import { IPV4_TABLE, IPV6_TABLE, NFTablesManager } from '../daemon/traffic/nftables-manager.js';
import { sleep } from '../daemon/sleep.js';
import { STATE_FILE_NAME } from '../daemon/subnet/state-file.js';
import { readLeases, type Datastore } from './datastore.js';
import type { CtlOptions } from './flags.js';
import { findMe, readSubnetEnv, type SubnetEnv } from './node.js';

export interface CleanupDeps {
  kernel: Kernel;
  iptables: Record<4 | 6, Iptables>;
  nft: Nft;
}

export interface CleanupResult {
  /** what was removed, one line each */
  done: string[];
  /** what could not be, one line each (the run exits 1) */
  failed: string[];
}

/** A device flanneld creates (by name and kind, so an operator's `flannel-test` bridge is left alone). */
export function isFlannelDevice(l: Link): boolean {
  if (/^flannel(-v6)?\.\d+$/.test(l.name)) return l.kind === 'vxlan';
  if (/^flannel-wg(-v6)?$/.test(l.name)) return l.kind === 'wireguard' || l.kind === undefined;
  if (l.name === 'flannel.ipip') return l.kind === 'ipip';
  return false;
}

function dstNet(r: Route): IPNet | undefined {
  if (r.dst === 'default') return undefined;
  return tryParseCIDR(r.dst.includes('/') ? r.dst : `${r.dst}/${r.family === 6 ? 128 : 32}`)?.net;
}

/**
 * Routes flanneld made outside its devices: the blackhole route of our own subnet, and gateway
 * routes to other subnets of the flannel network (host-gw; vxlan DirectRouting).
 */
export function flannelRoutes(routes: readonly Route[], env: SubnetEnv): Route[] {
  const fams: Array<{ net?: IPNet; own?: IPNet }> = [
    { net: env.network, own: env.subnet },
    { net: env.ipv6Network, own: env.ipv6Subnet },
  ];
  return routes.filter((r) => {
    const d = dstNet(r);
    if (!d || (r.table ?? 254) !== 254) return false;
    return fams.some(({ net, own }) => {
      if (!net || d.family !== net.family) return false;
      if (r.type === 'blackhole') return own !== undefined && netEqual(d, own);
      if (r.type !== undefined || r.via === undefined || !tryParseIP(r.via)) return false;
      return d.prefix >= net.prefix && netContains(net, { family: d.family, value: d.base }) && !(own && netEqual(d, own));
    });
  });
}

/** The delete of a listed route, naming only what identifies it. */
function routeOp(r: Route): KernelOp {
  const route: RouteSpec = { dst: r.dst };
  if (r.type) route.type = r.type;
  if (r.via) route.via = r.via;
  if (r.dev) route.dev = r.dev;
  return { op: 'deleteRoute', route };
}

const describeRoute = (r: Route) => `${r.type ? `${r.type} ` : ''}${r.dst}${r.via ? ` via ${r.via}` : ''}${r.dev ? ` dev ${r.dev}` : ''}`;

async function step(res: CleanupResult, what: string, f: () => Promise<string[]>): Promise<void> {
  try {
    res.done.push(...(await f()));
  } catch (err) {
    res.failed.push(`${what}: ${errorMessage(err)}`);
  }
}

export async function cleanup(o: CtlOptions, d: CleanupDeps, ds: Datastore | undefined): Promise<CleanupResult> {
  const res: CleanupResult = { done: [], failed: [] };
  const env = await readSubnetEnv(o.subnetFile);
  const k = d.kernel;

  if (o.releaseLease) {
    await step(res, 'releasing the lease', async () => {
      if (!ds) throw new Error('no datastore');
      const signal = AbortSignal.timeout(15_000);
      const { row, how } = findMe(await readLeases(ds, signal), { subnetEnv: env, publicIP: o.publicIP, nodeName: o.nodeName });
      if (!row) return []; // nothing of ours there (already released): idempotent
      await ds.release(row.lease, signal);
      return [`released lease ${formatNet(row.lease.subnet)} (found by ${how})`];
    });
  }

  await step(res, 'deleting devices', async () => {
    const ours = (await k.listLinks()).filter(isFlannelDevice);
    const out: string[] = [];
    for (const l of ours) {
      await k.deleteLink(l.name, { missingOk: true });
      out.push(`deleted device ${l.name} (${l.kind ?? 'link'}) with its routes, neighbour and FDB entries`);
    }
    return out;
  });

  await step(res, 'deleting routes', async () => {
    const routes = [...(await k.listRoutes()), ...(await k.listRoutes({ type: 'blackhole' }))];
    const seen = new Set<string>();
    const ours = flannelRoutes(routes, env).filter((r) => {
      const key = describeRoute(r);
      return seen.has(key) ? false : (seen.add(key), true);
    });
    const out: string[] = [];
    for (const r of ours) {
      await k.batch([routeOp(r)]);
      out.push(`deleted route ${describeRoute(r)}`);
    }
    return out;
  });

  await step(res, 'deleting iptables rules', async () => {
    const found: string[] = [];
    for (const family of [4, 6] as const) {
      const ipt = d.iptables[family];
      for (const [table, chain] of [['nat', POSTRTG_CHAIN], ['filter', FWD_CHAIN]] as const) {
        try {
          if (await ipt.chainExists(table, chain)) found.push(`${family === 4 ? 'iptables' : 'ip6tables'} ${table}/${chain}`);
        } catch {
          /* no such binary: nothing of ours there */
        }
      }
    }
    if (found.length === 0) return [];
    await new IPTablesManager({ iptables: d.iptables, log: NOOP_LOGGER, sleep }).cleanUp();
    return found.map((c) => `deleted ${c} and the jump to it`);
  });

  await step(res, 'deleting nftables tables', async () => {
    const found: string[] = [];
    for (const [fam, name] of [['ip', IPV4_TABLE], ['ip6', IPV6_TABLE]] as const) {
      try {
        if (await d.nft.listTable(fam, name)) found.push(`${fam} ${name}`);
      } catch {
        /* no nft: nothing of ours there */
      }
    }
    if (found.length === 0) return [];
    await new NFTablesManager({ nft: d.nft, log: NOOP_LOGGER }).cleanUp();
    return found.map((t) => `deleted nftables table ${t}`);
  });

  await step(res, 'removing files', async () => {
    const out: string[] = [];
    if (env.error === undefined) {
      await rm(o.subnetFile, { force: true });
      out.push(`removed ${o.subnetFile}`);
    }
    let names: string[] = [];
    try {
      names = await readdir(o.dataDir);
    } catch {
      return out;
    }
    for (const n of names.filter((x) => x === STATE_FILE_NAME || /^flannel[\w.-]*\.mac(\.node)?$/.test(x)).sort()) {
      await rm(join(o.dataDir, n), { force: true });
      out.push(`removed ${join(o.dataDir, n)}`);
    }
    return out;
  });
  return res;
}
