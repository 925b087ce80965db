// Kernel over iproute2: the ONLY file that builds `ip` / `bridge` argv.
//
// Design notes
// - Node cannot setns() in-process, so a namespace is a property of the runner: a Kernel made with
//   `{netns: path}` runs every command as `nsenter --net=<path> ip ...`. (`ip -n` takes a name under
//   /var/run/netns, not a path; CNI hands us paths like /proc/<pid>/ns/net.)
// - A veth peer is created directly in the pod namespace with `peer name X netns <path>`: iproute2
//   6.1 accepts a file path there (IFLA_NET_NS_FD), so the link is never moved (a move costs the
//   kernel 17-23 ms of synchronize_net on our VMs).
// - Reads use `-json` (`-d` for link details). Writes use replace/append where a retry must be safe.
// - One exec costs ~1.7 ms, so `batch()` turns a list of ops into ONE exec: `ip -batch -`,
//   `bridge -batch -`, or, when the ops need both tools and/or sysctls, one `sh -s` script made of
//   here-doc batches (see Kernel.batch). Batch lines cannot switch namespace, hence nsenter.
// - Sysctls in the process's own namespace are plain file writes under /proc/sys (no exec); in another
//   namespace they go through `nsenter ... sh`, because /proc/sys/net shows the opener's namespace.
// - Only node:child_process (spawn): plugins exec this on their hot start path (no execa).
// - Binaries are looked up on PATH and then in /usr/sbin, /sbin, /usr/bin, /bin: runtimes exec plugins
//   with minimal environments.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Family } from '../net/ip.js';
import { KernelError, isExists, isNotFound } from './errors.js';
import { batchFailure, kernelErrorFrom } from './iproute2/errno.js';
import type { Addr, BridgeVlan, Fdb, Kernel, KernelOp, Link, LinkAddrs, Neigh, Route, RouteSpec, VxlanSpec } from './kernel.js';

/** Runs argv with optional stdin; resolves stdout, rejects KernelError. Injectable for tests. */
export type Exec = (argv: readonly string[], input?: string) => Promise<string>;

/** argv that runs `tool args…` in this process's namespace, or (with `netns`) inside the one at that path. */
export function toolArgv(netns: string | undefined, tool: string, args: readonly string[]): string[] {
  const argv = [resolveBin(tool), ...args];
  return netns === undefined ? argv : [resolveBin('nsenter'), `--net=${netns}`, ...argv];
}

const FALLBACK_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const resolved = new Map<string, string>();

/** Absolute path of a tool (`ip`, `bridge`, `nsenter`, `sh`, `iptables`), or the bare name if not found. */
export function resolveBin(name: string): string {
  let p = resolved.get(name);
  if (p !== undefined) return p;
  p = name;
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), ...FALLBACK_DIRS];
  for (const d of dirs) {
    if (existsSync(`${d}/${name}`)) {
      p = `${d}/${name}`;
      break;
    }
  }
  resolved.set(name, p);
  return p;
}

export const spawnExec: Exec = (argv, input) =>
  new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let spawnError: Error | undefined;
    child.on('error', (e) => (spawnError = e));
    child.on('close', (code) => {
      const stderr = Buffer.concat(err).toString();
      if (spawnError !== undefined || code !== 0) {
        reject(kernelErrorFrom(argv, code, stderr || (spawnError?.message ?? ''), { input, cause: spawnError, stdout: Buffer.concat(out).toString() }));
      } else {
        resolve(Buffer.concat(out).toString());
      }
    });
    child.stdin.on('error', () => {}); // EPIPE when the tool died early: 'close' reports it
    child.stdin.end(input ?? '');
  });

/** `/proc/sys` path of a key: slash form as Go's sysctl package, or dotted form without any `/`. */
export function sysctlPath(key: string): string {
  const rel = key.includes('/') ? key.replace(/^\/+/, '') : key.replace(/\./g, '/');
  if (rel.split('/').some((p) => p === '..' || p === '')) throw new TypeError(`invalid sysctl key ${JSON.stringify(key)}`);
  return `/proc/sys/${rel}`;
}

// ---------------------------------------------------------------------------------------------------
// argv builders (pure)

function familyOf(s: string | undefined): Family | undefined {
  if (s === undefined) return undefined;
  return s.includes(':') ? 6 : s.includes('.') ? 4 : undefined;
}

/** `default` is ambiguous in a batch line (no -6 there): spell the v6 default as ::/0. */
function routeDst(r: RouteSpec): string {
  if (r.dst === 'default' && familyOf(r.via) === 6) return '::/0';
  return r.dst;
}

export function routeArgs(r: RouteSpec): string[] {
  const a = r.type !== undefined ? [r.type, routeDst(r)] : [routeDst(r)];
  if (r.via !== undefined) a.push('via', r.via);
  if (r.dev !== undefined) a.push('dev', r.dev);
  if (r.onlink) a.push('onlink');
  if (r.src !== undefined) a.push('src', r.src);
  if (r.table !== undefined) a.push('table', String(r.table));
  if (r.scope !== undefined) a.push('scope', r.scope);
  if (r.proto !== undefined) a.push('proto', r.proto);
  if (r.metric !== undefined) a.push('metric', String(r.metric));
  if (r.mtu !== undefined) a.push('mtu', String(r.mtu));
  if (r.advmss !== undefined) a.push('advmss', String(r.advmss));
  return a;
}

/** IPv4 below /31 gets the computed broadcast, as vishvananda/netlink's AddrAdd does (`brd +`). */
function brd(cidr: string): string[] {
  const m = /^\d+\.\d+\.\d+\.\d+\/(\d+)$/.exec(cidr);
  return m && Number(m[1]) < 31 ? ['brd', '+'] : [];
}

const onOff = (b: boolean) => (b ? 'on' : 'off');

function vxlanArgs(name: string, spec: VxlanSpec): string[] {
  const args = ['link', 'add', name];
  if (spec.mtu) args.push('mtu', String(spec.mtu));
  if (spec.mac !== undefined) args.push('address', spec.mac);
  args.push('type', 'vxlan', 'id', String(spec.vni));
  if (spec.local) args.push('local', spec.local);
  if (spec.dev !== undefined) args.push('dev', spec.dev);
  args.push('dstport', String(spec.port), spec.learning ? 'learning' : 'nolearning');
  if (spec.gbp) args.push('gbp');
  return args;
}

export type Tool = 'ip' | 'bridge' | 'sysctl';

/** One op as a batch line for its tool (for `sysctl`: `<key> <value>`). */
export function opLine(op: KernelOp): { tool: Tool; args: string[] } {
  switch (op.op) {
    case 'replaceRoute':
      return { tool: 'ip', args: ['route', 'replace', ...routeArgs(op.route)] };
    case 'addRoute':
      return { tool: 'ip', args: ['route', 'add', ...routeArgs(op.route)] };
    case 'prependRoute':
      return { tool: 'ip', args: ['route', 'prepend', ...routeArgs(op.route)] };
    case 'deleteRoute':
      return { tool: 'ip', args: ['route', 'del', ...routeArgs(op.route)] };
    case 'addVxlan':
      return { tool: 'ip', args: vxlanArgs(op.name, op) };
    case 'replaceNeigh':
      return { tool: 'ip', args: ['neigh', 'replace', op.ip, 'lladdr', op.mac, 'dev', op.dev, 'nud', 'permanent'] };
    case 'deleteNeigh':
      return { tool: 'ip', args: ['neigh', 'del', op.ip, 'dev', op.dev] };
    case 'replaceFdb':
      return { tool: 'bridge', args: ['fdb', 'replace', op.mac, 'dev', op.dev, 'dst', op.dst, 'self', 'permanent'] };
    case 'appendFdb':
      return { tool: 'bridge', args: ['fdb', 'append', op.mac, 'dev', op.dev, 'dst', op.dst, 'self', 'permanent'] };
    case 'deleteFdb':
      return {
        tool: 'bridge',
        args: ['fdb', 'del', op.mac, 'dev', op.dev, ...(op.dst !== undefined ? ['dst', op.dst] : []), 'self'],
      };
    case 'replaceAddr':
      return { tool: 'ip', args: ['addr', 'replace', op.cidr, ...brd(op.cidr), 'dev', op.dev] };
    case 'addAddr':
      return { tool: 'ip', args: ['addr', 'add', op.cidr, ...brd(op.cidr), 'dev', op.dev] };
    case 'deleteAddr':
      return { tool: 'ip', args: ['addr', 'del', op.cidr, 'dev', op.dev] };
    case 'setLinkUp':
      return { tool: 'ip', args: ['link', 'set', 'dev', op.dev, 'up'] };
    case 'addBridge':
      return {
        tool: 'ip',
        args: [
          'link', 'add', op.name,
          ...(op.mtu ? ['mtu', String(op.mtu)] : []),
          'type', 'bridge',
          ...(op.vlanFiltering ? ['vlan_filtering', '1'] : []),
        ],
      };
    case 'addVeth':
      return {
        tool: 'ip',
        args: [
          'link', 'add', op.name,
          ...(op.mtu ? ['mtu', String(op.mtu)] : []),
          ...(op.mac !== undefined ? ['address', op.mac] : []),
          'type', 'veth', 'peer', 'name', op.peer,
          ...(op.mtu ? ['mtu', String(op.mtu)] : []),
          ...(op.peerMac !== undefined ? ['address', op.peerMac] : []),
          ...(op.peerNetns !== undefined ? ['netns', op.peerNetns] : []),
        ],
      };
    case 'setLink': {
      const a = ['link', 'set', 'dev', op.dev];
      if (op.mtu !== undefined) a.push('mtu', String(op.mtu));
      if (op.mac !== undefined) a.push('address', op.mac);
      if (op.promisc !== undefined) a.push('promisc', onOff(op.promisc));
      if (op.master !== undefined) a.push('master', op.master);
      if (op.up !== undefined) a.push(op.up ? 'up' : 'down');
      return { tool: 'ip', args: a };
    }
    case 'setBridgePort': {
      const a = ['link', 'set', 'dev', op.dev, 'type', 'bridge_slave'];
      if (op.hairpin !== undefined) a.push('hairpin', onOff(op.hairpin));
      if (op.isolated !== undefined) a.push('isolated', onOff(op.isolated));
      return { tool: 'ip', args: a };
    }
    case 'deleteLink':
      return { tool: 'ip', args: ['link', 'del', 'dev', op.dev] };
    case 'sysctl':
      return { tool: 'sysctl', args: [op.key, op.value] };
    case 'addVlan':
    case 'deleteVlan': {
      const vid = op.vidEnd !== undefined && op.vidEnd !== op.vid ? `${op.vid}-${op.vidEnd}` : String(op.vid);
      const a = ['vlan', op.op === 'addVlan' ? 'add' : 'del', 'dev', op.dev, 'vid', vid];
      if (op.op === 'addVlan' && op.pvid) a.push('pvid');
      if (op.op === 'addVlan' && op.untagged) a.push('untagged');
      if (op.self) a.push('self');
      return { tool: 'bridge', args: a };
    }
  }
}

function checkLineArg(s: string): void {
  if (/[\s"'\\#]/.test(s) || s === '') throw new TypeError(`invalid argument for a kernel batch: ${JSON.stringify(s)}`);
}

const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Groups ops into maximal runs of one tool, keeping order. */
export interface BatchRun {
  tool: Tool;
  lines: string[][];
  ops: KernelOp[];
}

export function planBatch(ops: readonly KernelOp[]): BatchRun[] {
  const runs: BatchRun[] = [];
  for (const op of ops) {
    const { tool, args } = opLine(op);
    if (tool !== 'sysctl') args.forEach(checkLineArg);
    const last = runs[runs.length - 1];
    if (last !== undefined && last.tool === tool) {
      last.lines.push(args);
      last.ops.push(op);
    } else runs.push({ tool, lines: [args], ops: [op] });
  }
  return runs;
}

/** The error of a failed batch, naming the op that failed when the tool said which line. */
function attachOp(err: unknown, runs: readonly BatchRun[], single: boolean, offset = 0): unknown {
  if (!(err instanceof KernelError)) return err;
  const f = batchFailure(err.stderr);
  const run = single ? runs[0] : f.run !== undefined ? runs[f.run] : undefined;
  if (run === undefined) return err;
  const i = f.line !== undefined ? f.line - 1 : run.ops.length === 1 ? 0 : -1;
  const op = run.ops[i];
  if (op === undefined) return err;
  const index = offset + runs.slice(0, runs.indexOf(run)).reduce((n, r) => n + r.ops.length, 0) + i;
  return err.withOp(op, run.tool === 'sysctl' ? `sysctl ${run.lines[i]!.join(' ')}` : run.lines[i]!.join(' '), index);
}

// ---------------------------------------------------------------------------------------------------
// JSON readers

type J = Record<string, unknown>;
const isObj = (v: unknown): v is J => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJsonArray(text: string, argv: readonly string[]): J[] {
  const t = text.trim();
  if (t === '') return [];
  try {
    const v: unknown = JSON.parse(t);
    return Array.isArray(v) ? v.filter(isObj) : [];
  } catch (cause) {
    throw new KernelError(`${argv.join(' ')}: cannot parse JSON output`, { argv, exitCode: 0, stderr: '', cause });
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

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

function addrsOf(l: J): Addr[] {
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

function parseRoute(j: J, family: Family): Route {
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

// ---------------------------------------------------------------------------------------------------

/** The real kernel, in the process's own namespace or (with `netns`) in the namespace at that path. */
export function createKernel(o?: { netns?: string; exec?: Exec }): Kernel {
  return new IprouteKernel(o?.netns, o?.exec ?? spawnExec);
}

class IprouteKernel implements Kernel {
  constructor(
    private readonly netns: string | undefined,
    private readonly exec: Exec,
  ) {}

  inNetns(path: string): Kernel {
    return new IprouteKernel(path, this.exec);
  }

  /** argv that runs `tool` in our namespace */
  private cmd(tool: string, args: readonly string[]): string[] {
    return toolArgv(this.netns, tool, args);
  }

  private ip(args: readonly string[], input?: string): Promise<string> {
    return this.exec(this.cmd('ip', args), input);
  }

  private async ipJson(args: readonly string[]): Promise<J[]> {
    const argv = this.cmd('ip', ['-json', ...args]);
    return parseJsonArray(await this.exec(argv), argv);
  }

  // ---- links

  async getLink(name: string): Promise<Link | undefined> {
    try {
      const [j] = await this.ipJson(['-details', 'link', 'show', 'dev', name]);
      return j === undefined ? undefined : parseLink(j);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async listLinks(): Promise<Link[]> {
    return (await this.ipJson(['-details', 'link', 'show'])).map(parseLink);
  }

  async setLinkUp(name: string): Promise<void> {
    await this.ip(['link', 'set', 'dev', name, 'up']);
  }

  async setLinkDown(name: string, o?: { missingOk?: boolean }): Promise<void> {
    await this.tolerate(this.ip(['link', 'set', 'dev', name, 'down']), o?.missingOk);
  }

  async setLinkMtu(name: string, mtu: number): Promise<void> {
    await this.ip(['link', 'set', 'dev', name, 'mtu', String(mtu)]);
  }

  async deleteLink(name: string, o?: { missingOk?: boolean }): Promise<void> {
    await this.tolerate(this.ip(['link', 'del', 'dev', name]), o?.missingOk);
  }

  async setMaster(dev: string, bridge: string): Promise<void> {
    await this.ip(['link', 'set', 'dev', dev, 'master', bridge]);
  }

  async setPromisc(dev: string, on: boolean): Promise<void> {
    await this.ip(['link', 'set', 'dev', dev, 'promisc', onOff(on)]);
  }

  async setHairpin(dev: string, on: boolean): Promise<void> {
    await this.ip(['link', 'set', 'dev', dev, 'type', 'bridge_slave', 'hairpin', onOff(on)]);
  }

  async setLinkAddress(dev: string, mac: string): Promise<void> {
    await this.ip(['link', 'set', 'dev', dev, 'address', mac]);
  }

  async ensureBridge(name: string, o?: { mtu?: number; vlanFiltering?: boolean; promisc?: boolean }): Promise<Link> {
    let link = await this.getLink(name);
    if (link === undefined) {
      try {
        await this.batch([{ op: 'addBridge', name, ...(o?.mtu ? { mtu: o.mtu } : {}), vlanFiltering: o?.vlanFiltering === true }]);
      } catch (err) {
        if (!isExists(err)) throw err; // lost a race with a concurrent ADD: fine
      }
    }
    if (o?.promisc) await this.setPromisc(name, true);
    link = await this.getLink(name);
    if (link === undefined) throw new KernelError(`link ${JSON.stringify(name)} vanished after creation`, { argv: [], exitCode: null, stderr: `Device "${name}" does not exist.` });
    if (link.kind !== 'bridge') return link;
    if (!link.up) {
      await this.setLinkUp(name);
      link = { ...link, up: true };
    }
    return link;
  }

  async createVethPair(host: string, peer: string, o: { peerNetns: string; mtu?: number; mac?: string; peerMac?: string }): Promise<void> {
    await this.batch([{ op: 'addVeth', name: host, peer, ...o }]);
  }

  async inspect(names: readonly string[], ops: readonly KernelOp[] = []): Promise<Map<string, LinkAddrs>> {
    const runs = planBatch(ops);
    const ipRun = runs.length > 0 && runs[runs.length - 1]!.tool === 'ip' ? runs.pop()! : undefined;
    if (runs.length > 0) await this.batch(ops.slice(0, ops.length - (ipRun?.lines.length ?? 0)));
    names.forEach(checkLineArg);
    const lines = [...(ipRun?.lines ?? []), ...names.map((n) => ['addr', 'show', 'dev', n])];
    const out = new Map<string, LinkAddrs>();
    if (lines.length === 0) return out;
    const input = lines.map((l) => l.join(' ')).join('\n') + '\n';
    const flags = ipRun === undefined ? ['-json', '-details', '-force', '-batch', '-'] : ['-json', '-details', '-batch', '-'];
    const argv = this.cmd('ip', flags);
    let stdout: string;
    try {
      stdout = await this.exec(argv, input);
    } catch (err) {
      if (ipRun !== undefined) throw attachOp(err, [ipRun], true, ops.length - ipRun.ops.length);
      // -force: a missing link makes the exit status 1 but the other reads still print
      if (!(err instanceof KernelError) || !isNotFound(err)) throw err;
      stdout = err.stdout ?? '';
    }
    for (const line of stdout.split('\n')) {
      for (const j of parseJsonArray(line, argv)) {
        const link = parseLink(j);
        out.set(link.name, { ...link, addrs: addrsOf(j) });
      }
    }
    return out;
  }

  async listBridgeVlans(dev: string): Promise<BridgeVlan[]> {
    const argv = this.cmd('bridge', ['-json', 'vlan', 'show', 'dev', dev]);
    const rows = parseJsonArray(await this.exec(argv), argv);
    const out: BridgeVlan[] = [];
    for (const row of rows) {
      if (!Array.isArray(row.vlans)) continue;
      for (const v of row.vlans) {
        if (!isObj(v)) continue;
        const flags = Array.isArray(v.flags) ? (v.flags as unknown[]) : [];
        const start = num(v.vlan) ?? 0;
        const end = num(v.vlanEnd) ?? start;
        for (let vid = start; vid <= end; vid++) {
          out.push({ vid, pvid: flags.includes('PVID'), untagged: flags.includes('Egress Untagged') });
        }
      }
    }
    return out;
  }

  // ---- addresses

  async listAddrs(o?: { dev?: string; family?: Family }): Promise<Addr[]> {
    const args = [...(o?.family ? [`-${o.family}`] : []), 'addr', 'show', ...(o?.dev !== undefined ? ['dev', o.dev] : [])];
    return (await this.ipJson(args)).flatMap(addrsOf);
  }

  async ensureAddr(dev: string, cidr: string): Promise<void> {
    await this.tolerateExists(this.ip(opLine({ op: 'addAddr', dev, cidr }).args));
  }

  async deleteAddr(dev: string, cidr: string, o?: { missingOk?: boolean }): Promise<void> {
    await this.tolerate(this.ip(['addr', 'del', cidr, 'dev', dev]), o?.missingOk);
  }

  // ---- routes

  async listRoutes(o?: { family?: Family; dev?: string; table?: number; type?: RouteSpec['type'] }): Promise<Route[]> {
    const families: Family[] = o?.family ? [o.family] : [4, 6];
    const lists = await Promise.all(
      families.map(async (f) => {
        const args = [`-${f}`, 'route', 'show'];
        if (o?.table !== undefined) args.push('table', String(o.table));
        if (o?.dev !== undefined) args.push('dev', o.dev);
        if (o?.type !== undefined) args.push('type', o.type);
        try {
          // `ip route show dev X` leaves dev out of each route: it is the filter's
          return (await this.ipJson(args)).map((j) => {
            const r = parseRoute(j, f);
            if (o?.dev !== undefined && r.dev === undefined) r.dev = o.dev;
            if (o?.type !== undefined) r.type = o.type; // likewise the type (iproute2 prints it only unfiltered)
            return r;
          });
        } catch (err) {
          if (o?.table !== undefined && isNotFound(err)) return []; // table never used
          throw err;
        }
      }),
    );
    return lists.flat();
  }

  async routeGet(dst: string): Promise<Route & { prefsrc?: string }> {
    const [j] = await this.ipJson(['route', 'get', dst]);
    const family: Family = familyOf(dst) ?? 4;
    if (j === undefined) throw new KernelError(`ip route get ${dst}: no route`, { argv: ['ip', 'route', 'get', dst], exitCode: 0, stderr: '' });
    const r: Route & { prefsrc?: string } = parseRoute(j, family);
    if (r.src !== undefined) r.prefsrc = r.src;
    return r;
  }

  async replaceRoute(r: RouteSpec): Promise<void> {
    await this.batch([{ op: 'replaceRoute', route: r }]);
  }

  async addRoute(r: RouteSpec): Promise<void> {
    await this.batch([{ op: 'addRoute', route: r }]);
  }

  async deleteRoute(r: RouteSpec, o?: { missingOk?: boolean }): Promise<void> {
    await this.tolerate(this.batch([{ op: 'deleteRoute', route: r }]), o?.missingOk);
  }

  // ---- vxlan, neighbours, fdb

  async ensureVxlan(name: string, spec: VxlanSpec): Promise<Link> {
    const existing = await this.getLink(name);
    if (existing !== undefined) {
      if (vxlanCompatible(existing, spec)) {
        if (spec.mtu && existing.mtu !== spec.mtu) await this.setLinkMtu(name, spec.mtu);
        return (await this.getLink(name)) ?? existing;
      }
      await this.deleteLink(name, { missingOk: true });
    }
    await this.ip(vxlanArgs(name, spec));
    const link = await this.getLink(name);
    if (link === undefined) throw new KernelError(`link ${JSON.stringify(name)} vanished after creation`, { argv: [], exitCode: null, stderr: `Device "${name}" does not exist.` });
    return link;
  }

  async listNeighs(dev: string): Promise<Neigh[]> {
    const out: Neigh[] = [];
    for (const j of await this.ipJson(['neigh', 'show', 'dev', dev])) {
      const ip = str(j.dst);
      const mac = str(j.lladdr);
      if (ip === undefined || mac === undefined) continue;
      const state = Array.isArray(j.state) ? (j.state as unknown[]) : [];
      out.push({ dev, ip, mac, permanent: state.includes('PERMANENT') });
    }
    return out;
  }

  async listFdb(dev: string): Promise<Fdb[]> {
    const argv = this.cmd('bridge', ['-json', 'fdb', 'show', 'dev', dev]);
    const out: Fdb[] = [];
    for (const j of parseJsonArray(await this.exec(argv), argv)) {
      const mac = str(j.mac);
      if (mac === undefined) continue;
      const flags = Array.isArray(j.flags) ? (j.flags as unknown[]) : [];
      const f: Fdb = { dev, mac, self: flags.includes('self'), permanent: j.state === 'permanent' };
      const dst = str(j.dst);
      if (dst !== undefined) f.dst = dst;
      out.push(f);
    }
    return out;
  }

  // ---- batch

  async batch(ops: readonly KernelOp[]): Promise<void> {
    if (ops.length === 0) return;
    const runs = planBatch(ops);
    const only = runs.length === 1 ? runs[0]! : undefined;
    if (only !== undefined && only.tool !== 'sysctl') {
      const input = only.lines.map((l) => l.join(' ')).join('\n') + '\n';
      try {
        await this.exec(this.cmd(only.tool, ['-batch', '-']), input);
      } catch (err) {
        throw attachOp(err, runs, true);
      }
      return;
    }
    if (this.netns === undefined && runs.every((r) => r.tool === 'sysctl')) {
      for (const op of ops) {
        if (op.op !== 'sysctl') continue;
        try {
          await this.writeSysctl(op.key, op.value);
        } catch (err) {
          if (!op.optional) throw err instanceof KernelError ? err.withOp(op, `sysctl ${op.key} ${op.value}`, ops.indexOf(op)) : err;
        }
      }
      return;
    }
    // Mixed: one shell script, each run a here-doc batch, markers on stderr to name the failed run.
    const script = ['set -e'];
    runs.forEach((r, i) => {
      script.push(`echo '@@kernel-run ${i}' >&2`);
      if (r.tool === 'sysctl') {
        r.ops.forEach((op, j) => {
          const [k, v] = r.lines[j]!;
          const w = `printf '%s' ${shQuote(v!)} > ${shQuote(sysctlPath(k!))}`;
          script.push(op.op === 'sysctl' && op.optional ? `{ ${w}; } 2>/dev/null || true` : w);
        });
      } else {
        script.push(`${shQuote(resolveBin(r.tool))} -batch - <<'__KERNEL_BATCH__'`);
        for (const l of r.lines) script.push(l.join(' '));
        script.push('__KERNEL_BATCH__');
      }
    });
    const argv = this.cmd('sh', ['-s']);
    try {
      await this.exec(argv, script.join('\n') + '\n');
    } catch (err) {
      throw attachOp(err, runs, false);
    }
  }

  // ---- sysctl

  async readSysctl(key: string): Promise<string> {
    const path = sysctlPath(key);
    if (this.netns === undefined) {
      try {
        return readFileSync(path, 'utf8').trim();
      } catch (cause) {
        throw sysctlError(['cat', path], cause);
      }
    }
    return (await this.exec(this.cmd('cat', [path]))).trim();
  }

  async writeSysctl(key: string, value: string): Promise<void> {
    const path = sysctlPath(key);
    if (this.netns === undefined) {
      try {
        writeFileSync(path, value);
      } catch (cause) {
        throw sysctlError(['write', path, value], cause);
      }
      return;
    }
    await this.exec(this.cmd('sh', ['-c', 'printf "%s" "$2" > "$1"', 'sh', path, value]));
  }

  // ---- helpers

  private async tolerate(p: Promise<unknown>, missingOk: boolean | undefined): Promise<void> {
    try {
      await p;
    } catch (err) {
      if (missingOk && isNotFound(err)) return;
      throw err;
    }
  }

  private async tolerateExists(p: Promise<unknown>): Promise<void> {
    try {
      await p;
    } catch (err) {
      if (isExists(err)) return;
      throw err;
    }
  }
}

function sysctlError(argv: string[], cause: unknown): KernelError {
  const msg = cause instanceof Error ? cause.message : String(cause);
  return new KernelError(`${argv.join(' ')}: ${msg}`, { argv, exitCode: null, stderr: msg, cause });
}

function vxlanCompatible(l: Link, s: VxlanSpec): boolean {
  if (l.kind !== 'vxlan' || l.vxlan === undefined) return false;
  const v = l.vxlan;
  if (v.vni !== s.vni || v.port !== s.port || v.learning !== s.learning || v.gbp !== (s.gbp === true)) return false;
  if (s.local && v.local !== s.local) return false;
  if (s.dev !== undefined && v.dev !== undefined && v.dev !== s.dev) return false;
  if (s.mac !== undefined && l.mac.toLowerCase() !== s.mac.toLowerCase()) return false;
  return true;
}
