// Iptables over the iptables / ip6tables / iptables-restore binaries (go-iptables' behaviour), inside a
// network namespace through nsenter when asked. `--wait` is always passed, as go-iptables does (not to
// `--version`).
import type { Family } from '../../net/ip.js';
import { isExists, isNotFound, KernelError } from '../errors.js';
import { dropChainsScript, fillChainsScript, jumpsTo, restoreScript, versionHasRandomFully, type ChainRule, type Iptables, type OwnedChain, type RestoreRule } from '../iptables.js';
import { spawnExec, ToolRunner, type Exec } from './exec.js';

/** iptables (family 4) or ip6tables (family 6), optionally inside the network namespace at `netns`. */
export function createIptables(family: Family, o?: { netns?: string; exec?: Exec }): Iptables {
  return new ExecIptables(family, new ToolRunner(o?.netns, o?.exec ?? spawnExec));
}

class ExecIptables implements Iptables {
  constructor(
    readonly family: Family,
    private readonly runner: ToolRunner,
  ) {}

  private randomFully: Promise<boolean> | undefined;

  private run(args: readonly string[], tool: 'iptables' | 'iptables-restore' = 'iptables', input?: string, wait = true): Promise<string> {
    const bin = this.family === 6 ? tool.replace('ip', 'ip6') : tool;
    return this.runner.run(bin, [...args, ...(wait ? ['--wait'] : [])], input);
  }

  async fillChains(table: string, own: readonly OwnedChain[], unique: readonly ChainRule[]): Promise<void> {
    const chains = own.map((c) => c.chain);
    if (unique.every((u) => jumpsTo(u.rule, chains))) {
      try {
        await this.run(['--noflush'], 'iptables-restore', fillChainsScript(table, own, unique, { create: true }));
        return;
      } catch {
        // a chain exists already (a repeated ADD), or anything else: the checked way below says what
      }
    }
    const append: ChainRule[] = [];
    for (const u of unique) if (!(await this.hasRule(table, u.chain, u.rule))) append.push(u);
    await this.run(['--noflush'], 'iptables-restore', fillChainsScript(table, own, append));
  }

  async dropChains(table: string, chains: readonly string[], jumps: readonly ChainRule[]): Promise<boolean> {
    try {
      await this.run(['--noflush'], 'iptables-restore', dropChainsScript(table, chains, jumps));
      return true;
    } catch {
      // iptables-restore exits 1 (a -D found no rule) or 4 (-X of a chain still referenced) having
      // committed nothing. Whatever failed, the step-by-step way runs next and reports a real error
      // (no binary, no permission) itself
      return false;
    }
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

