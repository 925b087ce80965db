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
// - The exec adapter is iproute2/nft.ts (inside a network namespace through nsenter, like iptables),
//   the fake fake/fake-nft.ts.
// - The spoof check (upstream pkg/link/spoofcheck.go), refID = `<containerID>-<ifname>`:
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

// Moved (issue 10); these re-exports live until every importer has switched.
export { createNft, parseTableListing } from './iproute2/nft.js';
export { FakeNft } from './fake/fake-nft.js';

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

export function jumpTarget(s: NftStatement): string | undefined {
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
