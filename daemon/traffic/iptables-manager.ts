// iptables mode of the traffic manager (flannel's pkg/trafficmngr/iptables/iptables.go).
//
// Design notes
// - A rule set (v4 masq, v6 masq, v4 forward, v6 forward) is an ordered list of rules. It is applied
//   by ipTablesBootstrap: for each rule, `-D` it if `-C` finds it, then `-A` it, all piped to ONE
//   `iptables-restore --noflush`, so our rules end up together and in order (the jump from
//   POSTROUTING/FORWARD moves to the end of that chain, as Go's does).
// - Each rule set then gets a loop that every --iptables-resync seconds checks every chain and rule
//   (`-C`) and, if anything is missing, logs Go's line and bootstraps the whole set again. A failed
//   check or bootstrap is logged and retried at the next period: it never ends the daemon.
// - Recycle: when the config's Network or our lease differs from the previous subnet.env's, the masq
//   rules built from the previous values are deleted first (`-D` of those that exist, one restore). A
//   failure there is the only error setupAndEnsureMasqRules throws (Go exits 1 on it).
// - Kernel work of one manager is serialised (Go: a mutex around iptables-restore), so a resync of
//   the masq set never interleaves its check and restore with the forward set's.
// - Nothing is removed on exit.
import type { Family, IPNet } from '../../shared/net/ip.js';
import { formatNet, netEqual } from '../../shared/net/ip.js';
import type { Iptables, RestoreRule } from '../../shared/kernel/iptables.js';
import { isNotFound, KernelError } from '../../shared/kernel/errors.js';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/log.js';
import type { Sleep } from '../sleep.js';
import { loopHeartbeat } from '../metrics/heartbeat.js';
import { recordTrafficResync } from '../metrics/metrics.js';
import type { ForwardParams, MasqParams, TrafficManager } from './traffic-manager.js';

/** kube-proxy's masquerade mark: traffic it marked is left to it (no double NAT). */
export const KUBE_PROXY_MARK = '0x4000/0x4000';
export const POSTRTG_CHAIN = 'FLANNEL-POSTRTG';
export const FWD_CHAIN = 'FLANNEL-FWD';
const MASQ_COMMENT = ['-m', 'comment', '--comment', 'flanneld masq'];
const FWD_COMMENT = ['-m', 'comment', '--comment', 'flanneld forward'];

/** trafficmngr.IPTablesRule (Action is always -A). */
export interface IPTablesRule {
  table: string;
  chain: string;
  rulespec: readonly string[];
}

const MULTICAST: Record<Family, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };

/** The nat rules of Go's masqRules / masqIP6Rules (pkg/trafficmngr/iptables/iptables.go), in order. */
export function masqRules(network: IPNet, podSubnet: IPNet, randomFully: boolean): IPTablesRule[] {
  const net = formatNet(network);
  const pod = formatNet(podSubnet);
  const masq = ['-j', 'MASQUERADE', ...(randomFully ? ['--random-fully'] : [])];
  const r = (rulespec: string[]): IPTablesRule => ({ table: 'nat', chain: POSTRTG_CHAIN, rulespec });
  return [
    // makes sure flannel's rules run before later ones on the node
    { table: 'nat', chain: 'POSTROUTING', rulespec: [...MASQ_COMMENT, '-j', POSTRTG_CHAIN] },
    // kube-proxy marked it: no masquerade here (double NAT bug on some kernels)
    r(['-m', 'mark', '--mark', KUBE_PROXY_MARK, ...MASQ_COMMENT, '-j', 'RETURN']),
    // no NAT within the overlay
    r(['-s', pod, '-d', net, ...MASQ_COMMENT, '-j', 'RETURN']),
    r(['-s', net, '-d', pod, ...MASQ_COMMENT, '-j', 'RETURN']),
    // external traffic arriving for our pods keeps its source
    r(['!', '-s', net, '-d', pod, ...MASQ_COMMENT, '-j', 'RETURN']),
    // pods to the outside world, except multicast
    r(['-s', net, '!', '-d', MULTICAST[network.family], ...MASQ_COMMENT, ...masq]),
    // anything from the host to the overlay
    r(['!', '-s', net, '-d', net, ...MASQ_COMMENT, ...masq]),
  ];
}

/** The filter rules of Go's forwardRules (pkg/trafficmngr/iptables/iptables.go), in order. */
export function forwardRules(network: IPNet): IPTablesRule[] {
  const net = formatNet(network);
  return [
    { table: 'filter', chain: 'FORWARD', rulespec: [...FWD_COMMENT, '-j', FWD_CHAIN] },
    { table: 'filter', chain: FWD_CHAIN, rulespec: ['-s', net, ...FWD_COMMENT, '-j', 'ACCEPT'] },
    { table: 'filter', chain: FWD_CHAIN, rulespec: ['-d', net, ...FWD_COMMENT, '-j', 'ACCEPT'] },
  ];
}

/** The flannel chain a rule lives in or jumps to, whose existence Go checks before the rule itself. */
function flannelChainOf(rule: IPTablesRule): string | undefined {
  const target = rule.rulespec[rule.rulespec.length - 1];
  for (const c of [FWD_CHAIN, POSTRTG_CHAIN]) if (rule.chain === c || target === c) return c;
  return undefined;
}

/** chainExists, asked once per table and chain within one pass over a rule set. */
function chainCache(ipt: Iptables): (table: string, chain: string) => Promise<boolean> {
  const seen = new Map<string, Promise<boolean>>();
  return (table, chain) => {
    const key = `${table}\0${chain}`;
    let p = seen.get(key);
    if (p === undefined) {
      p = ipt.chainExists(table, chain);
      seen.set(key, p);
    }
    return p;
  };
}

/** The rules grouped by table, keeping their order (one restore per table). */
function byTable(lines: Array<{ table: string; line: RestoreRule }>): Map<string, RestoreRule[]> {
  const out = new Map<string, RestoreRule[]>();
  for (const { table, line } of lines) {
    const l = out.get(table);
    if (l === undefined) out.set(table, [line]);
    else l.push(line);
  }
  return out;
}

async function applyRestore(ipt: Iptables, lines: Map<string, RestoreRule[]>): Promise<void> {
  for (const [table, l] of lines) await ipt.restore(table, l);
}

/** ipTablesRulesExist: every flannel chain and every rule is there. */
export async function ipTablesRulesExist(ipt: Iptables, rules: readonly IPTablesRule[]): Promise<boolean> {
  const chainExists = chainCache(ipt);
  for (const rule of rules) {
    const c = flannelChainOf(rule);
    if (c !== undefined && !(await chainExists(rule.table, c))) return false;
    if (!(await ipt.hasRule(rule.table, rule.chain, rule.rulespec))) return false;
  }
  return true;
}

/**
 * ipTablesBootstrap: creates a missing flannel chain, then per rule `-D` (when it exists) and `-A`,
 * in one iptables-restore per table.
 */
export async function ipTablesBootstrap(ipt: Iptables, rules: readonly IPTablesRule[]): Promise<void> {
  const lines: Array<{ table: string; line: RestoreRule }> = [];
  try {
    const chainExists = chainCache(ipt);
    const created = new Set<string>();
    for (const rule of rules) {
      const c = flannelChainOf(rule);
      if (c !== undefined && !created.has(`${rule.table}\0${c}`) && !(await chainExists(rule.table, c))) {
        try {
          await ipt.clearChain(rule.table, c);
        } catch (err) {
          throw new Error(`failed to create rule chain: ${errorMessage(err)}`, { cause: err });
        }
        created.add(`${rule.table}\0${c}`);
      }
      let exists: boolean;
      try {
        exists = await ipt.hasRule(rule.table, rule.chain, rule.rulespec);
      } catch (err) {
        throw new Error(`failed to check rule existence: ${errorMessage(err)}`, { cause: err });
      }
      // an existing rule is deleted and appended again: ours end up together and in order
      if (exists) lines.push({ table: rule.table, line: { action: '-D', chain: rule.chain, rule: rule.rulespec } });
      lines.push({ table: rule.table, line: { action: '-A', chain: rule.chain, rule: rule.rulespec } });
    }
  } catch (err) {
    throw new Error(`failed to setup iptables-restore payload: ${errorMessage(err)}`, { cause: err });
  }
  try {
    await applyRestore(ipt, byTable(lines));
  } catch (err) {
    throw new Error(`failed to apply partial iptables-restore: ${errorMessage(err)}`, { cause: err });
  }
}

/** teardownIPTables: `-D` of the rules that exist (those of a missing flannel chain are skipped). */
export async function teardownIPTables(ipt: Iptables, rules: readonly IPTablesRule[]): Promise<void> {
  const lines: Array<{ table: string; line: RestoreRule }> = [];
  const chainExists = chainCache(ipt);
  for (const rule of rules) {
    const c = flannelChainOf(rule);
    try {
      if (c !== undefined && !(await chainExists(rule.table, c))) continue;
      if (!(await ipt.hasRule(rule.table, rule.chain, rule.rulespec))) continue;
    } catch (err) {
      throw new Error(`failed to check rule existence: ${errorMessage(err)}`, { cause: err });
    }
    lines.push({ table: rule.table, line: { action: '-D', chain: rule.chain, rule: rule.rulespec } });
  }
  try {
    await applyRestore(ipt, byTable(lines));
  } catch (err) {
    throw new Error(`unable to teardown iptables: ${errorMessage(err)}`, { cause: err });
  }
}

/** ensureIPTables: nothing when all rules exist, else one log line and a full bootstrap. */
/** Puts the rules back when one is missing; true when it did (flannel_traffic_rule_resyncs_total{result="repaired"}). */
export async function ensureIPTables(ipt: Iptables, rules: readonly IPTablesRule[], log: Logger): Promise<boolean> {
  let exists: boolean;
  try {
    exists = await ipTablesRulesExist(ipt, rules);
  } catch (err) {
    throw new Error(`error checking rule existence: ${errorMessage(err)}`, { cause: err });
  }
  if (exists) return false;
  // the order of the rules matters: set them all up again
  log.info('Some iptables rules are missing; deleting and recreating rules');
  try {
    await ipTablesBootstrap(ipt, rules);
  } catch (err) {
    throw new Error(`error setting up rules: ${errorMessage(err)}`, { cause: err });
  }
  log.info('bootstrap done');
  return true;
}

export interface IPTablesManagerDeps {
  iptables: Record<4 | 6, Iptables>;
  log: Logger;
  sleep: Sleep;
}

const IPT_NAME: Record<Family, string> = { 4: 'IPTables', 6: 'IP6Tables' };

export class IPTablesManager implements TrafficManager {
  private readonly loops: Promise<void>[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly d: IPTablesManagerDeps) {}

  /** Runs `f` after every kernel job queued before it (Go's restore mutex, widened to check + restore). */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const p = this.queue.then(f, f);
    this.queue = p.catch(() => undefined);
    return p;
  }

  async init(): Promise<void> {
    this.d.log.info('Starting flannel in iptables mode...');
  }

  /**
   * Removes our chains and the jumps to them (used when nftables mode is selected). Go flushes and
   * deletes nat/FLANNEL-POSTRTG and nat/FLANNEL-FWD only, which fails while POSTROUTING still jumps
   * there and misses filter/FLANNEL-FWD (its forward chain lives in filter, not nat); this removes the jump rules first and
   * looks for FLANNEL-FWD in filter. A chain that is not there is not an error.
   */
  async cleanUp(): Promise<void> {
    this.d.log.info('Cleaning-up iptables rules...');
    const sets: Array<{ table: string; chain: string; jump: IPTablesRule }> = [
      { table: 'nat', chain: POSTRTG_CHAIN, jump: { table: 'nat', chain: 'POSTROUTING', rulespec: [...MASQ_COMMENT, '-j', POSTRTG_CHAIN] } },
      { table: 'filter', chain: FWD_CHAIN, jump: { table: 'filter', chain: 'FORWARD', rulespec: [...FWD_COMMENT, '-j', FWD_CHAIN] } },
    ];
    const failures: string[] = [];
    families: for (const family of [4, 6] as const) {
      const ipt = this.d.iptables[family];
      for (const s of sets) {
        try {
          if (!(await ipt.chainExists(s.table, s.chain))) continue;
          // duplicates of the jump are possible (other tools, older flannels): remove them all
          for (let i = 0; i < 16 && (await ipt.hasRule(s.jump.table, s.jump.chain, s.jump.rulespec)); i++) {
            await ipt.deleteRule(s.jump.table, s.jump.chain, s.jump.rulespec, { missingOk: true });
          }
          await ipt.deleteChain(s.table, s.chain, { missingOk: true });
        } catch (err) {
          if (isNotFound(err)) continue;
          // no iptables binary (an nftables-only host): nothing of ours can be there
          // (ip6tables may still be there: go on with the other family)
          if (err instanceof KernelError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') continue families;
          failures.push(`could not clean-up ${s.chain} (IPv${family}): ${errorMessage(err)}`);
        }
      }
    }
    if (failures.length > 0) throw new Error(failures.join('; '));
  }

  async setupAndEnsureMasqRules(signal: AbortSignal, p: MasqParams): Promise<void> {
    const families: Array<{ family: Family; net?: IPNet; sn?: IPNet; prevNet?: IPNet; prevSn?: IPNet }> = [
      { family: 4, net: p.network, sn: p.subnet, prevNet: p.prevNetwork, prevSn: p.prevSubnet },
      { family: 6, net: p.ipv6Network, sn: p.ipv6Subnet, prevNet: p.prevIPv6Network, prevSn: p.prevIPv6Subnet },
    ];
    for (const f of families) {
      if (f.net === undefined || f.sn === undefined) continue;
      const ipt = this.d.iptables[f.family];
      const randomFully = !p.randomFullyDisable && (await ipt.hasRandomFully().catch(() => false));
      // Recycle only what we can rebuild: Go also "recycles" when subnet.env had no values, with rules
      // built from 0.0.0.0/0 (v4) or an unparsable "<nil>" (v6, which then fails the start).
      if (f.prevNet !== undefined && f.prevSn !== undefined && (!netEqual(f.net, f.prevNet) || !netEqual(f.prevSn, f.sn))) {
        this.d.log.info(
          `Current network or subnet (${formatNet(f.net)}, ${formatNet(f.sn)}) is not equal to previous one (${formatNet(f.prevNet)}, ${formatNet(f.prevSn)}), trying to recycle old iptables rules`,
        );
        const old = masqRules(f.prevNet, f.prevSn, randomFully);
        try {
          await this.serial(() => teardownIPTables(ipt, old));
        } catch (err) {
          this.d.log.error(`Failed to teardown iptables: ${errorMessage(err)}`);
          throw err;
        }
      }
      this.d.log.info(f.family === 4 ? 'Setting up masking rules' : 'Setting up masking rules for IPv6');
      await this.createChain(f.family, 'nat', POSTRTG_CHAIN);
      await this.setupAndEnsure(signal, f.family, masqRules(f.net, f.sn, randomFully), p.resyncSeconds);
    }
  }

  async setupAndEnsureForwardRules(signal: AbortSignal, p: ForwardParams): Promise<void> {
    if (p.network !== undefined) {
      this.d.log.info('Changing default FORWARD chain policy to ACCEPT');
      await this.createChain(4, 'filter', FWD_CHAIN);
      await this.setupAndEnsure(signal, 4, forwardRules(p.network), p.resyncSeconds);
    }
    if (p.ipv6Network !== undefined) {
      this.d.log.info('IPv6: Changing default FORWARD chain policy to ACCEPT');
      await this.createChain(6, 'filter', FWD_CHAIN);
      await this.setupAndEnsure(signal, 6, forwardRules(p.ipv6Network), p.resyncSeconds);
    }
  }

  done(): Promise<void> {
    return Promise.all(this.loops).then(() => undefined);
  }

  /** CreateIP4Chain / CreateIP6Chain: create or flush; a failure is logged only. */
  private async createChain(family: Family, table: string, chain: string): Promise<void> {
    try {
      await this.serial(() => this.d.iptables[family].clearChain(table, chain));
    } catch (err) {
      this.d.log.error(`Failed to setup ${IPT_NAME[family]}. Error on creating the chain: ${errorMessage(err)}`);
    }
  }

  /** setupAndEnsureIP4Tables / IP6Tables: bootstrap now (failure logged), then the resync loop. */
  private async setupAndEnsure(signal: AbortSignal, family: Family, rules: IPTablesRule[], resyncSeconds: number): Promise<void> {
    const ipt = this.d.iptables[family];
    try {
      await this.serial(() => ipTablesBootstrap(ipt, rules));
      this.d.log.info('bootstrap done');
    } catch (err) {
      this.d.log.error(`Failed to bootstrap ${IPT_NAME[family]}: ${errorMessage(err)}`);
    }
    this.loops.push(this.resync(signal, ipt, rules, resyncSeconds * 1000));
  }

  private async resync(signal: AbortSignal, ipt: Iptables, rules: IPTablesRule[], periodMs: number): Promise<void> {
    const name = ipt === this.d.iptables[6] ? 'ip6tables' : 'iptables';
    const hb = loopHeartbeat(`${name}-resync`, periodMs); // /healthz: this loop keeps making passes
    try {
      while (await this.d.sleep(periodMs, signal)) {
        try {
          const repaired = await this.serial(() => ensureIPTables(ipt, rules, this.d.log));
          recordTrafficResync(name, repaired ? 'repaired' : 'in_sync');
        } catch (err) {
          recordTrafficResync(name, 'error');
          this.d.log.error(`Failed to ensure iptables rules: ${errorMessage(err)}`);
        }
        hb.beat();
      }
    } finally {
      hb.stop();
    }
  }
}
