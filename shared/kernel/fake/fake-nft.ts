// FakeNft: in-memory nftables for unit tests.
import { ERRNO_TEXT, KernelError, type KernelErrorCode } from '../errors.js';
import { jumpTarget, type Nft, type NftChain, type NftCommand, type NftFamily, type NftRule, type NftTable, type NftTableContents } from '../nft.js';

interface FakeChain {
  def: NftChain;
  rules: NftRule[];
}

interface FakeTable {
  def: NftTable;
  nextHandle: number;
  chains: Map<string, FakeChain>;
}

/**
 * The failure of a transaction, worded as the exec adapter's message reads (the macspoofchk tests pin
 * it; `stderr` stays until they assert the code instead).
 */
function nftError(code: KernelErrorCode): KernelError {
  const stderr = `internal:0:0-0: Error: Could not process rule: ${ERRNO_TEXT[code]}\n`;
  return new KernelError(`nft -j: ${stderr.trim()}`, { code, stderr });
}

const CODE_OF_TEXT = new Map(Object.entries(ERRNO_TEXT).map(([code, text]) => [text, code as KernelErrorCode]));

/**
 * In-memory Nft for unit tests: tables → chains → rules with handles as nft numbers them (one counter
 * per table for chains and rules). A transaction applies all or nothing; errors are KernelErrors with
 * the errno nft gets (ENOENT for a missing table, chain, jump target or rule; EBUSY for deleting a
 * chain a rule still jumps to). `calls` counts Nft calls; `failNext(code)` injects a failure.
 */
export class FakeNft implements Nft {
  tables = new Map<string, FakeTable>();
  /** Nft calls made (apply with commands, listTable): the seam's cost, as tests state it */
  calls = 0;
  /** the same count under its old name (kept while tests move to `calls`) */
  execs = 0;
  private tableHandle = 0;
  private failure: KernelError | undefined;

  /** The next apply or listTable fails with `code` (or, while tests move, strerror's text of one). */
  failNext(code: KernelErrorCode | string = 'EPERM'): void {
    this.failure = nftError(code in ERRNO_TEXT ? (code as KernelErrorCode) : CODE_OF_TEXT.get(code) ?? 'UNKNOWN');
  }

  private takeFailure(): void {
    const f = this.failure;
    if (f !== undefined) {
      this.failure = undefined;
      throw f;
    }
  }

  async apply(cmds: readonly NftCommand[]): Promise<void> {
    if (cmds.length === 0) return;
    this.execs++;
    this.calls++;
    this.takeFailure();
    const tables = structuredClone(this.tables);
    let tableHandle = this.tableHandle;
    const table = (family: string, name: string): FakeTable => {
      const t = tables.get(`${family} ${name}`);
      if (t === undefined) throw nftError('ENOENT');
      return t;
    };
    const chain = (family: string, tname: string, name: string): FakeChain => {
      const c = table(family, tname).chains.get(name);
      if (c === undefined) throw nftError('ENOENT');
      return c;
    };
    for (const cmd of cmds) {
      if ('add' in cmd) {
        const o = cmd.add;
        if ('table' in o) {
          const key = `${o.table.family} ${o.table.name}`;
          if (!tables.has(key)) tables.set(key, { def: { family: o.table.family, name: o.table.name, handle: ++tableHandle }, nextHandle: 1, chains: new Map() });
        } else if ('chain' in o) {
          const t = table(o.chain.family, o.chain.table);
          if (!t.chains.has(o.chain.name)) t.chains.set(o.chain.name, { def: { ...o.chain, handle: t.nextHandle++ }, rules: [] });
        } else {
          const r = o.rule;
          const t = table(r.family, r.table);
          const c = chain(r.family, r.table, r.chain);
          for (const s of r.expr) {
            const target = jumpTarget(s);
            if (target !== undefined && !t.chains.has(target)) throw nftError('ENOENT');
          }
          c.rules.push({ family: r.family, table: r.table, chain: r.chain, handle: t.nextHandle++, ...(r.comment !== undefined ? { comment: r.comment } : {}), expr: structuredClone(r.expr) });
        }
      } else if ('flush' in cmd) {
        const o = cmd.flush;
        if ('table' in o) for (const c of table(o.table.family, o.table.name).chains.values()) c.rules = [];
        else chain(o.chain.family, o.chain.table, o.chain.name).rules = [];
      } else {
        const o = cmd.delete;
        if ('table' in o) {
          table(o.table.family, o.table.name);
          tables.delete(`${o.table.family} ${o.table.name}`);
        } else if ('chain' in o) {
          const t = table(o.chain.family, o.chain.table);
          chain(o.chain.family, o.chain.table, o.chain.name);
          for (const [name, other] of t.chains) {
            if (name !== o.chain.name && other.rules.some((r) => r.expr.some((s) => jumpTarget(s) === o.chain.name))) throw nftError('EBUSY');
          }
          t.chains.delete(o.chain.name);
        } else {
          const c = chain(o.rule.family, o.rule.table, o.rule.chain);
          const i = c.rules.findIndex((r) => r.handle === o.rule.handle);
          if (i < 0) throw nftError('ENOENT');
          c.rules.splice(i, 1);
        }
      }
    }
    this.tables = tables;
    this.tableHandle = tableHandle;
  }

  async listTable(family: NftFamily, name: string): Promise<NftTableContents | undefined> {
    this.execs++;
    this.calls++;
    this.takeFailure();
    const t = this.tables.get(`${family} ${name}`);
    if (t === undefined) return undefined;
    const chains = [...t.chains.values()];
    return structuredClone({ table: t.def, chains: chains.map((c) => c.def), rules: chains.flatMap((c) => c.rules) });
  }
}
