// loopback (plugins/main/loopback): brings `lo` up in CNI_NETNS on ADD and down on DEL; CHECK wants it up.
// CNI_IFNAME is ignored. The ADD result is built in the 1.0 shape with the config's cniVersion and, as
// Go's convert short-circuits when from == to, printed WITHOUT conversion: a 0.3.1 config gets
// 1.0-shaped `ips` (no `version`). Only an absent cniVersion converts (to the 0.1.0 `ip4`/`ip6` shape).
// With a prevResult, that result is passed through at the config's version.
import { marshalIndent } from '../../shared/go/json.js';
import { type CmdArgs, type IPConfig, PreformattedResult, type Result } from '../../shared/cni/types.js';
import { formatResult, parseResult } from '../../shared/cni/version.js';
import type { Kernel } from '../../shared/kernel/kernel.js';
import { parseCIDR } from '../../shared/net/ip.js';
import { NetnsNotExistError, type StatfsType, checkNetnsPath } from '../../shared/ns/netns.js';
import { parseNetConf } from './netconf.js';

export const ABOUT = 'CNI loopback plugin version unknown';
const LO = 'lo';

export interface LoopbackDeps {
  kernel: Kernel;
  statfsType: StatfsType;
}

const isLoopback = (ip: string): boolean => {
  const { ip: addr } = parseCIDR(ip);
  return addr.family === 4 ? addr.value >> 24n === 127n : addr.value === 1n;
};

export async function cmdAdd(args: CmdArgs, deps: LoopbackDeps): Promise<Result | PreformattedResult> {
  const conf = parseNetConf(args.stdinData);
  checkNetnsPath(args.netns, deps.statfsType);
  const k = deps.kernel.inNetns(args.netns);
  await k.setLinkUp(LO);
  const addrs = await k.listAddrs({ dev: LO });
  let v4: string | undefined;
  let v6: string | undefined;
  for (const family of [4, 6] as const) {
    const list = addrs.filter((a) => a.family === family);
    for (const a of list) {
      if (!isLoopback(a.cidr)) throw new Error(`loopback interface found with non-loopback address "${a.cidr.split('/')[0]}"`);
    }
    if (family === 4) v4 = list[0]?.cidr;
    else v6 = list[0]?.cidr;
  }

  const version = conf.cniVersion === '' ? '0.1.0' : conf.cniVersion;
  if (conf.prevResult !== undefined) return new PreformattedResult(formatResult(parseResult(conf.prevResult, version), version));

  const ips: IPConfig[] = [];
  if (v4 !== undefined) ips.push({ interface: 0, address: v4 });
  if (v6 !== undefined) ips.push({ interface: 0, address: v6 });
  const result: Result = { cniVersion: version, interfaces: [{ name: LO, mac: '00:00:00:00:00:00', sandbox: args.netns }] };
  if (ips.length > 0) result.ips = ips;
  if (conf.cniVersion === '' || version.startsWith('1.')) return result;
  // 0.x config: Go prints the 1.0-shaped struct unconverted (struct field order, "dns": {}).
  const raw: Record<string, unknown> = { cniVersion: version, interfaces: result.interfaces };
  if (result.ips) raw.ips = result.ips.map((ip) => ({ interface: ip.interface, address: ip.address }));
  raw.dns = {};
  return new PreformattedResult(marshalIndent(raw));
}

export async function cmdDel(args: CmdArgs, deps: LoopbackDeps): Promise<void> {
  if (args.netns === '') return;
  try {
    checkNetnsPath(args.netns, deps.statfsType);
  } catch (err) {
    // The runtime may call DEL after the namespace is gone, and more than once.
    if (err instanceof NetnsNotExistError) return;
    throw err;
  }
  await deps.kernel.inNetns(args.netns).setLinkDown(LO);
}

export async function cmdCheck(args: CmdArgs, deps: LoopbackDeps): Promise<void> {
  checkNetnsPath(args.netns, deps.statfsType);
  const link = await deps.kernel.inNetns(args.netns).getLink(LO);
  if (link === undefined) throw new Error('Link not found');
  if (!link.up) throw new Error('loopback interface is down');
}
