// loopback (plugins/main/loopback): brings `lo` up in CNI_NETNS on ADD and down on DEL; CHECK wants it up.
// CNI_IFNAME is ignored. The ADD result is built in the 1.0 shape with the config's cniVersion and, as
// Go's convert short-circuits when from == to, printed WITHOUT conversion: a 0.3.1 config gets
// 1.0-shaped `ips` (no `version`). Only an absent cniVersion converts (to the 0.1.0 `ip4`/`ip6` shape).
// With a prevResult, that result is passed through at the config's version.
import { CniError } from '../../shared/cni/errors.js';
import { GoJsonError, GoStruct, isObject, jsonTypeName, marshalIndent, parseJson } from '../../shared/cni/go-json.js';
import { type CmdArgs, type IPConfig, PreformattedResult, type PluginFuncs, type Result } from '../../shared/cni/types.js';
import { decodePrevResult, formatResult, parseResult } from '../../shared/cni/version.js';
import type { Kernel } from '../../shared/kernel/kernel.js';
import { parseCIDR } from '../../shared/net/ip.js';
import { NetnsNotExistError, type StatfsType, checkNetnsPath } from './netns-path.js';

export const ABOUT = 'CNI loopback plugin version unknown';
const LO = 'lo';

export interface LoopbackDeps {
  kernel: Kernel;
  statfsType: StatfsType;
}

export function loopback(deps: LoopbackDeps): Required<Pick<PluginFuncs, 'add' | 'del' | 'check'>> {
  return {
    add: (a) => cmdAdd(a, deps),
    del: (a) => cmdDel(a, deps),
    check: (a) => cmdCheck(a, deps),
  };
}

interface LoopbackConf {
  /** as written; '' when absent */
  cniVersion: string;
  prevResult?: Record<string, unknown>;
}

/**
 * parseNetConf: the config read into Go's types.NetConf (every known field must have its Go type), then,
 * with a prevResult, version.ParsePrevResult (strict, at the config's version) and its conversion to
 * the current version. Errors are plain (code 999) and worded like Go's.
 */
function parseNetConf(stdin: Buffer): LoopbackConf {
  let conf: GoStruct;
  let cniVersion: string;
  let prev: unknown;
  try {
    conf = GoStruct.from(parseJson(stdin), 'NetConf');
    cniVersion = conf.string('cniVersion') ?? '';
    conf.string('name');
    conf.string('type');
    const caps = conf.map('capabilities');
    for (const v of Object.values(caps ?? {})) {
      if (v !== null && typeof v !== 'boolean') throw new GoJsonError(`json: cannot unmarshal ${jsonTypeName(v)} into Go struct field NetConf.capabilities of type bool`);
    }
    const ipam = conf.object('ipam', 'types.IPAM');
    const ipamType = ipam?.raw('type');
    if (ipamType !== undefined && typeof ipamType !== 'string') {
      throw new GoJsonError(`json: cannot unmarshal ${jsonTypeName(ipamType)} into Go struct field IPAM.ipam.type of type string`);
    }
    const dns = conf.object('dns', 'types.DNS');
    if (dns !== undefined) {
      for (const k of ['nameservers', 'search', 'options']) {
        const v = dns.raw(k);
        if (v === undefined) continue;
        const items = Array.isArray(v) ? v : [v];
        const bad = Array.isArray(v) ? items.find((i) => i !== null && typeof i !== 'string') : v;
        if (bad !== undefined) throw new GoJsonError(`json: cannot unmarshal ${jsonTypeName(bad)} into Go struct field DNS.dns.${k} of type ${Array.isArray(v) ? 'string' : '[]string'}`);
      }
      const domain = dns.raw('domain');
      if (domain !== undefined && typeof domain !== 'string') throw new GoJsonError(`json: cannot unmarshal ${jsonTypeName(domain)} into Go struct field DNS.dns.domain of type string`);
    }
    prev = conf.raw('prevResult');
    if (prev !== undefined && !isObject(prev)) {
      throw new GoJsonError(`json: cannot unmarshal ${jsonTypeName(prev)} into Go struct field NetConf.prevResult of type map[string]interface {}`);
    }
  } catch (err) {
    if (err instanceof CniError) throw err;
    throw new Error(`failed to parse network config: ${(err as Error).message}`, { cause: err });
  }
  if (prev === undefined) return { cniVersion };
  try {
    decodePrevResult(prev, cniVersion === '' ? '0.1.0' : cniVersion);
  } catch (err) {
    throw new Error(`failed to parse prevResult: could not parse prevResult: ${(err as Error).message}`, { cause: err });
  }
  return { cniVersion, prevResult: prev };
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
