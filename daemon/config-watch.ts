// The network config (etcd: <etcd-prefix>/config; kube: --net-config-path) changing under a running
// flanneld.
//
// flanneld applies the config once, at start (as Go). Go then ignores later changes silently; the
// node is renumbered at the next restart, which surprises operators. We re-read it every
// --net-config-poll seconds (the subnet manager's configSource, which has no watch) and, once per
// distinct change, log a warning that says what changed and what a restart will do: whether this
// node's subnet still fits (kept) or not (renumbered: pods must be recreated), which backend
// device is replaced. A config
// that no longer parses or validates is logged the same way (once per distinct error), never fatal.
// Going back to the running config is logged once too. Fetch errors (etcd down) are left to the
// lease and watch loops, which already report them; a missing key or file is reported.
import { type IPNet, formatIP, formatNet, type IP } from '../shared/net/ip.js';
import type { Lease } from './lease.js';
import { type Logger, errorMessage } from '../shared/log.js';
import { backendDevices, fitsFamily } from './renumber.js';
import { sleep } from './sleep.js';
import { type Config, parseAndCheckConfig } from './subnet/config.js';
import { type HistoryEntry, rememberedSubnet } from './subnet/state-file.js';

const show = (v: IPNet | IP | undefined): string =>
  v === undefined ? '<none>' : 'prefix' in v ? formatNet(v) : formatIP(v);

/** `Field old -> new` for every field of the config that differs; [] when none does. */
export function configDiff(a: Config, b: Config): string[] {
  const out: string[] = [];
  const cmp = (name: string, x: string, y: string) => {
    if (x !== y) out.push(`${name} ${x} -> ${y}`);
  };
  cmp('EnableIPv4', String(a.enableIPv4), String(b.enableIPv4));
  cmp('EnableIPv6', String(a.enableIPv6), String(b.enableIPv6));
  cmp('EnableNFTables', String(a.enableNFTables), String(b.enableNFTables));
  if (a.enableIPv4 || b.enableIPv4) {
    cmp('Network', show(a.network), show(b.network));
    cmp('SubnetLen', String(a.subnetLen), String(b.subnetLen));
    cmp('SubnetMin', show(a.subnetMin), show(b.subnetMin));
    cmp('SubnetMax', show(a.subnetMax), show(b.subnetMax));
  }
  if (a.enableIPv6 || b.enableIPv6) {
    cmp('IPv6Network', show(a.ipv6Network), show(b.ipv6Network));
    cmp('IPv6SubnetLen', String(a.ipv6SubnetLen), String(b.ipv6SubnetLen));
    cmp('IPv6SubnetMin', show(a.ipv6SubnetMin), show(b.ipv6SubnetMin));
    cmp('IPv6SubnetMax', show(a.ipv6SubnetMax), show(b.ipv6SubnetMax));
  }
  cmp('Backend', JSON.stringify(a.backend), JSON.stringify(b.backend));
  return out;
}

export interface RestartContext {
  /** our lease now */
  lease: Lease | undefined;
  /** the subnets this node held per Network (network.json), to name the one a restart asks for */
  history?: readonly HistoryEntry[];
}

/** What a restart on `next` does to this node, in words an operator can act on. */
export function restartOutcome(running: Config, next: Config, ctx: RestartContext): string[] {
  const out: string[] = [];
  const families: { f: 4 | 6; on: boolean; sn?: IPNet; network?: IPNet }[] = [
    { f: 4, on: next.enableIPv4, sn: ctx.lease?.subnet, network: next.network },
    { f: 6, on: next.enableIPv6, sn: ctx.lease?.ipv6Subnet, network: next.ipv6Network },
  ];
  const lost: string[] = [];
  for (const { f, on, sn, network } of families) {
    if (!on || !network) continue;
    if (sn && fitsFamily(next, f, sn)) {
      out.push(`this node keeps its subnet ${formatNet(sn)} (it fits the new config)`);
      continue;
    }
    const back = rememberedSubnet(ctx.history ?? [], network, (old) => fitsFamily(next, f, old));
    const where = back ? `${formatNet(back)}, which it held there before, if free; else a new one in ${formatNet(network)}` : `a new subnet in ${formatNet(network)}`;
    out.push(sn ? `this node is renumbered: its subnet ${formatNet(sn)} does not fit the new config; it gets ${where}` : `this node gets ${where}`);
    if (sn) lost.push(formatNet(sn));
  }
  if (lost.length > 0) {
    out.push(`pods started before keep addresses in ${lost.join(' and ')}, lose connectivity and must be recreated; flanneld removes the old gateway from the CNI bridge`);
  }
  let before: string[] = [];
  let after: string[] = [];
  try {
    before = backendDevices(running).map((d) => d.name);
    after = backendDevices(next).map((d) => d.name);
  } catch (err) {
    out.push(`the new Backend is invalid (${errorMessage(err)}): flanneld will fail to start on it`);
    return out;
  }
  const gone = before.filter((n) => !after.includes(n));
  const added = after.filter((n) => !before.includes(n));
  if (running.backendType !== next.backendType) out.push(`the backend changes from ${running.backendType} to ${next.backendType}`);
  if (gone.length > 0) out.push(`${gone.join(', ')} will be deleted`);
  if (added.length > 0) out.push(`${added.join(', ')} will be created`);
  if (gone.length === 0 && added.length === 0 && running.backendType === next.backendType && JSON.stringify(running.backend) !== JSON.stringify(next.backend)) {
    out.push(`the ${next.backendType} backend is set up again with the new settings${after.length > 0 ? ` (${after.join(', ')} re-created if incompatible)` : ''}`);
  }
  return out;
}

export interface ConfigWatchOptions {
  /** the config's raw text, read afresh (CreatedSubnetManager.configSource) */
  read: (signal: AbortSignal) => Promise<string>;
  /** the config flanneld started with and runs on */
  running: Config;
  /** where the config lives (etcd key or file path), for the log lines */
  key: string;
  intervalMs: number;
  context: () => RestartContext;
  log: Logger;
}

/**
 * One poll's decision, kept apart from the timer: `seen` is the last state logged ('' = running
 * config). Returns the new `seen` and the line to log, if any.
 */
export function judge(
  text: string,
  seen: string,
  o: Pick<ConfigWatchOptions, 'running' | 'key' | 'context'>,
): { seen: string; level?: 'info' | 'warn'; line?: string } {
  let next: Config;
  try {
    next = parseAndCheckConfig(text);
  } catch (err) {
    const id = `invalid:${errorMessage(err)}`;
    if (id === seen) return { seen };
    return {
      seen: id,
      level: 'warn',
      line: `the network config at ${o.key} changed and is invalid (${errorMessage(err)}): flanneld keeps running on the config it started with; a restart would wait until the config is fixed`,
    };
  }
  const diff = configDiff(o.running, next);
  const id = diff.join('; ');
  if (id === seen) return { seen };
  if (diff.length === 0) {
    return { seen: id, level: 'info', line: `the network config at ${o.key} is back to the one flanneld runs on: a restart changes nothing` };
  }
  const outcome = restartOutcome(o.running, next, o.context());
  return {
    seen: id,
    level: 'warn',
    line: `the network config at ${o.key} changed: ${diff.join(', ')}. flanneld keeps running on the config it started with until it is restarted. On restart: ${outcome.join('; ')}`,
  };
}

/** Polls until `signal` aborts; never throws. */
export async function watchNetworkConfig(o: ConfigWatchOptions, signal: AbortSignal): Promise<void> {
  let seen = '';
  while (await sleep(o.intervalMs, signal)) {
    let text: string;
    try {
      text = await o.read(signal);
    } catch (err) {
      if (signal.aborted) return;
      // a missing key (etcd) or file (kube) is a change worth a line; etcd trouble is reported by
      // the lease loops
      if (/config not found|no such file or directory/i.test(errorMessage(err)) && seen !== 'missing') {
        seen = 'missing';
        o.log.warn(`the network config at ${o.key} was deleted: flanneld keeps running on the config it started with; a restart would wait until it is back`);
      }
      continue;
    }
    const r = judge(text, seen, o);
    seen = r.seen;
    if (r.line) o.log[r.level ?? 'warn'](r.line);
  }
}
