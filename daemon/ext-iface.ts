// External interface and public IP selection (pkg/ipmatch LookupExtIface), through the Kernel's read
// verbs only. Order: each --iface (an IP or a name), then each --iface-regex (first against the
// interfaces' IPs, then their names), then --iface-can-reach (the route's device and source), else
// the default-route interface (v4 and v6 must agree in dual stack).
// Address choice: global before link-local unicast (Go drops everything else). Our extension: when
// an interface has only host-scope addresses (lo), that address is used with a warning, so a
// single-host test can run with --iface lo.
import type { Addr, Kernel, Link } from '../shared/kernel/kernel.js';
import { type IP, formatIP, parseIP, tryParseIP, ipEqual } from '../shared/net/ip.js';
import type { ExternalInterface } from './backend/backend.js';
import { type Logger, errorMessage } from '../shared/log.js';

export interface ExtIfaceOptions {
  ifaces: string[];
  ifaceRegex: string[];
  ifaceCanReach?: string;
  publicIP?: string;
  publicIPv6?: string;
  enableIPv4: boolean;
  enableIPv6: boolean;
}

function addrIP(a: Addr): IP | undefined {
  return tryParseIP(a.cidr.split('/')[0] ?? '');
}

const SCOPE_RANK: Record<string, number> = { global: 0, universe: 0, link: 1 };

/** The interface's first usable address of `family` (global, then link-local; host as a fallback). */
async function ifaceAddr(kernel: Kernel, dev: string, family: 4 | 6, log: Logger): Promise<IP | undefined> {
  const addrs = (await kernel.listAddrs({ dev, family })).filter((a) => a.family === family);
  const usable = addrs
    .filter((a) => a.scope in SCOPE_RANK)
    .sort((a, b) => SCOPE_RANK[a.scope]! - SCOPE_RANK[b.scope]!);
  const pick = usable[0] ?? addrs[0];
  if (pick && !usable[0]) log.warn(`interface ${dev} has no global or link-local IPv${family} address, using ${pick.cidr}`);
  return pick ? addrIP(pick) : undefined;
}

async function findByIP(kernel: Kernel, ip: IP): Promise<{ link: Link; ip: IP } | undefined> {
  const links = await kernel.listLinks();
  const addrs = await kernel.listAddrs({ family: ip.family });
  for (const a of addrs) {
    const aip = addrIP(a);
    if (aip && ipEqual(aip, ip)) {
      const link = links.find((l) => l.name === a.dev);
      if (link) return { link, ip };
    }
  }
  return undefined;
}

async function complete(
  kernel: Kernel,
  link: Link,
  o: ExtIfaceOptions,
  log: Logger,
  known?: IP,
): Promise<ExternalInterface> {
  if (!link.mtu) throw new Error(`failed to determine MTU for ${link.name} interface`);
  const ext: ExternalInterface = { iface: { name: link.name, index: link.index, mtu: link.mtu } };
  if (o.enableIPv4) {
    const a = known?.family === 4 ? known : await ifaceAddr(kernel, link.name, 4, log);
    if (!a) throw new Error(`failed to find IPv4 address for interface ${link.name}`);
    ext.ifaceAddr = a;
    ext.extAddr = o.publicIP ? parseIP(o.publicIP) : a;
  }
  if (o.enableIPv6) {
    const a = known?.family === 6 ? known : await ifaceAddr(kernel, link.name, 6, log);
    if (!a) throw new Error(`failed to find IPv6 address for interface ${link.name}`);
    ext.ifaceV6Addr = a;
    ext.extV6Addr = o.publicIPv6 ? parseIP(o.publicIPv6) : a;
  }
  return ext;
}

async function tryOne(kernel: Kernel, o: ExtIfaceOptions, log: Logger, what: string, f: () => Promise<ExternalInterface | undefined>) {
  try {
    return await f();
  } catch (err) {
    log.warn(`Could not find valid interface matching ${what}: ${errorMessage(err)}`);
    return undefined;
  }
}

export async function lookupExtIface(kernel: Kernel, o: ExtIfaceOptions, log: Logger): Promise<ExternalInterface> {
  if (o.publicIP !== undefined && tryParseIP(o.publicIP)?.family !== 4) throw new TypeError(`invalid public IP address ${JSON.stringify(o.publicIP)}`);
  if (o.publicIPv6 !== undefined && tryParseIP(o.publicIPv6)?.family !== 6) throw new TypeError(`invalid public IPv6 address ${JSON.stringify(o.publicIPv6)}`);
  const explicit = o.ifaces.length > 0 || o.ifaceRegex.length > 0 || !!o.ifaceCanReach;

  for (const want of o.ifaces) {
    const ext = await tryOne(kernel, o, log, want, async () => {
      const ip = tryParseIP(want);
      if (ip) {
        const hit = await findByIP(kernel, ip);
        if (!hit) throw new Error(`no interface with address ${formatIP(ip)}`);
        return complete(kernel, hit.link, o, log, ip);
      }
      const link = await kernel.getLink(want);
      if (!link) throw new Error(`Link not found`);
      return complete(kernel, link, o, log);
    });
    if (ext) return ext;
  }

  for (const re of o.ifaceRegex) {
    const ext = await tryOne(kernel, o, log, re, async () => {
      const rx = new RegExp(re);
      const links = await kernel.listLinks();
      for (const a of await kernel.listAddrs()) {
        const ip = addrIP(a);
        if (!ip || !rx.test(formatIP(ip))) continue;
        const link = links.find((l) => l.name === a.dev);
        if (link && (ip.family === 4 ? o.enableIPv4 : o.enableIPv6)) return complete(kernel, link, o, log, ip);
      }
      const link = links.find((l) => rx.test(l.name));
      return link ? complete(kernel, link, o, log) : undefined;
    });
    if (ext) return ext;
  }

  if (o.ifaceCanReach) {
    const ext = await tryOne(kernel, o, log, o.ifaceCanReach, async () => {
      const r = await kernel.routeGet(o.ifaceCanReach!);
      if (!r.dev) throw new Error(`no route to ${o.ifaceCanReach}`);
      const link = await kernel.getLink(r.dev);
      if (!link) throw new Error(`Link not found`);
      const src = r.prefsrc ? tryParseIP(r.prefsrc) : undefined;
      return complete(kernel, link, o, log, src);
    });
    if (ext) return ext;
  }

  if (explicit) throw new Error('Failed to find interface to use that matches the interfaces and/or regexes provided');

  try {
    const dev4 = o.enableIPv4 ? (await kernel.listRoutes({ family: 4 })).find((r) => r.dst === 'default')?.dev : undefined;
    const dev6 = o.enableIPv6 ? (await kernel.listRoutes({ family: 6 })).find((r) => r.dst === 'default')?.dev : undefined;
    if (o.enableIPv4 && o.enableIPv6 && dev4 && dev6 && dev4 !== dev6) {
      throw new Error(`v6 default route interface ${dev6} must be the same with v4 default route interface ${dev4}`);
    }
    const dev = dev4 ?? dev6;
    if (!dev) throw new Error('Unable to find default route');
    const link = await kernel.getLink(dev);
    if (!link) throw new Error(`Link not found: ${dev}`);
    return await complete(kernel, link, o, log);
  } catch (err) {
    throw new Error(`Failed to find any valid interface to use: ${errorMessage(err)}`, { cause: err });
  }
}
