// nftables mode of the traffic manager (flannel's pkg/trafficmngr/nftables/nftables.go), selected by
// `"EnableNFTables": true` in the network config.
//
// Design notes
// - Two tables, `ip flannel-ipv4` and `ip6 flannel-ipv6`, both created by init whatever the families
//   in use (as Go). Each chain is added (kept if present), flushed and refilled in ONE nft transaction
//   (shared/kernel/nft.ts, libnftables-json), so there is nothing to recycle and no resync loop.
// - The masq rules are Go's, including its third `return` (`saddr != POD daddr NET`, where iptables
//   mode has `! -s NET -d POD`): host→pod traffic is not masqueraded in this mode, as in Go.
// - fully-random: Go dry-runs a test chain to learn whether the kernel has it. The nft JSON interface
//   has no dry run, so the masq transaction is tried with fully-random and, when nft refuses it, once more
//   without (a refused transaction changes nothing).
// - Table and chain comments are sent as Go sends them; nft 1.0.6 does not keep them from JSON.
// - Nothing is removed on exit. cleanUp (run in iptables mode) deletes the two tables if present.
import type { Family, IPNet } from '../../shared/net/ip.js';
import { formatIP, netIP } from '../../shared/net/ip.js';
import { KernelError } from '../../shared/kernel/errors.js';
import type { Nft, NftChain, NftCommand, NftFamily, NftStatement, NftTable } from '../../shared/kernel/nft.js';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/log.js';
import type { ForwardParams, MasqParams, TrafficManager } from './traffic-manager.js';

export const IPV4_TABLE = 'flannel-ipv4';
export const IPV6_TABLE = 'flannel-ipv6';
export const POSTRTG_NFT_CHAIN = 'postrtg';
export const FORWARD_NFT_CHAIN = 'forward';
/** kube-proxy's mark, matched exactly (iptables mode masks it: 0x4000/0x4000) */
const KUBE_PROXY_MARK = 0x4000;
/** knftables' SNATPriority (srcnat) and FilterPriority (filter) */
const SRCNAT_PRIO = 100;
const FILTER_PRIO = 0;

const NFT_FAMILY: Record<Family, NftFamily> = { 4: 'ip', 6: 'ip6' };
const TABLE: Record<Family, string> = { 4: IPV4_TABLE, 6: IPV6_TABLE };
const MULTICAST: Record<Family, IPNet> = {
  4: { family: 4, base: 0xe0000000n, prefix: 4 },
  6: { family: 6, base: 0xffn << 120n, prefix: 8 },
};

function prefix(n: IPNet): unknown {
  return { prefix: { addr: formatIP(netIP(n)), len: n.prefix } };
}

function addrMatch(family: Family, field: 'saddr' | 'daddr', op: '==' | '!=', n: IPNet): NftStatement {
  return { match: { op, left: { payload: { protocol: NFT_FAMILY[family], field } }, right: prefix(n) } };
}

function tableOf(family: Family): NftTable {
  // `comment` is part of nft's JSON schema, not of our NftTable type
  return { family: NFT_FAMILY[family], name: TABLE[family], comment: `rules for ${TABLE[family]}` } as NftTable;
}

function baseChain(family: Family, name: string, type: string, hook: string, prio: number, comment: string): NftChain {
  return { family: NFT_FAMILY[family], table: TABLE[family], name, type, hook, prio, policy: 'accept', comment } as NftChain;
}

/** The masq transaction of one family: add + flush postrtg, then Go's six rules. */
export function masqCommands(family: Family, network: IPNet, podSubnet: IPNet, fullyRandom: boolean): NftCommand[] {
  const t = { family: NFT_FAMILY[family], table: TABLE[family], chain: POSTRTG_NFT_CHAIN };
  const masq: NftStatement = { masquerade: fullyRandom ? { flags: 'fully-random' } : null };
  const rule = (expr: NftStatement[]): NftCommand => ({ add: { rule: { ...t, expr } } });
  const chain = baseChain(family, POSTRTG_NFT_CHAIN, 'nat', 'postrouting', SRCNAT_PRIO, 'chain to manage traffic masquerading by flannel');
  return [
    { add: { chain } },
    { flush: { chain: { family: chain.family, table: chain.table, name: chain.name } } },
    rule([{ match: { op: '==', left: { meta: { key: 'mark' } }, right: KUBE_PROXY_MARK } }, { return: null }]),
    rule([addrMatch(family, 'saddr', '==', podSubnet), addrMatch(family, 'daddr', '==', network), { return: null }]),
    rule([addrMatch(family, 'saddr', '==', network), addrMatch(family, 'daddr', '==', podSubnet), { return: null }]),
    rule([addrMatch(family, 'saddr', '!=', podSubnet), addrMatch(family, 'daddr', '==', network), { return: null }]),
    rule([addrMatch(family, 'saddr', '==', network), addrMatch(family, 'daddr', '!=', MULTICAST[family]), masq]),
    rule([addrMatch(family, 'saddr', '!=', network), addrMatch(family, 'daddr', '==', network), masq]),
  ];
}

/** The forward transaction of one family: add + flush forward, accept from and to the Network. */
export function forwardCommands(family: Family, network: IPNet): NftCommand[] {
  const t = { family: NFT_FAMILY[family], table: TABLE[family], chain: FORWARD_NFT_CHAIN };
  const chain = baseChain(family, FORWARD_NFT_CHAIN, 'filter', 'forward', FILTER_PRIO, 'chain to accept flannel traffic');
  return [
    { add: { chain } },
    { flush: { chain: { family: chain.family, table: chain.table, name: chain.name } } },
    { add: { rule: { ...t, expr: [addrMatch(family, 'saddr', '==', network), { accept: null }] } } },
    { add: { rule: { ...t, expr: [addrMatch(family, 'daddr', '==', network), { accept: null }] } } },
  ];
}

/** The nft binary could not be run at all (not installed): nothing of ours can be there. */
function toolMissing(err: unknown): boolean {
  return err instanceof KernelError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export class NFTablesManager implements TrafficManager {
  constructor(private readonly d: { nft: Nft; log: Logger }) {}

  async init(): Promise<void> {
    this.d.log.info('Starting flannel in nftables mode...');
    for (const family of [4, 6] as const) {
      try {
        await this.d.nft.apply([{ add: { table: tableOf(family) } }]);
      } catch (err) {
        throw new Error(`nftables: couldn't initialise table ${TABLE[family]}: ${errorMessage(err)}`, { cause: err });
      }
    }
  }

  async cleanUp(): Promise<void> {
    for (const family of [4, 6] as const) {
      try {
        if ((await this.d.nft.listTable(NFT_FAMILY[family], TABLE[family])) === undefined) continue;
        await this.d.nft.apply([{ delete: { table: { family: NFT_FAMILY[family], name: TABLE[family] } } }]);
      } catch (err) {
        if (toolMissing(err)) return;
        throw new Error(`nftables${family === 6 ? ' (ipv6)' : ''}: couldn't delete table: ${errorMessage(err)}`, { cause: err });
      }
    }
  }

  async setupAndEnsureMasqRules(_signal: AbortSignal, p: MasqParams): Promise<void> {
    const families: Array<{ family: Family; net?: IPNet; sn?: IPNet }> = [
      { family: 4, net: p.network, sn: p.subnet },
      { family: 6, net: p.ipv6Network, sn: p.ipv6Subnet },
    ];
    for (const { family, net, sn } of families) {
      if (net === undefined || sn === undefined) continue;
      this.d.log.info(`nftables: setting up masking rules (ipv${family})`);
      try {
        if (p.randomFullyDisable) {
          await this.d.nft.apply(masqCommands(family, net, sn, false));
        } else {
          try {
            await this.d.nft.apply(masqCommands(family, net, sn, true));
          } catch (err) {
            if (toolMissing(err)) throw err;
            this.d.log.warn(`nftables: random fully unsupported (${errorMessage(err)})`);
            await this.d.nft.apply(masqCommands(family, net, sn, false));
          }
        }
      } catch (err) {
        throw new Error(`nftables: couldn't setup masq rules: ${errorMessage(err)}`, { cause: err });
      }
    }
  }

  async setupAndEnsureForwardRules(_signal: AbortSignal, p: ForwardParams): Promise<void> {
    if (p.network !== undefined) {
      this.d.log.info('Changing default FORWARD chain policy to ACCEPT');
      await this.d.nft.apply(forwardCommands(4, p.network)).catch((err: unknown) => {
        this.d.log.error(`nftables: couldn't setup forward rules: ${errorMessage(err)}`);
      });
    }
    if (p.ipv6Network !== undefined) {
      this.d.log.info('Changing default FORWARD chain policy to ACCEPT (ipv6)');
      await this.d.nft.apply(forwardCommands(6, p.ipv6Network)).catch((err: unknown) => {
        this.d.log.error(`nftables: couldn't setup forward rules (ipv6): ${errorMessage(err)}`);
      });
    }
  }

  async done(): Promise<void> {}
}
