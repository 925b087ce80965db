// In-memory Iptables for unit tests: state per table → chain → rules. Failures are KernelErrors with the
// errno in `code` (ENOENT for a missing chain or rule), as the exec adapter reports them.
import type { Family } from '../../net/ip.js';
import { KernelError, type KernelErrorCode } from '../errors.js';
import { dropChainsScript, jumpsTo, restoreScript, type ChainRule, type Iptables, type OwnedChain, type RestoreRule } from '../iptables.js';

const BUILTIN_CHAINS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

/** In-memory Iptables for unit tests: state per table → chain → rules (argv joined by NUL). */
export class FakeIptables implements Iptables {
  readonly tables = new Map<string, Map<string, string[][]>>();
  /** every restore() input, as restoreScript wrote it */
  readonly restores: string[] = [];
  /** what hasRandomFully() answers */
  randomFully = true;
  private restoreFailure: { why: string; code: KernelErrorCode } | undefined;
  constructor(readonly family: Family = 4) {}

  /** The next restore() fails (changing nothing), as iptables-restore does on a bad line. */
  failNextRestore(why = 'iptables-restore: line 2 failed', code: KernelErrorCode = 'EINVAL'): void {
    this.restoreFailure = { why, code };
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
    const fail = (why: string, code: KernelErrorCode): never => {
      throw new KernelError(`iptables-restore --noflush: ${why}`, { code });
    };
    if (this.restoreFailure !== undefined) {
      const { why, code } = this.restoreFailure;
      this.restoreFailure = undefined;
      fail(why, code);
    }
    // all or nothing: work on a copy, swap it in at COMMIT
    const copy = new Map([...this.chains(table)].map(([k, v]) => [k, v.map((r) => [...r])]));
    lines.forEach((l, i) => {
      const c = copy.get(l.chain);
      if (c === undefined) return fail(`line ${i + 2}: no chain ${l.chain}`, 'ENOENT');
      const key = l.rule.join('\0');
      if (l.action === '-D') {
        const at = c.findIndex((r) => r.join('\0') === key);
        if (at < 0) return fail(`line ${i + 2}: no such rule in ${l.chain}`, 'ENOENT');
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
      throw new KernelError(`iptables -t ${table}: no chain ${chain}`, { code: 'ENOENT' });
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
      throw new KernelError(`iptables -t ${table} -D ${chain}: no such rule`, { code: 'ENOENT' });
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

  /** every dropChains() call, as dropChainsScript wrote it (applied or not) */
  readonly drops: string[] = [];

  async dropChains(table: string, chains: readonly string[], jumps: readonly ChainRule[]): Promise<boolean> {
    this.drops.push(dropChainsScript(table, chains, jumps));
    const copy = new Map([...this.chains(table)].map(([k, v]) => [k, v.map((r) => [...r])]));
    for (const c of chains) copy.set(c, []);
    for (const j of jumps) {
      const rules = copy.get(j.chain);
      const at = rules?.findIndex((r) => r.join('\0') === j.rule.join('\0')) ?? -1;
      if (rules === undefined || at < 0) return false;
      rules.splice(at, 1);
    }
    for (const c of chains) {
      if ([...copy.values()].some((rules) => rules.some((r) => jumpsTo(r, [c])))) return false;
      copy.delete(c);
    }
    this.tables.set(table, copy);
    return true;
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
