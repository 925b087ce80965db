// iptables behind a tiny interface (upstream: go-iptables as used by pkg/ip/ipmasq and flannel's
// TrafficManager), and the pure iptables-restore input builders. `ensureRule` checks with -C before
// appending (go-iptables AppendUnique); deletes take `missingOk` and treat a missing chain or rule
// (isNotFound) as success. The exec adapter is iproute2/iptables.ts, the fake fake/fake-iptables.ts.
//
// Rules are argv arrays after the chain name, e.g. ['-s', '10.0.0.2', '-j', 'CNI-x', '-m', 'comment',
// '--comment', 'name: "cbr0" id: "c1"']. The table is per call. `--wait` is always passed, as go-iptables does
// (not to `--version`).
//
// For flanneld's traffic manager (pkg/trafficmngr/iptables): `restore` pipes ordered -A/-I/-D lines to
// `iptables-restore --noflush` as one transaction (ipTablesBootstrap / teardownIPTables), `clearChain`
// and `chainExists` are go-iptables' ClearChain / ChainExists, `hasRandomFully` its HasRandomFully.
import type { Family } from '../net/ip.js';

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
   * filled with exactly `rules`; then each `unique` rule is appended unless present. The end state of
   * ensureChain + ensureRule for a chain that holds only our rules. When every unique rule jumps to
   * an owned chain and none of those exists yet (a new container), ONE `iptables-restore`: no rule
   * can jump to a chain that does not exist, so there is nothing to check (its `-N` lines fail the
   * whole transaction, changing nothing, when a chain does exist). Otherwise two execs: `-C` per
   * unique rule, one `iptables-restore --noflush`.
   */
  fillChains(table: string, own: readonly OwnedChain[], unique: readonly ChainRule[]): Promise<void>;
  /**
   * Removes chains owned whole and the rules jumping to them in ONE `iptables-restore --noflush`
   * transaction (each chain flushed, each jump deleted, each chain deleted): one exec where the
   * step-by-step way takes one per -D/-F/-X. All or nothing: resolves false, changing nothing, when
   * the transaction does not apply (a jump is not there, another rule still jumps to a chain), for
   * the caller to fall back to the step-by-step way, which tolerates what is missing.
   */
  dropChains(table: string, chains: readonly string[], jumps: readonly ChainRule[]): Promise<boolean>;
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

/** Whether `rule` jumps (-j) to one of `chains`. */
export function jumpsTo(rule: readonly string[], chains: readonly string[]): boolean {
  const j = rule.indexOf('-j');
  return j >= 0 && chains.includes(rule[j + 1] ?? '');
}

/**
 * The iptables-restore input of fillChains: each owned chain declared (`:c`, which creates or
 * flushes it) or, with `create`, created (`-N c`, which fails the whole transaction when it exists);
 * then filled, then the `append` rules appended.
 */
export function fillChainsScript(table: string, own: readonly OwnedChain[], append: readonly ChainRule[], o: { create?: boolean } = {}): string {
  const lines = [`*${table}`];
  for (const c of own) lines.push(o.create ? `-N ${c.chain}` : `:${c.chain} - [0:0]`);
  for (const c of own) for (const r of c.rules) lines.push(`-A ${c.chain} ${r.map(restoreArg).join(' ')}`);
  for (const a of append) lines.push(`-A ${a.chain} ${a.rule.map(restoreArg).join(' ')}`);
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/**
 * The iptables-restore input of dropChains: each chain declared (which flushes it), each jump
 * deleted, then each chain deleted (it must be empty and unreferenced by then).
 */
export function dropChainsScript(table: string, chains: readonly string[], jumps: readonly ChainRule[]): string {
  const lines = [`*${table}`];
  for (const c of chains) lines.push(`:${c} - [0:0]`);
  for (const j of jumps) lines.push(`-D ${j.chain} ${j.rule.map(restoreArg).join(' ')}`);
  for (const c of chains) lines.push(`-X ${c}`);
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

// Moved (issue 10); these re-exports live until every importer has switched.
