// nftables behind a tiny interface (upstream: go-nft's ApplyConfig / ReadConfig, as the bridge's
// pkg/link/spoofcheck.go uses them; the spoof check itself is shared/link/spoof-check.ts).
//
// - Commands are objects of nft's JSON schema (libnftables-json(5)), the input go-nft writes too, so
//   names made of container IDs need no quoting. `apply` is ONE atomic transaction (all or nothing).
// - `listTable` is `nft -j list table <family> <name>`; a missing table reads as `undefined`.
// - The exec adapter is iproute2/nft.ts (inside a network namespace through nsenter, like iptables),
//   the fake fake/fake-nft.ts.

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
  /** `nft -j list table`: undefined when there is no such table. */
  listTable(family: NftFamily, name: string): Promise<NftTableContents | undefined>;
}

// Moved (issue 10); these re-exports live until every importer has switched.

/** The chain a `jump`/`goto` statement targets. */
export function jumpTarget(s: NftStatement): string | undefined {
  const v = (s.jump ?? s.goto) as { target?: unknown } | undefined;
  return typeof v?.target === 'string' ? v.target : undefined;
}
