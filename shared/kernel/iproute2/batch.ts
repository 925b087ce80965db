// Kernel ops as iproute2 batch lines, and a batch as ONE exec.
//
// `batch()` turns a list of ops into one exec: `ip -batch -`, `bridge -batch -`, or, when the ops need
// both tools and/or sysctls, one `sh -s` script made of here-doc batches, with a `@@kernel-run i` marker
// on stderr before each run so that a failure names its run (and iproute2's "Command failed -:N" the
// line in it). Batch lines cannot switch namespace, hence nsenter around the whole exec.
import type { Family } from '../../net/ip.js';
import { KernelError } from '../errors.js';
import type { KernelOp, RouteSpec, VxlanSpec } from '../kernel.js';
import { resolveBin } from './exec.js';

/** `/proc/sys` path of a key: slash form as Go's sysctl package, or dotted form without any `/`. */
export function sysctlPath(key: string): string {
  const rel = key.includes('/') ? key.replace(/^\/+/, '') : key.replace(/\./g, '/');
  if (rel.split('/').some((p) => p === '..' || p === '')) throw new TypeError(`invalid sysctl key ${JSON.stringify(key)}`);
  return `/proc/sys/${rel}`;
}

export function familyOf(s: string | undefined): Family | undefined {
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

/** `mtu N` when set (0 or absent: the kernel's default) */
const mtuArgs = (mtu: number | undefined) => (mtu ? ['mtu', String(mtu)] : []);

const onOff = (b: boolean) => (b ? 'on' : 'off');

/** `link add <name> [mtu N] [address M] type <kind…>` */
function linkAdd(name: string, o: { mtu?: number | undefined; mac?: string | undefined }, kind: readonly string[]): string[] {
  return ['link', 'add', name, ...mtuArgs(o.mtu), ...(o.mac !== undefined ? ['address', o.mac] : []), 'type', ...kind];
}

function vxlanArgs(name: string, spec: VxlanSpec): string[] {
  return linkAdd(name, spec, [
    'vxlan', 'id', String(spec.vni),
    ...(spec.local ? ['local', spec.local] : []),
    ...(spec.dev !== undefined ? ['dev', spec.dev] : []),
    'dstport', String(spec.port), spec.learning ? 'learning' : 'nolearning',
    ...(spec.gbp ? ['gbp'] : []),
  ]);
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
    case 'addIpip':
      return {
        tool: 'ip',
        args: linkAdd(op.name, op, ['ipip', 'local', op.local, ...(op.dev !== undefined ? ['dev', op.dev] : []), ...(op.ttl !== undefined ? ['ttl', String(op.ttl)] : [])]),
      };
    case 'addWireguard':
      return { tool: 'ip', args: linkAdd(op.name, op, ['wireguard']) };
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
      return { tool: 'ip', args: linkAdd(op.name, op, ['bridge', ...(op.vlanFiltering ? ['vlan_filtering', '1'] : [])]) };
    case 'addVeth': {
      const peer = [...mtuArgs(op.mtu), ...(op.peerMac !== undefined ? ['address', op.peerMac] : []), ...(op.peerNetns !== undefined ? ['netns', op.peerNetns] : [])];
      return { tool: 'ip', args: linkAdd(op.name, op, ['veth', 'peer', 'name', op.peer, ...peer]) };
    }
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

export function checkLineArg(s: string): void {
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
export function attachOp(err: unknown, runs: readonly BatchRun[], single: boolean, offset = 0): unknown {
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


/**
 * Where a batch failed: `run` from the `@@kernel-run i` markers of a mixed (sh) batch, `line` (1-based,
 * within the run) from iproute2's "Command failed -:N".
 */
export function batchFailure(stderr: string): { run?: number; line?: number } {
  const out: { run?: number; line?: number } = {};
  for (const l of stderr.split('\n')) {
    const m = /^@@kernel-run (\d+)$/.exec(l.trim());
    if (m) {
      out.run = Number(m[1]);
      delete out.line;
      continue;
    }
    const f = /^Command failed -:(\d+)$/.exec(l.trim());
    if (f) out.line = Number(f[1]);
  }
  return out;
}

/** For a mixed batch: the line that failed, given each run's lines (see batchFailure). */
export function failedBatchLine(stderr: string, runs: readonly (readonly string[])[]): string | undefined {
  const { run, line } = batchFailure(stderr);
  if (run === undefined) return undefined;
  const lines = runs[run];
  if (lines === undefined) return undefined;
  if (line !== undefined) return lines[line - 1];
  return lines.length === 1 ? lines[0] : undefined;
}

/** The `sh -s` script of a mixed batch: each run a here-doc batch (or printf for sysctls), `set -e`. */
export function mixedScript(runs: readonly BatchRun[]): string {
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
  return script.join('\n') + '\n';
}
