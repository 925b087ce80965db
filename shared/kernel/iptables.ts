// iptables behind a tiny interface (upstream: go-iptables as used by pkg/ip/ipmasq and flannel's
// TrafficManager). `ensureRule` checks with -C before appending (go-iptables AppendUnique);
// deletes take `missingOk` and treat "does not exist" / "Bad rule" / "No chain" as success (cni.md §3.4:
// iptables-nft 1.8.9 words a missing chain differently from legacy).
//
// Rules are argv arrays after the chain name, e.g. ['-s', '10.0.0.2', '-j', 'CNI-x', '-m', 'comment',
// '--comment', 'name: "cbr0" id: "c1"']. The table is per call. `--wait` is always passed, as go-iptables does
// (not to `--version`).
//
// For flanneld's traffic manager (pkg/trafficmngr/iptables): `restore` pipes ordered -A/-I/-D lines to
// `iptables-restore --noflush` as one transaction (ipTablesBootstrap / teardownIPTables), `clearChain`
// and `chainExists` are go-iptables' ClearChain / ChainExists, `hasRandomFully` its HasRandomFully.
import type { Family } from '../net/ip.js';
import { isExists, isNotFound, KernelError } from './errors.js';
import { spawnExec, toolArgv } from './iproute.js';
import type { Exec } from './iproute.js';

export interface Iptables {
  readonly family: Family;
  /** Creates the chain if missing (`-N`, EEXIST is fine). */
  ensureChain(table: string, chain: string): Promise<void>;
  /** `-C` then `-A` if the rule is not there. */
  ensureRule(table: string, chain: string, rule: readonly string[]): Promise<void>;
  /** `-I chain 1` if the rule is not there. */
  ensureRuleFirst(table: string, chain: string, rule: readonly string[]): Promise<void>;
  hasRule(table: string, chain: string, rule: readonly string[]): Promise<boolean>;
  deleteRule(table: string, chain: string, rule: readonly string[], o?: { missingOk?: boolean }): Promise<void>;
  /** `-F` then `-X`. */
  deleteChain(table: string, chain: string, o?: { missingOk?: boolean }): Promise<void>;
  flushChain(table: string, chain: string, o?: { missingOk?: boolean }): Promise<void>;
  /** `-S chain` lines (or the whole table without a chain). */
  listRules(table: string, chain?: string): Promise<string[]>;
  /**
   * Chains owned whole (e.g. a container's masquerade chain): each is created, or flushed, and
   * filled with exactly `rules`; then each `unique` rule is appended unless present. Two execs
   * (`-C` per unique rule, one `iptables-restore --noflush`) instead of one per -N/-C/-A, with the
   * end state of ensureChain + ensureRule for a chain that holds only our rules.
   */
  fillChains(table: string, own: readonly OwnedChain[], unique: readonly ChainRule[]): Promise<void>;
  /** Whether `table` has the chain (built-in or user-defined), read from one `-S` (go-iptables ChainExists). */
  chainExists(table: string, chain: string): Promise<boolean>;
  /** Creates the chain, or flushes it when it exists (go-iptables ClearChain: `-N`, on EEXIST `-F`). */
  clearChain(table: string, chain: string): Promise<void>;
  /**
   * `iptables-restore --noflush`: the lines in order as ONE transaction on `table` (all or nothing;
   * no other rule can land between them). No lines: no exec. See restoreScript for the input.
   */
  restore(table: string, lines: readonly RestoreRule[]): Promise<void>;
  /** MASQUERADE `--random-fully` is available: the binary is ≥ 1.6.2 (go-iptables HasRandomFully). */
  hasRandomFully(): Promise<boolean>;
}

/** One line of a restore: `-A`/`-I` (at the top)/`-D` `chain` `rule`. */
export interface RestoreRule {
  action: '-A' | '-I' | '-D';
  chain: string;
  rule: readonly string[];
}

export interface OwnedChain {
  chain: string;
  rules: ReadonlyArray<readonly string[]>;
}

export interface ChainRule {
  chain: string;
  rule: readonly string[];
}

/** One argument in iptables-restore's line syntax: double-quoted (with \\ and \" escapes) when needed. */
function restoreArg(a: string): string {
  return /^[^\s"'\\]+$/.test(a) ? a : `"${a.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** The iptables-restore input of fillChains. */
export function fillChainsScript(table: string, own: readonly OwnedChain[], append: readonly ChainRule[]): string {
  const lines = [`*${table}`];
  for (const c of own) lines.push(`:${c.chain} - [0:0]`);
  for (const c of own) for (const r of c.rules) lines.push(`-A ${c.chain} ${r.map(restoreArg).join(' ')}`);
  for (const a of append) lines.push(`-A ${a.chain} ${a.rule.map(restoreArg).join(' ')}`);
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/**
 * The iptables-restore input of restore(): `*<table>`, one line per rule, `COMMIT`, each line ending in
 * `\n`. As flannel's buildIPTablesRestorePayload, the token after `--comment` is always double-quoted;
 * other tokens are quoted only when they need it.
 */
export function restoreScript(table: string, lines: readonly RestoreRule[]): string {
  const quote = (a: string) => `"${a.replace(/["\\]/g, (c) => `\\${c}`)}"`;
  let out = `*${table}\n`;
  for (const l of lines) {
    const args = l.rule.map((a, i) => (i > 0 && l.rule[i - 1] === '--comment' ? quote(a) : restoreArg(a)));
    out += `${[l.action, l.chain, ...args].join(' ')}\n`;
  }
  return `${out}COMMIT\n`;
}

/** `iptables vX.Y.Z ...` → X.Y.Z ≥ 1.6.2 (when --random-fully and restore's --wait appeared). */
export function versionHasRandomFully(versionText: string): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionText);
  if (!m) return false;
  const [a, b, c] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return a > 1 || (a === 1 && b > 6) || (a === 1 && b === 6 && c >= 2);
}

/** iptables (family 4) or ip6tables (family 6), optionally inside the network namespace at `netns`. */
export function createIptables(family: Family, o?: { netns?: string; exec?: Exec }): Iptables {
  return new ExecIptables(family, o?.netns, o?.exec ?? spawnExec);
}

class ExecIptables implements Iptables {
  constructor(
    readonly family: Family,
    private readonly netns: string | undefined,
    private readonly exec: Exec,
  ) {}

  private randomFully: Promise<boolean> | undefined;

  private run(args: readonly string[], tool: 'iptables' | 'iptables-restore' = 'iptables', input?: string, wait = true): Promise<string> {
    const bin = this.family === 6 ? tool.replace('ip', 'ip6') : tool;
    return this.exec(toolArgv(this.netns, bin, [...args, ...(wait ? ['--wait'] : [])]), input);
  }

  async fillChains(table: string, own: readonly OwnedChain[], unique: readonly ChainRule[]): Promise<void> {
    const append: ChainRule[] = [];
    for (const u of unique) if (!(await this.hasRule(table, u.chain, u.rule))) append.push(u);
    await this.run(['--noflush'], 'iptables-restore', fillChainsScript(table, own, append));
  }

  async ensureChain(table: string, chain: string): Promise<void> {
    try {
      await this.run(['-t', table, '-N', chain]);
    } catch (err) {
      if (!isExists(err)) throw err;
    }
  }

  async chainExists(table: string, chain: string): Promise<boolean> {
    return (await this.listRules(table)).some((l) => l === `-N ${chain}` || l.startsWith(`-P ${chain} `));
  }

  async clearChain(table: string, chain: string): Promise<void> {
    try {
      await this.run(['-t', table, '-N', chain]);
    } catch (err) {
      if (!isExists(err)) throw err;
      await this.run(['-t', table, '-F', chain]);
    }
  }

  async restore(table: string, lines: readonly RestoreRule[]): Promise<void> {
    if (lines.length === 0) return;
    await this.run(['--noflush'], 'iptables-restore', restoreScript(table, lines));
  }

  hasRandomFully(): Promise<boolean> {
    this.randomFully ??= this.run(['--version'], 'iptables', undefined, false).then(versionHasRandomFully, () => {
      this.randomFully = undefined; // not cached: the binary may appear later
      return false;
    });
    return this.randomFully;
  }

  async hasRule(table: string, chain: string, rule: readonly string[]): Promise<boolean> {
    try {
      await this.run(['-t', table, '-C', chain, ...rule]);
      return true;
    } catch (err) {
      // -C exits 1 with "Bad rule (does a matching rule exist in that chain?)" when absent
      if (err instanceof KernelError && err.exitCode === 1) return false;
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async ensureRule(table: string, chain: string, rule: readonly string[]): Promise<void> {
    if (await this.hasRule(table, chain, rule)) return;
    await this.run(['-t', table, '-A', chain, ...rule]);
  }

  async ensureRuleFirst(table: string, chain: string, rule: readonly string[]): Promise<void> {
    if (await this.hasRule(table, chain, rule)) return;
    await this.run(['-t', table, '-I', chain, '1', ...rule]);
  }

  async deleteRule(table: string, chain: string, rule: readonly string[], o?: { missingOk?: boolean }): Promise<void> {
    try {
      await this.run(['-t', table, '-D', chain, ...rule]);
    } catch (err) {
      if (o?.missingOk && isNotFound(err)) return;
      throw err;
    }
  }

  async flushChain(table: string, chain: string, o?: { missingOk?: boolean }): Promise<void> {
    try {
      await this.run(['-t', table, '-F', chain]);
    } catch (err) {
      if (o?.missingOk && isNotFound(err)) return;
      throw err;
    }
  }

  async deleteChain(table: string, chain: string, o?: { missingOk?: boolean }): Promise<void> {
    await this.flushChain(table, chain, o);
    try {
      await this.run(['-t', table, '-X', chain]);
    } catch (err) {
      if (o?.missingOk && isNotFound(err)) return;
      throw err;
    }
  }

  async listRules(table: string, chain?: string): Promise<string[]> {
    const out = await this.run(['-t', table, '-S', ...(chain !== undefined ? [chain] : [])]);
    return out.split('\n').filter((l) => l !== '');
  }
}

const BUILTIN_CHAINS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

/** In-memory Iptables for unit tests: state per table → chain → rules (argv joined by NUL). */
export class FakeIptables implements Iptables {
  readonly tables = new Map<string, Map<string, string[][]>>();
  /** every restore() input, as restoreScript wrote it */
  readonly restores: string[] = [];
  /** what hasRandomFully() answers */
  randomFully = true;
  private restoreFailure: string | undefined;
  constructor(readonly family: Family = 4) {}

  /** The next restore() fails (changing nothing), as iptables-restore does on a bad line. */
  failNextRestore(stderr = 'iptables-restore: line 2 failed'): void {
    this.restoreFailure = stderr;
  }

  /**
   * `iptables -t <table> -S [chain]` as the real tool prints it: `-P <builtin> ACCEPT` or `-N <chain>`,
   * then `-A` lines with arguments that contain blanks double-quoted (`--comment "flanneld masq"`).
   */
  save(table: string, chain?: string): string[] {
    const out: string[] = [];
    const q = (a: string) => (/[\s"]/.test(a) ? `"${a.replace(/["\\]/g, (c) => `\\${c}`)}"` : a);
    for (const name of this.chains(table).keys()) {
      if (chain !== undefined && name !== chain) continue;
      out.push(BUILTIN_CHAINS.has(name) ? `-P ${name} ACCEPT` : `-N ${name}`);
    }
    for (const [name, rules] of this.chains(table)) {
      if (chain !== undefined && name !== chain) continue;
      for (const r of rules) out.push(`-A ${name} ${r.map(q).join(' ')}`);
    }
    if (chain !== undefined && out.length === 0) this.chain(table, chain);
    return out;
  }

  async chainExists(table: string, chain: string): Promise<boolean> {
    return this.chains(table).has(chain);
  }

  async clearChain(table: string, chain: string): Promise<void> {
    this.chains(table).set(chain, []);
  }

  async hasRandomFully(): Promise<boolean> {
    return this.randomFully;
  }

  async restore(table: string, lines: readonly RestoreRule[]): Promise<void> {
    if (lines.length === 0) return;
    const script = restoreScript(table, lines);
    this.restores.push(script);
    const fail = (n: number, why: string): never => {
      const stderr = `iptables-restore v1.8.9 (nf_tables): ${why}\nError occurred at line: ${n}`;
      throw new KernelError(`iptables-restore --noflush: ${why}`, { argv: ['iptables-restore', '--noflush'], exitCode: 1, stderr });
    };
    if (this.restoreFailure !== undefined) {
      const why = this.restoreFailure;
      this.restoreFailure = undefined;
      fail(2, why);
    }
    // all or nothing: work on a copy, swap it in at COMMIT
    const copy = new Map([...this.chains(table)].map(([k, v]) => [k, v.map((r) => [...r])]));
    lines.forEach((l, i) => {
      const c = copy.get(l.chain);
      if (c === undefined) return fail(i + 2, `Chain '${l.chain}' does not exist`);
      const key = l.rule.join('\0');
      if (l.action === '-D') {
        const at = c.findIndex((r) => r.join('\0') === key);
        if (at < 0) return fail(i + 2, 'Bad rule (does a matching rule exist in that chain?).');
        c.splice(at, 1);
      } else if (l.action === '-I') c.unshift([...l.rule]);
      else c.push([...l.rule]);
    });
    this.tables.set(table, copy);
  }

  private chains(table: string): Map<string, string[][]> {
    let t = this.tables.get(table);
    if (t === undefined) {
      t = new Map([['PREROUTING', []], ['INPUT', []], ['FORWARD', []], ['OUTPUT', []], ['POSTROUTING', []]]);
      this.tables.set(table, t);
    }
    return t;
  }

  private chain(table: string, chain: string): string[][] {
    const c = this.chains(table).get(chain);
    if (c === undefined) {
      const stderr = `iptables v1.8.9 (nf_tables): chain \`${chain}' in table \`${table}' is incompatible, use 'nft' tool.\nChain '${chain}' does not exist`;
      throw new KernelError(`iptables: Chain '${chain}' does not exist`, { argv: ['iptables'], exitCode: 1, stderr });
    }
    return c;
  }

  async ensureChain(table: string, chain: string): Promise<void> {
    const t = this.chains(table);
    if (!t.has(chain)) t.set(chain, []);
  }

  async hasRule(table: string, chain: string, rule: readonly string[]): Promise<boolean> {
    const c = this.chains(table).get(chain);
    return c !== undefined && c.some((r) => r.join('\0') === rule.join('\0'));
  }

  async ensureRule(table: string, chain: string, rule: readonly string[]): Promise<void> {
    const c = this.chain(table, chain);
    if (!c.some((r) => r.join('\0') === rule.join('\0'))) c.push([...rule]);
  }

  async ensureRuleFirst(table: string, chain: string, rule: readonly string[]): Promise<void> {
    const c = this.chain(table, chain);
    if (!c.some((r) => r.join('\0') === rule.join('\0'))) c.unshift([...rule]);
  }

  async deleteRule(table: string, chain: string, rule: readonly string[], o?: { missingOk?: boolean }): Promise<void> {
    const c = this.chains(table).get(chain);
    const i = c?.findIndex((r) => r.join('\0') === rule.join('\0')) ?? -1;
    if (c === undefined || i < 0) {
      if (o?.missingOk) return;
      throw new KernelError('iptables: Bad rule (does a matching rule exist in that chain?).', { argv: ['iptables'], exitCode: 1, stderr: 'iptables: Bad rule (does a matching rule exist in that chain?).' });
    }
    c.splice(i, 1);
  }

  async flushChain(table: string, chain: string, o?: { missingOk?: boolean }): Promise<void> {
    const t = this.chains(table);
    if (!t.has(chain)) {
      if (o?.missingOk) return;
      this.chain(table, chain);
    }
    t.set(chain, []);
  }

  async deleteChain(table: string, chain: string, o?: { missingOk?: boolean }): Promise<void> {
    const t = this.chains(table);
    if (!t.has(chain)) {
      if (o?.missingOk) return;
      this.chain(table, chain);
    }
    t.delete(chain);
  }

  async fillChains(table: string, own: readonly OwnedChain[], unique: readonly ChainRule[]): Promise<void> {
    const t = this.chains(table);
    for (const c of own) t.set(c.chain, c.rules.map((r) => [...r]));
    for (const u of unique) await this.ensureRule(table, u.chain, u.rule);
  }

  async listRules(table: string, chain?: string): Promise<string[]> {
    const out: string[] = [];
    for (const [name, rules] of this.chains(table)) {
      if (chain !== undefined && name !== chain) continue;
      out.push(`-N ${name}`);
      for (const r of rules) out.push(`-A ${name} ${r.join(' ')}`);
    }
    return out;
  }
}
