// IP masquerade of a container's addresses through a chain of its own (upstream
// pkg/ip/ipmasq_iptables_linux.go, SetupIPMasq / TeardownIPMasq). The chain name and comment come from
// the caller (shared/cni/utils.ts formatChainName / formatComment), as upstream's callers pass them.
import type { Iptables } from '../kernel/iptables.js';
import { formatIP, formatNet, parseCIDR, type Family } from '../net/ip.js';

/** The iptables of one family, in the namespace the rules belong in. */
export type IptablesOf = (family: Family) => Iptables;

/** POSTROUTING's rule sending a container's traffic (from `source`) to its chain. */
function jumpRule(source: string, chain: string, comment: readonly string[]): string[] {
  return ['-s', source, '-j', chain, ...comment];
}

/**
 * upstream: for each address, NewChain, then AppendUnique of the chain's ACCEPT-own-subnet and
 * MASQUERADE-not-multicast rules and of the POSTROUTING jump (7 execs per address). The chain is this
 * container's alone, so per family it is created-or-flushed and filled with the rules those appends
 * leave, in their order (one iptables-restore per family for a new chain: Iptables.fillChains).
 */
export async function setupIPMasq(iptables: IptablesOf, addresses: readonly string[], chain: string, comment: string): Promise<void> {
  const c = ['-m', 'comment', '--comment', comment];
  for (const family of [4, 6] as const) {
    const rules: string[][] = [];
    const jumps: string[][] = [];
    const appendUnique = (list: string[][], rule: string[]) => {
      if (!list.some((r) => r.join('\0') === rule.join('\0'))) list.push(rule);
    };
    for (const address of addresses) {
      const { ip, net } = parseCIDR(address);
      if (ip.family !== family) continue;
      appendUnique(rules, ['-d', formatNet(net), '-j', 'ACCEPT', ...c]);
      appendUnique(rules, ['!', '-d', family === 4 ? '224.0.0.0/4' : 'ff00::/8', '-j', 'MASQUERADE', ...c]);
      appendUnique(jumps, jumpRule(formatIP(ip), chain, c));
    }
    if (rules.length === 0) continue;
    await iptables(family).fillChains('nat', [{ chain, rules }], jumps.map((rule) => ({ chain: 'POSTROUTING', rule })));
  }
}

/**
 * TeardownIPMasq; missing rules and chains count as success. Per family, the common case (the chain
 * and exactly the jumps setupIPMasq made) goes in one iptables-restore transaction; when that does not
 * apply (a jump gone, a jump of an older plugin's `-s <ip>/<prefix>` form still there) nothing changed
 * and upstream's steps run: both jump forms deleted, the chain flushed and deleted. When the
 * container's addresses are unknown (link already gone), the chain is still removed and POSTROUTING
 * rules jumping to it are found by listing (upstream leaks them in that case).
 */
export async function teardownIPMasq(iptables: IptablesOf, addresses: readonly string[], chain: string, comment: string): Promise<void> {
  const c = ['-m', 'comment', '--comment', comment];
  const parsed = addresses.map((a) => parseCIDR(a));
  const all: Family[] = addresses.length > 0 ? [...new Set(parsed.map((p) => p.ip.family))] : [4, 6];
  for (const f of all) {
    const ipt = iptables(f);
    const mine = parsed.filter((p) => p.ip.family === f);
    const jumps = [...new Set(mine.map((p) => formatIP(p.ip)))].map((ip) => ({ chain: 'POSTROUTING', rule: jumpRule(ip, chain, c) }));
    if (jumps.length > 0 && (await ipt.dropChains('nat', [chain], jumps))) continue;
    for (const { ip, net } of mine) {
      await ipt.deleteRule('nat', 'POSTROUTING', jumpRule(formatIP(ip), chain, c), { missingOk: true });
      await ipt.deleteRule('nat', 'POSTROUTING', jumpRule(`${formatIP(ip)}/${net.prefix}`, chain, c), { missingOk: true });
    }
    if (addresses.length === 0) {
      const rules = await ipt.listRules('nat', 'POSTROUTING').catch(() => [] as string[]);
      for (const line of rules) {
        const m = /^-A POSTROUTING -s (\S+) .*-j (\S+)$/.exec(line);
        if (m && m[2] === chain) await ipt.deleteRule('nat', 'POSTROUTING', jumpRule(m[1]!, chain, c), { missingOk: true });
      }
    }
    await ipt.deleteChain('nat', chain, { missingOk: true });
  }
}
