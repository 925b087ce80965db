// nftables behind a tiny interface (upstream: go-nft's ApplyConfig / ReadConfig, as the bridge's
// pkg/link/spoofcheck.go uses them), and the bridge's MAC spoof check on top of it.
//
// Design notes
// - Commands are objects of nft's JSON schema (libnftables-json(5)), the input go-nft writes too, so
//   names made of container IDs need no quoting. `apply` sends them all as ONE `nft -j '<json>'`: one
//   exec, one atomic transaction (all or nothing). Not `nft -j -f -`: nft 1.0.6 opens /dev/stdin,
//   which fails with ENXIO on the socket Node gives a child as stdin (go-nft writes a temp file).
//   The JSON of one attachment is ~1 KiB, far below the 128 KiB limit of one argument.
// - `listTable` is `nft -j list table <family> <name>`; a missing table reads as `undefined`.
// - Run inside a network namespace with `nsenter --net=<path>`, like iptables.ts. The exec comes from
//   iproute.ts (node:child_process only, no execa): plugins run this on their hot start path.
// - The spoof check (cni.md §3.2 step 6, §3.6 step 5), refID = `<containerID>-<ifname>`:
//     table bridge nat {
//       chain PREROUTING { type filter hook prerouting priority -300; policy accept;
//         iifname "<hostveth>" jump cni-br-iface-<refID> comment "macspoofchk-<refID>" }
//       chain cni-br-iface-<refID> { jump cni-br-iface-<refID>-mac comment "macspoofchk-<refID>" }
//       chain cni-br-iface-<refID>-mac {
//         ether saddr <container MAC> return comment "macspoofchk-<refID>"
//         drop comment "macspoofchk-<refID>" } }
//   Setup is one transaction (upstream: two, the first only declaring the table and chains): add the
//   table and the three chains (kept if present), flush our two chains, add the four rules. As
//   upstream, a repeated setup adds one more PREROUTING jump; teardown removes them all.
//   Teardown needs the handles of our PREROUTING rules, so it is a read plus one transaction that
//   deletes those rules and whichever of our two chains exist (upstream: one read, then two
//   transactions). Nothing of ours there → the read only, and no error. The read has no side
//   effects: a caller may start it early, beside other work (the bridge's DEL does).
import { isNotFound, KernelError } from './errors.js';
import { spawnExec, toolArgv } from './iproute.js';
import type { Exec } from './iproute.js';

export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';

export interface NftTable {
  family: NftFamily;
  name: string;
  handle?: number;
}

export interface NftChain {
  family: NftFamily;
  table: string;
  name: string;
  handle?: number;
  /** base chains only: `filter`, `nat`, `route` */
  type?: string;
  hook?: string;
  prio?: number;
  policy?: string;
}

/** A statement of libnftables-json(5), e.g. `{ drop: null }`, `{ jump: { target: 'x' } }`, `{ match: {...} }`. */
export type NftStatement = Record<string, unknown>;

export interface NftRule {
  family: NftFamily;
  table: string;
  chain: string;
  handle?: number;
  expr: NftStatement[];
  comment?: string;
}

export type NftObject = { table: NftTable } | { chain: NftChain } | { rule: NftRule };

/** One command of a transaction. A rule to delete is named by family, table, chain and handle. */
export type NftCommand =
  | { add: NftObject }
  | { flush: { table: NftTable } | { chain: NftChain } }
  | { delete: { table: NftTable } | { chain: NftChain } | { rule: Omit<NftRule, 'expr'> & { handle: number } } };

/** A table as read: its chains and its rules (with handles), in nft's order. */
export interface NftTableContents {
  table: NftTable;
  chains: NftChain[];
  rules: NftRule[];
}

export interface Nft {
  /** The commands as ONE atomic transaction (one `nft -j '<json>'`). No commands: no exec. */
  apply(cmds: readonly NftCommand[]): Promise<void>;
  /** `nft -j list table`: undefined when the table does not exist. */
  listTable(family: NftFamily, name: string): Promise<NftTableContents | undefined>;
}

/** nftables in this process's network namespace, or inside the one at `netns`. */
export function createNft(o?: { netns?: string; exec?: Exec }): Nft {
  return new ExecNft(o?.netns, o?.exec ?? spawnExec);
}

class ExecNft implements Nft {
  constructor(
    private readonly netns: string | undefined,
    private readonly exec: Exec,
  ) {}

  private run(args: readonly string[]): Promise<string> {
    return this.exec(toolArgv(this.netns, 'nft', args));
  }

  async apply(cmds: readonly NftCommand[]): Promise<void> {
    if (cmds.length === 0) return;
    try {
      await this.run(['-j', JSON.stringify({ nftables: cmds })]);
    } catch (err) {
      // the message starts with the whole argv: name the transaction by its size instead
      if (!(err instanceof KernelError)) throw err;
      const argv = err.argv.join(' ');
      const reason = err.message.startsWith(`${argv}: `) ? err.message.slice(argv.length + 2) : err.message;
      throw new KernelError(`nft -j <${cmds.length} commands>: ${reason}`, { argv: err.argv, exitCode: err.exitCode, stderr: err.stderr, cause: err });
    }
  }

  async listTable(family: NftFamily, name: string): Promise<NftTableContents | undefined> {
    let out: string;
    try {
      out = await this.run(['-j', 'list', 'table', family, name]);
    } catch (err) {
      if (isNotFound(err)) return undefined; // "Error: No such file or directory"
      throw err;
    }
    return parseTableListing(out, family, name);
  }
}

/** The output of `nft -j list table`. */
export function parseTableListing(out: string, family: NftFamily, name: string): NftTableContents {
  const doc = JSON.parse(out) as { nftables?: Array<Record<string, unknown>> };
  const res: NftTableContents = { table: { family, name }, chains: [], rules: [] };
  for (const item of doc.nftables ?? []) {
    if ('table' in item) res.table = item.table as NftTable;
    else if ('chain' in item) res.chains.push(item.chain as NftChain);
    else if ('rule' in item) res.rules.push(item.rule as NftRule);
  }
  return res;
}

// ---------------------------------------------------------------------------------------------------
// the MAC spoof check (pkg/link/spoofcheck.go)

const NAT_TABLE = 'nat';
const PREROUTING = 'PREROUTING';

/** The chain names and the rule comment of one attachment. */
export function spoofCheckNames(refID: string): { ifaceChain: string; macChain: string; comment: string } {
  const ifaceChain = `cni-br-iface-${refID}`;
  return { ifaceChain, macChain: `${ifaceChain}-mac`, comment: `macspoofchk-${refID}` };
}

/** The one transaction of the setup: frames entering from `iface` pass only with source MAC `mac`. */
export function spoofCheckSetup(iface: string, mac: string, refID: string): NftCommand[] {
  const { ifaceChain, macChain, comment } = spoofCheckNames(refID);
  const t = { family: 'bridge', table: NAT_TABLE } as const;
  const rule = (chain: string, expr: NftStatement[]): NftCommand => ({ add: { rule: { ...t, chain, expr, comment } } });
  return [
    { add: { table: { family: 'bridge', name: NAT_TABLE } } },
    { add: { chain: { ...t, name: PREROUTING, type: 'filter', hook: 'prerouting', prio: -300, policy: 'accept' } } },
    { add: { chain: { ...t, name: ifaceChain } } },
    { add: { chain: { ...t, name: macChain } } },
    { flush: { chain: { ...t, name: ifaceChain } } },
    { flush: { chain: { ...t, name: macChain } } },
    rule(PREROUTING, [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: iface } }, { jump: { target: ifaceChain } }]),
    rule(ifaceChain, [{ jump: { target: macChain } }]),
    rule(macChain, [{ match: { op: '==', left: { payload: { protocol: 'ether', field: 'saddr' } }, right: mac } }, { return: null }]),
    rule(macChain, [{ drop: null }]),
  ];
}

/**
 * The teardown transaction for what `table` (bridge nat as read) holds of `refID`: every rule outside
 * our chains that carries our comment or jumps to our chains (upstream: the PREROUTING rules with our
 * comment), then our chains that exist. Empty when nothing of ours is there.
 */
export function spoofCheckTeardown(table: NftTableContents | undefined, refID: string): NftCommand[] {
  if (table === undefined) return [];
  const { ifaceChain, macChain, comment } = spoofCheckNames(refID);
  const ours = new Set([ifaceChain, macChain]);
  const cmds: NftCommand[] = [];
  for (const r of table.rules) {
    if (ours.has(r.chain) || r.handle === undefined) continue;
    if (r.comment === comment || (r.expr ?? []).some((s) => ours.has(jumpTarget(s) ?? ''))) {
      cmds.push({ delete: { rule: { family: r.family, table: r.table, chain: r.chain, handle: r.handle } } });
    }
  }
  for (const name of [ifaceChain, macChain]) {
    if (table.chains.some((c) => c.name === name)) cmds.push({ delete: { chain: { family: 'bridge', table: NAT_TABLE, name } } });
  }
  return cmds;
}

function jumpTarget(s: NftStatement): string | undefined {
  const v = (s.jump ?? s.goto) as { target?: unknown } | undefined;
  return typeof v?.target === 'string' ? v.target : undefined;
}

/** SpoofChecker: the nftables rules that drop frames from a bridge port whose source MAC is not the container's. */
export class SpoofChecker {
  constructor(
    private readonly nft: Nft,
    readonly refID: string,
  ) {}

  /** One exec. Error: `failed to setup spoof-check: <e>`. */
  async setup(iface: string, mac: string): Promise<void> {
    try {
      await this.nft.apply(spoofCheckSetup(iface, mac, this.refID));
    } catch (err) {
      throw new Error(`failed to setup spoof-check: ${messageOf(err)}`, { cause: err });
    }
  }

  /** The read a teardown acts on (`table bridge nat`); it has no side effects, so it may run early. */
  read(): Promise<NftTableContents | undefined> {
    return this.nft.listTable('bridge', NAT_TABLE);
  }

  /**
   * One exec if anything of ours is there, after a read (`current`: one done earlier with read()).
   * Error: `failed to teardown spoof-check: <e>`.
   */
  async teardown(current?: Promise<NftTableContents | undefined>): Promise<void> {
    try {
      await this.nft.apply(spoofCheckTeardown(await (current ?? this.read()), this.refID));
    } catch (err) {
      throw new Error(`failed to teardown spoof-check: ${messageOf(err)}`, { cause: err });
    }
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------------
// FakeNft

interface FakeChain {
  def: NftChain;
  rules: NftRule[];
}

interface FakeTable {
  def: NftTable;
  nextHandle: number;
  chains: Map<string, FakeChain>;
}

function nftError(reason: string): KernelError {
  const stderr = `internal:0:0-0: Error: Could not process rule: ${reason}\n`;
  return new KernelError(`nft -j: ${stderr.trim()}`, { argv: ['nft', '-j'], exitCode: 1, stderr });
}

/**
 * In-memory Nft for unit tests: tables → chains → rules with handles as nft numbers them (one counter
 * per table for chains and rules). A transaction applies all or nothing; errors are KernelErrors with
 * nft's words (ENOENT for a missing table, chain, jump target or rule; EBUSY for deleting a chain a
 * rule still jumps to). `execs` counts what would have been execs; `failNext` injects a failure.
 */
export class FakeNft implements Nft {
  tables = new Map<string, FakeTable>();
  execs = 0;
  private tableHandle = 0;
  private failure: KernelError | undefined;

  /** The next apply or listTable fails with `reason`, e.g. 'Operation not permitted'. */
  failNext(reason = 'Operation not permitted'): void {
    this.failure = nftError(reason);
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
    this.takeFailure();
    const tables = structuredClone(this.tables);
    let tableHandle = this.tableHandle;
    const table = (family: string, name: string): FakeTable => {
      const t = tables.get(`${family} ${name}`);
      if (t === undefined) throw nftError('No such file or directory');
      return t;
    };
    const chain = (family: string, tname: string, name: string): FakeChain => {
      const c = table(family, tname).chains.get(name);
      if (c === undefined) throw nftError('No such file or directory');
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
            if (target !== undefined && !t.chains.has(target)) throw nftError('No such file or directory');
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
            if (name !== o.chain.name && other.rules.some((r) => r.expr.some((s) => jumpTarget(s) === o.chain.name))) throw nftError('Device or resource busy');
          }
          t.chains.delete(o.chain.name);
        } else {
          const c = chain(o.rule.family, o.rule.table, o.rule.chain);
          const i = c.rules.findIndex((r) => r.handle === o.rule.handle);
          if (i < 0) throw nftError('No such file or directory');
          c.rules.splice(i, 1);
        }
      }
    }
    this.tables = tables;
    this.tableHandle = tableHandle;
  }

  async listTable(family: NftFamily, name: string): Promise<NftTableContents | undefined> {
    this.execs++;
    this.takeFailure();
    const t = this.tables.get(`${family} ${name}`);
    if (t === undefined) return undefined;
    const chains = [...t.chains.values()];
    return structuredClone({ table: t.def, chains: chains.map((c) => c.def), rules: chains.flatMap((c) => c.rules) });
  }
}
