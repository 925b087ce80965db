// The bridge plugin (containernetworking/plugins plugins/main/bridge, HEAD behaviour; cni.md §3).
//
// Design notes: the ADD follows upstream's steps, but the kernel work is batched so that an ADD costs
// few execs (~1.7 ms each). add() runs:
//   1. IPAM ‖ read in parallel: the IPAM ADD (delegate exec through CNI_PATH, whole stdin, as upstream,
//                  which runs it after the veth) and `ip -json -batch` of the bridge (exists? a bridge?
//                  up? its MAC to pin and its addresses for ensureAddr)
//   2. host batch  ONE exec (`ip -batch`, or one `sh` when `bridge vlan` lines are in it): create/up the
//                  bridge (mtu, vlan_filtering, promisc), the veth pair with the container end created
//                  directly in the pod netns (configured or pre-chosen MAC; no move), host end up and
//                  enslaved, port flags (hairpin, isolated, VLANs), then the gateway address(es) planned
//                  from step 1's addresses (ensureAddr) and the bridge MAC pin. With vlan + isGateway the
//                  gateway goes on the veth `<br>.<vlan>` (one extra read; created in this batch if missing)
//   3. pod batch   ONE exec under `nsenter --net=<netns>`: L3 sysctls, addresses, link up, routes (a `sh`
//                  script); L2 link up only (`ip -batch`). DAD is waited for only with enabledad + a v6 gw.
//                  With macspoofchk, ONE `nft -j '<json>'` in the host runs beside it (shared/kernel/nft.ts)
//   4. forwarding  ip_forward / ipv6 forwarding for each family with a gateway (sysctl files, no exec)
//   5. ipMasq      the iptables chain and rules (iptables execs, only when configured)
//   6. one read    `ip -json -batch` of the host veth (port state, polled like upstream) and the bridge
//                  (+ `<br>.<vlan>`) for the result's MACs
// Host sysctls (accept_ra, ip_forward) are file writes in our own namespace: no exec. The container MAC
// is chosen here (random, locally administered, as the kernel would) unless configured, so the result
// needs no read in the pod. The netns path is checked before anything else, so a bad one leaves the
// host untouched.
//
// As upstream: a failure after IPAM releases the IP (undo stack) and removes the spoof-check rules;
// the veth is left for the runtime's DEL. DEL succeeds when the netns, the link or the masquerade chain
// are already gone, and always releases IPAM. The spoof-check teardown (a read, then one nft exec if
// anything is left) reports errors on stderr only, as upstream; unlike upstream it also runs when
// CNI_NETNS is empty or gone. CHECK does not look at the spoof check (neither does upstream).
import { closeSync, openSync, readSync, statfsSync } from 'node:fs';
import { CniError } from '../../shared/cni/errors.js';
import { errorMessage } from '../../shared/log.js';
import { delegateAdd, delegateCheck, delegateDel, delegateStatus } from '../../shared/cni/invoke.js';
import type { CmdArgs, Interface, Result, Route as CniRoute } from '../../shared/cni/types.js';
import { parseResult } from '../../shared/cni/version.js';
import { isExists, isNotFound, KernelError } from '../../shared/kernel/errors.js';
import { createIptables } from '../../shared/kernel/iptables.js';
import type { Iptables } from '../../shared/kernel/iptables.js';
import { createKernel } from '../../shared/kernel/iproute.js';
import type { Kernel, KernelOp, LinkAddrs, RouteSpec } from '../../shared/kernel/kernel.js';
import { createNft, SpoofChecker } from '../../shared/kernel/nft.js';
import type { Nft } from '../../shared/kernel/nft.js';
import { formatIP, formatNet, netContains, nextIP, parseCIDR, tryParseCIDR, tryParseIP } from '../../shared/net/ip.js';
import type { Family, IP } from '../../shared/net/ip.js';
import { parseBridgeConf, type BridgeConf } from './netconf.js';

export const ABOUT = 'CNI bridge plugin version unknown';

/** Everything the bridge touches, injectable for unit tests (FakeKernel, FakeIptables, fake IPAM). */
export interface BridgeDeps {
  /** the host: the namespace this process runs in */
  kernel: Kernel;
  iptables(family: Family): Iptables;
  /** nftables of the host (macspoofchk) */
  nft: Nft;
  ipam: {
    add(type: string, stdin: Buffer, confVersion: string): Promise<Result>;
    del(type: string, stdin: Buffer): Promise<void>;
    check(type: string, stdin: Buffer): Promise<void>;
    status(type: string, stdin: Buffer): Promise<void>;
  };
  /** ns.GetNS's check: throws Go's words when `path` is missing or not a namespace */
  openNetns(path: string): void;
  sleep(ms: number): Promise<void>;
  random(n: number): Buffer;
  log(msg: string): void;
}

const NSFS_MAGIC = 0x6e736673;
const PROCFS_MAGIC = 0x9fa0;

/** Thrown by openNetns for a path that does not exist (Go's ns.NSPathNotExistErr). */
export class NetnsNotExistError extends Error {
  override readonly name = 'NetnsNotExistError';
}

/** ns.GetNS: statfs the path; ENOENT and a non-nsfs/procfs file system are errors worded like Go's. */
export function openNetnsPath(path: string): void {
  let type: number;
  try {
    type = statfsSync(path).type;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new NetnsNotExistError(`failed to Statfs "${path}": no such file or directory`);
    throw new Error(`failed to Statfs "${path}": ${errnoText(e)}`);
  }
  if (type !== NSFS_MAGIC && type !== PROCFS_MAGIC) throw new Error(`unknown FS magic on "${path}": ${type.toString(16)}`);
}

function errnoText(e: NodeJS.ErrnoException): string {
  return /^[A-Z]+: ([^,]+)/.exec(e.message)?.[1] ?? e.message;
}

/** Random bytes from /dev/urandom: loading node:crypto would cost ~2.5 ms of start-up per ADD. */
function urandom(n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = openSync('/dev/urandom', 'r');
  try {
    readSync(fd, b, 0, n, null);
  } finally {
    closeSync(fd);
  }
  return b;
}

/**
 * The real world for one invocation: our own namespace's kernel, iptables and nftables, IPAM through
 * CNI_PATH with the invocation's environment, and logs to the invocation's stderr (the process's, or
 * the caller's buffer when bridge runs in-process as a delegate).
 */
export function realDeps(io: { env: Record<string, string | undefined>; writeStderr(text: string): void }): BridgeDeps {
  const o = { env: io.env, writeStderr: (t: string) => io.writeStderr(t) };
  return {
    kernel: createKernel(),
    iptables: (family) => createIptables(family),
    nft: createNft(),
    ipam: {
      add: (type, stdin, v) => delegateAdd(type, stdin, v, o),
      del: (type, stdin) => delegateDel(type, stdin, o),
      check: (type, stdin) => delegateCheck(type, stdin, o),
      status: (type, stdin) => delegateStatus(type, stdin, o),
    },
    openNetns: openNetnsPath,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    random: urandom,
    log: (msg) => io.writeStderr(`${msg}\n`),
  };
}

// ---------------------------------------------------------------------------------------------------
// helpers

/** `veth` + 4 random bytes in hex, as ip.RandomVethName. */
export function randomVethName(random: (n: number) => Buffer): string {
  return `veth${random(4).toString('hex')}`;
}

/** A random locally administered unicast MAC, as the kernel's eth_random_addr. */
export function randomMac(random: (n: number) => Buffer): string {
  const b = random(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Go's net.ParseMAC for the 6-byte forms, normalized to lower-case colon form. */
function parseMac(s: string): string {
  const m = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/.exec(s);
  const dotted = /^([0-9a-fA-F]{4})\.([0-9a-fA-F]{4})\.([0-9a-fA-F]{4})$/.exec(s);
  if (m) return [m[1], m[3], m[4], m[5], m[6], m[7]].join(':').toLowerCase();
  if (dotted) return [dotted[1], dotted[2], dotted[3]].join('').replace(/(..)(?!$)/g, '$1:').toLowerCase();
  throw new Error(`address ${s}: invalid MAC address`);
}

/** netlink.OperState.String() of iproute2's operstate word. */
function operStateText(s: string | undefined): string {
  switch (s) {
    case 'UP':
      return 'up';
    case 'DOWN':
      return 'down';
    case 'LOWERLAYERDOWN':
      return 'lower-layer-down';
    case 'DORMANT':
      return 'dormant';
    case 'TESTING':
      return 'testing';
    case 'NOTPRESENT':
      return 'not-present';
    default:
      return 'unknown';
  }
}

function ipFamily(ip: IP): Family {
  return ip.family;
}

/**
 * `chain = "CNI-" + hex(sha512(name + id))[:24]` (utils.FormatChainName). node:crypto is imported only
 * here, on the ipMasq path, to keep it off the start-up of every other ADD.
 */
export async function formatChainName(name: string, id: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  return `CNI-${createHash('sha512').update(name + id).digest('hex').slice(0, 24)}`;
}

/** utils.FormatComment: `name: "<name>" id: "<id>"` with Go's %q */
export function formatComment(name: string, id: string): string {
  return `name: ${goQ(name)} id: ${goQ(id)}`;
}

function goQ(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's types.Route %v, approximately: `{Dst:10.1.0.0/16 GW:10.1.0.1}` */
function routeText(r: CniRoute): string {
  return `{Dst:${r.dst} GW:${r.gw ?? '<nil>'}}`;
}

// ---------------------------------------------------------------------------------------------------
// calcGateways

export interface GwInfo {
  /** gateway `ip/prefix` (gateway IP + the container address's mask) to put on the bridge */
  gws: string[];
  family: Family;
  defaultRouteFound: boolean;
}

/**
 * calcGateways: sets `interface: 2` on every IP, fills a missing gateway with network+1 when isGateway,
 * appends a default route per family when isDefaultGateway (unless one with a gateway exists), and
 * collects the bridge addresses per family.
 */
export function calcGateways(result: Result, n: Pick<BridgeConf, 'isGateway' | 'isDefaultGateway'>): { v4: GwInfo; v6: GwInfo } {
  const v4: GwInfo = { gws: [], family: 4, defaultRouteFound: false };
  const v6: GwInfo = { gws: [], family: 6, defaultRouteFound: false };
  for (const ipc of result.ips ?? []) {
    const { ip, net } = parseCIDR(ipc.address);
    const gws = ip.family === 4 ? v4 : v6;
    const defaultDst = ip.family === 4 ? '0.0.0.0/0' : '::/0';
    ipc.interface = 2;
    if (ipc.gateway === undefined && n.isGateway) ipc.gateway = formatIP(nextIP({ family: net.family, value: net.base }));
    if (n.isDefaultGateway) {
      for (const r of result.routes ?? []) {
        if (r.gw !== undefined && normDst(r.dst) === defaultDst) {
          gws.defaultRouteFound = true;
          break;
        }
      }
      if (!gws.defaultRouteFound) {
        const route: CniRoute = { dst: defaultDst };
        if (ipc.gateway !== undefined) route.gw = ipc.gateway;
        (result.routes ??= []).push(route);
        gws.defaultRouteFound = true;
      }
    }
    if (n.isGateway && ipc.gateway !== undefined) gws.gws.push(`${ipc.gateway}/${net.prefix}`);
  }
  return { v4, v6 };
}

/** net.IPNet.String() of a route destination */
function normDst(dst: string): string {
  try {
    const { net } = parseCIDR(dst);
    return `${formatIP({ family: net.family, value: net.base })}/${net.prefix}`;
  } catch {
    return dst;
  }
}

// ---------------------------------------------------------------------------------------------------
// ensureAddr (planned against the addresses read in step 1)

/**
 * The ops that put `gw` (ip/prefix) on `dev` as upstream's ensureAddr does, given its current addresses:
 * same string → nothing to add; IPv4: any other v4 address conflicts; IPv6: overlapping subnets conflict.
 * A conflict is deleted with forceAddress, else it is an error.
 */
export function planEnsureAddr(dev: string, family: Family, gw: string, current: readonly string[], forceAddress: boolean): KernelOp[] {
  const want = parseCIDR(gw);
  const ops: KernelOp[] = [];
  for (const cidr of current) {
    if (cidr === gw) return ops;
    const have = parseCIDR(cidr);
    if (have.ip.family !== family) continue;
    if (family === 4 || netContains(have.net, want.ip) || netContains(want.net, have.ip)) {
      if (!forceAddress) throw new Error(`${goQ(dev)} already has an IP address different from ${gw}`);
      ops.push({ op: 'deleteAddr', dev, cidr });
    }
  }
  ops.push({ op: 'replaceAddr', dev, cidr: gw });
  return ops;
}

// ---------------------------------------------------------------------------------------------------
// ADD

export async function add(args: CmdArgs, deps: BridgeDeps): Promise<Result> {
  const n = parseBridgeConf(args.stdinData, args.args);
  if (n.isDefaultGateway) n.isGateway = true;
  const isLayer3 = n.ipamType !== '';
  if (n.hairpinMode && n.promiscMode) throw new Error('cannot set hairpin mode and promiscuous mode at the same time');
  if (n.disableContainerInterface && isLayer3) throw new Error('cannot use IPAM when DisableContainerInterface flag is set');
  if (n.ipMasq && n.ipMasqBackend !== undefined && n.ipMasqBackend !== 'iptables' && n.ipMasqBackend !== 'nftables') {
    throw new Error(`unknown ipmasq backend ${goQ(n.ipMasqBackend)}`);
  }
  if (n.ipMasq && n.ipMasqBackend === 'nftables') throw new Error('the nftables ipmasq backend is not supported by this bridge plugin: use "iptables"');
  const contMac = n.mac !== undefined ? parseMac(n.mac) : randomMac(deps.random);

  // Upstream opens the netns after creating the bridge; checking first leaves the host untouched.
  try {
    deps.openNetns(args.netns);
  } catch (err) {
    throw new Error(`failed to open netns ${goQ(args.netns)}: ${errorMessage(err)}`, { cause: err });
  }

  const host = deps.kernel;
  const pod = host.inNetns(args.netns);
  const brName = n.bridge;
  const vlanFiltering = n.vlan !== 0 || n.vlans !== undefined;
  const result: Result = { cniVersion: n.cniVersion, interfaces: [] };
  const undo: Array<() => Promise<void>> = [];
  try {
    // 1. IPAM and the read of the bridge, in parallel (upstream runs IPAM after the veth; the end state
    //    is the same: on any failure after IPAM the IP is released). Both settle before anything else:
    //    an IP allocated while the read failed is registered for release, and a bridge error wins over
    //    an IPAM error, as upstream reports the bridge first.
    const [ipamR, beforeR] = await Promise.allSettled([
      isLayer3
        ? deps.ipam.add(n.ipamType, args.stdinData, n.cniVersion).then((r) => {
            undo.push(() => deps.ipam.del(n.ipamType, args.stdinData));
            return r;
          })
        : undefined,
      host.inspect([brName]).then((m) => m.get(brName)),
    ]);
    if (beforeR.status === 'rejected') throw beforeR.reason;
    const before = beforeR.value;
    if (before !== undefined && before.kind !== 'bridge') {
      throw new Error(`failed to create bridge ${goQ(brName)}: ${goQ(brName)} already exists but is not a bridge`);
    }
    if (ipamR.status === 'rejected') throw ipamR.reason;
    const ipamResult = ipamR.value;
    // The MAC ensureAddr pins (upstream: the bridge's MAC when ensureBridge read it, before the port joined).
    const brPinMac = before?.mac ?? (n.isGateway ? randomMac(deps.random) : undefined);

    let gw: { v4: GwInfo; v6: GwInfo } | undefined;
    if (ipamResult !== undefined) {
      result.ips = (ipamResult.ips ?? []).map((ip) => ({ ...ip }));
      if (ipamResult.routes !== undefined) result.routes = ipamResult.routes.map((r) => ({ ...r }));
      if (ipamResult.dns !== undefined) result.dns = ipamResult.dns;
      if (result.ips.length === 0) throw new Error('IPAM plugin returned missing IP config');
      gw = calcGateways(result, n);
    }

    // 2. the host side in one exec: bridge, veth (container end created in the pod netns), port flags,
    //    gateway address(es) and the MAC pin
    const bridgeOps: KernelOp[] = [];
    if (before === undefined) {
      bridgeOps.push({ op: 'addBridge', name: brName, ...(n.mtu ? { mtu: n.mtu } : {}), vlanFiltering });
      // upstream pins the MAC of the device that gets the gateway address: with a vlan that is <br>.<vlan>
      if (n.isGateway && n.vlan === 0 && brPinMac !== undefined) bridgeOps.push({ op: 'setLink', dev: brName, mac: brPinMac });
    }
    if (n.promiscMode) bridgeOps.push({ op: 'setLink', dev: brName, promisc: true });
    if (before === undefined || !before.up) bridgeOps.push({ op: 'setLink', dev: brName, up: true });

    const gwOps: KernelOp[] = [];
    let vlanIface: string | undefined;
    if (n.isGateway && gw !== undefined) {
      let target = brName;
      let targetAddrs = (before?.addrs ?? []).map((a) => a.cidr);
      if (n.vlan !== 0) {
        target = `${brName}.${n.vlan}`;
        vlanIface = target;
        const existing = (await host.inspect([target])).get(target);
        if (existing === undefined) gwOps.push(...vlanGatewayOps(n, brName, target, randomVethName(deps.random), randomMac(deps.random)));
        targetAddrs = existing?.addrs.map((a) => a.cidr) ?? [];
      }
      for (const gws of [gw.v4, gw.v6]) {
        for (const cidr of gws.gws) {
          try {
            gwOps.push(...planEnsureAddr(target, gws.family, cidr, targetAddrs, n.forceAddress));
          } catch (err) {
            throw new Error(`${vlanIface ? 'failed to set vlan interface for bridge with addr' : 'failed to set bridge addr'}: ${errorMessage(err)}`);
          }
          targetAddrs = [...targetAddrs, cidr];
        }
      }
      if (brPinMac !== undefined && vlanIface === undefined && gw.v4.gws.length + gw.v6.gws.length > 0) {
        gwOps.push({ op: 'setLink', dev: brName, mac: brPinMac });
      }
    }

    let hostVeth = '';
    for (let attempt = 0; ; attempt++) {
      hostVeth = randomVethName(deps.random);
      const vethOps = portOps(n, brName, hostVeth, { name: args.ifName, netns: args.netns, mac: contMac });
      const ops = [...bridgeOps, ...vethOps, ...gwOps];
      try {
        await host.batch(ops);
        break;
      } catch (err) {
        const op = err instanceof KernelError ? err.op : undefined;
        const done = op === undefined ? -1 : ops.indexOf(op);
        if (op?.op === 'addBridge' && isExists(err)) {
          // a concurrent ADD created it: carry on without creating it
          bridgeOps.splice(0, done + 1);
          attempt--;
          continue;
        }
        // only the pod's veth is retried under a new name (a clash on <br>.<vlan>'s veth, created by a
        // concurrent ADD, is a gateway-step error below)
        if (op?.op === 'addVeth' && vethOps.includes(op) && isExists(err) && attempt < 10) {
          bridgeOps.splice(0, done); // those ran
          if ((await pod.getLink(args.ifName)) !== undefined) {
            throw new Error(`container veth name (${goQ(args.ifName)}) peer provided (${goQ(hostVeth)}) already exists`);
          }
          continue; // host name collision: a new random name
        }
        if (gwOps.includes(op!)) throw gatewayStepError(err);
        throw bridgeStepError(err, brName, hostVeth);
      }
    }
    // we want to own the routes for these interfaces (file writes in our own namespace: no exec)
    await host.writeSysctl(`net/ipv6/conf/${brName}/accept_ra`, '0').catch(() => {});
    await host.writeSysctl(`net/ipv6/conf/${hostVeth}/accept_ra`, '0').catch(() => {});
    result.interfaces = [{ name: brName }, { name: hostVeth }, { name: args.ifName, mac: contMac, sandbox: args.netns }];

    // macspoofchk: upstream sets it up right after the veth, before IPAM. Its one exec runs beside the
    // pod batch; its error wins, as upstream stops there
    const spoof = n.macspoofchk ? setupSpoofCheck(deps, spoofCheckRefID(args), hostVeth, contMac, undo) : Promise.resolve(undefined);

    // 3. the pod side in one exec (any throw becomes a rejection, so the setup is always awaited)
    const podStep = (async () => {
      if (isLayer3) {
        await pod.batch(podOps(n, args.ifName, result, deps.log)).catch((err: unknown) => {
          throw podStepError(err, args.ifName);
        });
      } else if (!n.disableContainerInterface) {
        await pod.batch([{ op: 'setLinkUp', dev: args.ifName }]).catch((err: unknown) => {
          throw new Error(`failed to set ${goQ(args.ifName)} up: ${errorMessage(err)}`, { cause: err });
        });
      }
    })();
    await alongside(spoof, podStep);
    if (isLayer3) {
      // ConfigureIface waits for DAD when there is a v6 gateway; with accept_dad=0 there is nothing to wait for
      if (n.enabledad && (result.ips ?? []).some((i) => i.gateway !== undefined && !isV4Cidr(i.gateway))) {
        await waitForDad(pod, args.ifName, deps);
      }
      if (gw !== undefined && n.isGateway) {
        for (const g of [gw.v4, gw.v6]) {
          if (g.gws.length === 0) continue;
          await enableIPForward(host, g.family).catch((err: unknown) => {
            throw new Error(`failed to enable forwarding: ${errorMessage(err)}`, { cause: err });
          });
        }
      }
      if (n.ipMasq) {
        const chain = await formatChainName(n.name, args.containerId);
        const comment = formatComment(n.name, args.containerId);
        await setupIPMasq(deps, (result.ips ?? []).map((ipc) => ipc.address), chain, comment);
      }
    }

    // 4. one read for the port state and the MACs of the result; poll while the port is not up
    const names = vlanIface !== undefined ? [hostVeth, brName, vlanIface] : [hostVeth, brName];
    let links = await host.inspect(names);
    if (!n.disableContainerInterface) {
      const sleeps = [0, 50, 500, 1000, 1000];
      for (let i = 0; ; i++) {
        const veth = links.get(hostVeth);
        if (veth === undefined) throw new Error(`failed to lookup ${goQ(hostVeth)}: Link not found`);
        if (veth.operstate === 'UP') break;
        if (i === sleeps.length - 1) throw new Error(`bridge port in error state: ${operStateText(veth.operstate)}`);
        await deps.sleep(sleeps[i + 1]!);
        links = await host.inspect(names);
      }
    }
    const ifaces = result.interfaces;
    ifaces[0]!.mac = links.get(brName)?.mac ?? '';
    ifaces[1]!.mac = links.get(hostVeth)?.mac ?? '';
    if (vlanIface !== undefined) ifaces.push({ name: vlanIface, mac: links.get(vlanIface)?.mac ?? '' });
    if (dnsConfSet(n)) result.dns = n.dns;
    return result;
  } catch (err) {
    for (const step of undo.reverse()) {
      await step().catch((e: unknown) => deps.log(`bridge: rollback failed: ${errorMessage(e)}`));
    }
    throw err;
  }
}

function gatewayStepError(err: unknown): Error {
  const op = err instanceof KernelError ? err.op : undefined;
  const msg = errorMessage(err).replace(/^".*?": /, '');
  if (op?.op === 'replaceAddr') return new Error(`failed to set bridge addr: could not add IP address ${op.cidr} to ${goQ(op.dev)}: ${msg}`, { cause: err });
  if (op?.op === 'deleteAddr') return new Error(`failed to set bridge addr: could not remove IP address from ${goQ(op.dev)}: ${msg}`, { cause: err });
  if (op?.op === 'setLink' && op.mac !== undefined) return new Error(`failed to set bridge addr: could not set bridge's mac: ${msg}`, { cause: err });
  return new Error(`failed to create vlan interface: ${msg}`, { cause: err });
}

function isV4Cidr(s: string): boolean {
  return !s.includes(':');
}

function dnsConfSet(n: BridgeConf): boolean {
  return n.dns.nameservers !== undefined || n.dns.search !== undefined || n.dns.options !== undefined || (n.dns.domain ?? '') !== '';
}

/** The host-side veth ops: pair (container end straight into the pod netns), up, master, port flags, VLANs. */
function portOps(n: BridgeConf, brName: string, hostVeth: string, cont: { name: string; netns: string; mac: string }): KernelOp[] {
  const ops: KernelOp[] = [
    { op: 'addVeth', name: hostVeth, peer: cont.name, peerNetns: cont.netns, peerMac: cont.mac, ...(n.mtu ? { mtu: n.mtu } : {}) },
    { op: 'setLink', dev: hostVeth, master: brName, up: true },
    { op: 'setBridgePort', dev: hostVeth, hairpin: n.hairpinMode, ...(n.portIsolation ? { isolated: true } : {}) },
  ];
  ops.push(...vlanOps(n, hostVeth, n.vlan));
  return ops;
}

function vlanOps(n: BridgeConf, dev: string, vlan: number): KernelOp[] {
  const ops: KernelOp[] = [];
  if ((vlan !== 0 || n.vlans !== undefined) && !n.preserveDefaultVlan) ops.push({ op: 'deleteVlan', dev, vid: 1 });
  if (vlan !== 0) ops.push({ op: 'addVlan', dev, vid: vlan, pvid: true, untagged: true });
  for (const v of n.vlans ?? []) ops.push({ op: 'addVlan', dev, vid: v });
  if (vlan === 0 && n.vlans !== undefined && !n.preserveDefaultVlan) ops.push({ op: 'addVlan', dev, vid: 1, pvid: true, untagged: true });
  return ops;
}

/** ensureVlanInterface: a veth `<br>.<vlan>` in the host, its peer a tagged port of the bridge. */
/**
 * `<br>.<vlan>` as upstream's ip.SetupVeth + ensureAddr make it: its MAC set explicitly (the pin), the
 * bridge-side peer with accept_ra=0 like every host-side veth end.
 */
function vlanGatewayOps(n: BridgeConf, brName: string, name: string, peer: string, mac: string): KernelOp[] {
  return [
    { op: 'addVeth', name, peer, mac, ...(n.mtu ? { mtu: n.mtu } : {}) },
    { op: 'sysctl', key: `net/ipv6/conf/${peer}/accept_ra`, value: '0', optional: true },
    { op: 'setLink', dev: peer, master: brName, up: true },
    ...vlanOps({ ...n, vlans: undefined }, peer, n.vlan),
    { op: 'setLink', dev: name, up: true },
  ];
}

/**
 * IPv4 networks the kernel routes itself once the addresses are on the interface (its connected routes,
 * main table, metric 0): `ip route add` of the same dst there fails with EEXIST.
 */
function connectedV4(ips: readonly { address: string }[]): Set<string> {
  const out = new Set<string>();
  for (const ipc of ips) {
    const c = tryParseCIDR(ipc.address);
    if (c?.ip.family === 4) out.add(formatNet(c.net));
  }
  return out;
}

/**
 * The container side of an L3 ADD: sysctls, addresses, up, routes (ipam.ConfigureIface).
 *
 * A route whose dst is the connected network of one of the addresses (an IPAM route equal to the pod
 * subnet) is not added: the kernel already routes it. Go's ConfigureIface adds routes with
 * netlink.RouteAddEcmp (NLM_F_CREATE without NLM_F_EXCL), so the kernel takes it as a second route
 * ahead of the connected one (pod-to-pod traffic then goes through the gateway); our `ip route add` is
 * exclusive and failed the ADD with "File exists". Same result and ADD outcome as Go; the kernel keeps
 * only the connected route (direct on the bridge). Matching Go's extra route exactly needs an
 * `ip route prepend` kernel op.
 */
function podOps(n: BridgeConf, ifName: string, result: Result, log: (msg: string) => void = () => {}): KernelOp[] {
  const ops: KernelOp[] = [];
  if (n.enabledad) {
    ops.push({ op: 'sysctl', key: `net/ipv6/conf/${ifName}/enhanced_dad`, value: '1', optional: true });
    ops.push({ op: 'sysctl', key: `net/ipv6/conf/${ifName}/accept_dad`, value: '1', optional: true });
  } else {
    ops.push({ op: 'sysctl', key: `net/ipv6/conf/${ifName}/accept_dad`, value: '0', optional: true });
  }
  ops.push({ op: 'sysctl', key: `net/ipv4/conf/${ifName}/arp_notify`, value: '1', optional: true });
  const ips = result.ips ?? [];
  if (ips.some((ip) => !isV4Cidr(ip.address))) {
    for (const dev of ['lo', ifName]) ops.push({ op: 'sysctl', key: `net/ipv6/conf/${dev}/disable_ipv6`, value: '0' });
    ops.push({ op: 'sysctl', key: `net/ipv6/conf/${ifName}/keep_addr_on_down`, value: '1' });
  }
  for (const ipc of ips) ops.push({ op: 'addAddr', dev: ifName, cidr: normCidr(ipc.address) });
  ops.push({ op: 'setLinkUp', dev: ifName });
  const gw = (f: Family) => ips.find((i) => i.gateway !== undefined && (isV4Cidr(i.address) ? 4 : 6) === f)?.gateway;
  const connected = connectedV4(ips);
  for (const r of result.routes ?? []) {
    const f: Family = isV4Cidr(r.dst) ? 4 : 6;
    if (f === 4 && !r.priority && (r.table === undefined || r.table === 254) && connected.has(normDst(r.dst))) {
      log(`bridge: route ${normDst(r.dst)} on ${ifName} not added: it is the connected route of ${ifName}'s address, which the kernel already has`);
      continue;
    }
    const via = r.gw ?? gw(f);
    const spec: RouteSpec = { dst: normDst(r.dst), dev: ifName };
    if (via !== undefined) spec.via = via;
    if (r.priority) spec.metric = r.priority;
    if (r.table) spec.table = r.table;
    if (r.scope !== undefined) {
      const scope = r.scope === 253 ? 'link' : r.scope === 254 ? 'host' : r.scope === 0 ? 'global' : undefined;
      if (scope !== undefined) spec.scope = scope;
    }
    if (r.mtu) spec.mtu = r.mtu;
    if (r.advmss) spec.advmss = r.advmss;
    ops.push({ op: 'addRoute', route: spec });
  }
  return ops;
}

function normCidr(cidr: string): string {
  const { ip, net } = parseCIDR(cidr);
  return `${formatIP(ip)}/${net.prefix}`;
}

function bridgeStepError(err: unknown, brName: string, hostVeth: string): Error {
  const op = err instanceof KernelError ? err.op : undefined;
  const msg = errorMessage(err);
  switch (op?.op) {
    case 'addBridge':
      return new Error(`failed to create bridge ${goQ(brName)}: could not add ${goQ(brName)}: ${msg}`, { cause: err });
    case 'setLink':
      if (op.dev === brName) {
        if (op.promisc) return new Error(`failed to create bridge ${goQ(brName)}: could not set promiscuous mode on ${goQ(brName)}: ${msg}`, { cause: err });
        return new Error(`failed to create bridge ${goQ(brName)}: ${msg}`, { cause: err });
      }
      return new Error(`failed to connect ${goQ(hostVeth)} to bridge ${brName}: ${msg}`, { cause: err });
    case 'addVeth':
      return new Error(`failed to make veth pair: ${msg}`, { cause: err });
    case 'setBridgePort':
      return new Error(`failed to setup hairpin mode for ${hostVeth}: ${msg}`, { cause: err });
    case 'addVlan':
    case 'deleteVlan':
      return new Error(`failed to setup vlan tag on interface ${goQ(hostVeth)}: ${msg}`, { cause: err });
    default:
      return err instanceof Error ? err : new Error(msg);
  }
}

function podStepError(err: unknown, ifName: string): Error {
  const op = err instanceof KernelError ? err.op : undefined;
  const msg = errorMessage(err).replace(/^".*?": /, '');
  switch (op?.op) {
    case 'addAddr':
      return new Error(`failed to add IP addr ${op.cidr} to ${goQ(ifName)}: ${msg}`, { cause: err });
    case 'setLinkUp':
      return new Error(`failed to set ${goQ(ifName)} UP: ${msg}`, { cause: err });
    case 'addRoute': {
      const r = op.route;
      return new Error(`failed to add route '${r.dst}${r.via ? ` via ${r.via}` : ''} dev ${ifName}': ${msg}`, { cause: err });
    }
    case 'sysctl':
      return new Error(`failed to set sysctl ${op.key}=${op.value}: ${msg}`, { cause: err });
    default:
      return err instanceof Error ? err : new Error(msg);
  }
}

async function waitForDad(pod: Kernel, ifName: string, deps: BridgeDeps): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const link = (await pod.inspect([ifName])).get(ifName);
    const addrs = (link?.addrs ?? []).filter((a) => a.family === 6);
    const failed = addrs.find((a) => a.dadfailed);
    if (failed !== undefined) throw new Error(`link ${ifName} has address ${failed.cidr} in DADFAILED state`);
    if (!addrs.some((a) => a.tentative)) return;
    if (Date.now() > deadline) throw new Error(`link ${ifName} still has tentative addresses after 5 seconds`);
    await deps.sleep(50);
  }
}

async function enableIPForward(host: Kernel, family: Family): Promise<void> {
  const key = family === 4 ? 'net/ipv4/ip_forward' : 'net/ipv6/conf/all/forwarding';
  const cur = await host.readSysctl(key).catch(() => '');
  if (cur === '1') return;
  await host.writeSysctl(key, '1');
}

// ---------------------------------------------------------------------------------------------------
// macspoofchk (pkg/link/spoofcheck.go; the rules are built in shared/kernel/nft.ts)

/** uniqueID: `<containerID>-<ifname>`, the refID of the chains and comments. */
function spoofCheckRefID(args: CmdArgs): string {
  return `${args.containerId}-${args.ifName}`;
}

/**
 * Sets up the spoof check; resolves to its error instead of rejecting (it runs beside other work).
 * On success the teardown joins the undo stack (upstream: a deferred Teardown when the ADD fails).
 */
async function setupSpoofCheck(deps: BridgeDeps, refID: string, hostVeth: string, mac: string, undo: Array<() => Promise<void>>): Promise<Error | undefined> {
  const sc = new SpoofChecker(deps.nft, refID);
  try {
    await sc.setup(hostVeth, mac);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
  undo.push(() => sc.teardown());
  return undefined;
}

/** Awaits `work` and the spoof-check setup started before it; the setup's error comes first. */
async function alongside(setup: Promise<Error | undefined>, work: Promise<void>): Promise<void> {
  const failed = await work.then(
    () => undefined,
    (err: unknown) => ({ err }),
  );
  const setupErr = await setup;
  if (setupErr !== undefined) throw setupErr;
  if (failed !== undefined) throw failed.err;
}

/**
 * DEL's teardown, its read started at once (beside the link delete and IPAM DEL, off the critical
 * path); `finish()` applies it. Missing rules and chains are fine; errors go to stderr only, as upstream.
 */
function startSpoofCheckTeardown(deps: BridgeDeps, args: CmdArgs): { finish(): Promise<void> } {
  const sc = new SpoofChecker(deps.nft, spoofCheckRefID(args));
  const current = sc.read();
  current.catch(() => {}); // handled by teardown(), if DEL gets that far
  return { finish: () => sc.teardown(current).catch((err: unknown) => deps.log(errorMessage(err))) };
}

// ---------------------------------------------------------------------------------------------------
// ipMasq (iptables backend, pkg/ip/ipmasq_iptables_linux.go)

/**
 * upstream: for each address, NewChain, then AppendUnique of the chain's ACCEPT-own-subnet and
 * MASQUERADE-not-multicast rules and of the POSTROUTING jump (7 execs per address). The chain is this
 * container's alone, so per family it is created-or-flushed and filled with the rules those appends
 * leave, in their order (2 execs per family).
 */
async function setupIPMasq(deps: BridgeDeps, addresses: readonly string[], chain: string, comment: string): Promise<void> {
  const c = ['-m', 'comment', '--comment', comment];
  for (const family of [4, 6] as const) {
    const rules: string[][] = [];
    const jumps: string[][] = [];
    const appendUnique = (list: string[][], rule: string[]) => {
      if (!list.some((r) => r.join('\0') === rule.join('\0'))) list.push(rule);
    };
    for (const address of addresses) {
      const { ip, net } = parseCIDR(address);
      if (ipFamily(ip) !== family) continue;
      const subnet = `${formatIP({ family: net.family, value: net.base })}/${net.prefix}`;
      appendUnique(rules, ['-d', subnet, '-j', 'ACCEPT', ...c]);
      appendUnique(rules, ['!', '-d', family === 4 ? '224.0.0.0/4' : 'ff00::/8', '-j', 'MASQUERADE', ...c]);
      appendUnique(jumps, ['-s', formatIP(ip), '-j', chain, ...c]);
    }
    if (rules.length === 0) continue;
    await deps.iptables(family).fillChains('nat', [{ chain, rules }], jumps.map((rule) => ({ chain: 'POSTROUTING', rule })));
  }
}

/**
 * TeardownIPMasq; missing rules and chains count as success. When the container's addresses are
 * unknown (link already gone), the chain is still removed and POSTROUTING rules jumping to it are
 * found by listing (upstream leaks them in that case).
 */
async function teardownIPMasq(deps: BridgeDeps, addresses: readonly string[], chain: string, comment: string): Promise<void> {
  const c = ['-m', 'comment', '--comment', comment];
  const families = new Set<Family>(addresses.map((a) => parseCIDR(a).ip.family));
  for (const a of addresses) {
    const { ip, net } = parseCIDR(a);
    const ipt = deps.iptables(ip.family);
    await ipt.deleteRule('nat', 'POSTROUTING', ['-s', formatIP(ip), '-j', chain, ...c], { missingOk: true });
    await ipt.deleteRule('nat', 'POSTROUTING', ['-s', `${formatIP(ip)}/${net.prefix}`, '-j', chain, ...c], { missingOk: true });
  }
  const all: Family[] = addresses.length > 0 ? [...families] : [4, 6];
  for (const f of all) {
    const ipt = deps.iptables(f);
    if (addresses.length === 0) {
      const rules = await ipt.listRules('nat', 'POSTROUTING').catch(() => [] as string[]);
      for (const line of rules) {
        const m = /^-A POSTROUTING -s (\S+) .*-j (\S+)$/.exec(line);
        if (m && m[2] === chain) await ipt.deleteRule('nat', 'POSTROUTING', ['-s', m[1]!, '-j', chain, ...c], { missingOk: true });
      }
    }
    await ipt.deleteChain('nat', chain, { missingOk: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// DEL

export async function del(args: CmdArgs, deps: BridgeDeps): Promise<void> {
  const n = parseBridgeConf(args.stdinData, args.args);
  const isLayer3 = n.ipamType !== '';
  // upstream tears the spoof check down only when the netns is there; it does not need the netns
  // (the rules are found by name in the host), so here it runs after every successful IPAM DEL
  const spoof = n.macspoofchk ? startSpoofCheckTeardown(deps, args) : undefined;
  const release = async () => {
    if (isLayer3) await deps.ipam.del(n.ipamType, args.stdinData);
    await spoof?.finish();
  };
  if (args.netns === '') return release();

  let addresses: string[] = [];
  try {
    deps.openNetns(args.netns);
    const pod = deps.kernel.inNetns(args.netns);
    if (isLayer3 && n.ipMasq) {
      const link = (await pod.inspect([args.ifName])).get(args.ifName);
      addresses = (link?.addrs ?? []).filter((a) => a.scope === 'global').map((a) => a.cidr);
    }
    await pod.deleteLink(args.ifName, { missingOk: true });
  } catch (err) {
    if (err instanceof NetnsNotExistError) return release();
    if (!(err instanceof KernelError) || !isNotFound(err)) throw err;
    // the netns vanished between the check and the delete: as if it never existed
    if (!(await netnsGone(deps, args.netns))) throw err;
    return release();
  }
  await release();
  if (isLayer3 && n.ipMasq) {
    const chain = await formatChainName(n.name, args.containerId);
    await teardownIPMasq(deps, addresses, chain, formatComment(n.name, args.containerId));
  }
}

async function netnsGone(deps: BridgeDeps, path: string): Promise<boolean> {
  try {
    deps.openNetns(path);
    return false;
  } catch (err) {
    return err instanceof NetnsNotExistError;
  }
}

// ---------------------------------------------------------------------------------------------------
// CHECK

export async function check(args: CmdArgs, deps: BridgeDeps): Promise<void> {
  const n = parseBridgeConf(args.stdinData, args.args);
  try {
    deps.openNetns(args.netns);
  } catch (err) {
    throw new Error(`failed to open netns ${goQ(args.netns)}: ${errorMessage(err)}`, { cause: err });
  }
  await deps.ipam.check(n.ipamType, args.stdinData).catch((err: unknown) => {
    // invoke's lookup errors are plain; the delegate's own errors are CniErrors and pass through
    if (err instanceof CniError) throw err;
    throw err instanceof Error ? err : new Error(String(err));
  });
  if (n.prevResult === undefined) throw new Error('Required prevResult missing');
  const result = parseResult(n.prevResult, n.cniVersion);

  let brMap: Interface = { name: '' };
  let contMap: Interface = { name: '' };
  for (const intf of result.interfaces ?? []) {
    if (intf.name === n.bridge) brMap = intf;
    else if (intf.name === args.ifName && intf.sandbox === args.netns) contMap = intf;
  }

  const host = deps.kernel;
  const pod = host.inNetns(args.netns);
  const hostLinks = await host.inspect((result.interfaces ?? []).filter((i) => !i.sandbox && i.name !== '').map((i) => i.name));

  // the bridge
  if (brMap.name === '') throw new Error('Interface name missing ');
  const br = hostLinks.get(brMap.name);
  if (br === undefined) throw new Error(`Interface name ${brMap.name} not found`);
  if (brMap.sandbox) throw new Error(`Interface ${brMap.name} should not be in sandbox`);
  if (br.kind !== 'bridge') throw new Error(`Interface ${brMap.name} does not have link type of bridge`);
  if (brMap.mac && brMap.mac !== br.mac) throw new Error(`Bridge interface ${brMap.name} Mac doesn't match: ${brMap.mac}`);
  if ((br.promisc ?? false) !== n.promiscMode) {
    throw new Error(`Bridge interface ${brMap.name} configured Promisc Mode ${n.promiscMode} doesn't match current state: ${br.promisc ?? false} `);
  }

  if (args.netns !== contMap.sandbox) throw new Error(`Sandbox in prevResult ${contMap.sandbox ?? ''} doesn't match configured netns: ${args.netns}`);

  // the container interface
  if (contMap.name === '') throw new Error('Interface name missing ');
  const podLinks = await pod.inspect([contMap.name]);
  const cont = podLinks.get(contMap.name);
  if (cont === undefined) throw new Error(`Interface name ${contMap.name} not found`);
  if (cont.kind !== 'veth') throw new Error(`Error: Container interface ${contMap.name} not of type veth`);
  if (cont.peerIndex === undefined) throw new Error(`Unable to obtain veth peer index for veth ${contMap.name}`);
  if (contMap.mac && contMap.mac !== cont.mac) throw new Error(`Interface ${contMap.name} Mac ${contMap.mac} doesn't match container Mac: ${cont.mac}`);

  // the host veth: peer of the container interface, enslaved to the bridge
  let vethFound = false;
  for (const intf of result.interfaces ?? []) {
    if (intf.name === brMap.name || intf.name === contMap.name) continue;
    if (intf.name === '') throw new Error('Interface name missing ');
    const link = hostLinks.get(intf.name);
    if (link === undefined) throw new Error(`Interface name ${intf.name} not found`);
    if (intf.sandbox) throw new Error(`Interface ${intf.name} should not be in sandbox`);
    if (link.kind !== 'veth') continue;
    if (link.peerIndex === undefined) throw new Error(`Unable to obtain veth peer index for veth ${intf.name}`);
    if (link.index !== cont.peerIndex || cont.index !== link.peerIndex || link.master !== br.name) continue;
    if (intf.mac && intf.mac !== link.mac) throw new Error(`Interface ${intf.name} Mac doesn't match: ${intf.mac} not found`);
    vethFound = true;
    break;
  }
  if (!vethFound) throw new Error(`CNI veth created for bridge ${n.bridge} was not found`);

  // addresses and routes in the container
  for (const ipc of result.ips ?? []) {
    const want = normCidr(ipc.address);
    if (!cont.addrs.some((a) => a.cidr === want)) throw new Error(`Failed to match addr ${want} on interface ${args.ifName}`);
  }
  const routes = await pod.listRoutes();
  for (const r of result.routes ?? []) {
    const dst = normDst(r.dst);
    const isDefault = dst === '0.0.0.0/0' || dst === '::/0';
    const f: Family = isV4Cidr(dst) ? 4 : 6;
    const found = routes.some((x) => {
      if (x.family !== f) return false;
      const xdst = x.dst === 'default' ? (f === 4 ? '0.0.0.0/0' : '::/0') : normDst(x.dst.includes('/') ? x.dst : `${x.dst}/${f === 4 ? 32 : 128}`);
      if (isDefault) return xdst === dst && (r.gw === undefined || sameIP(x.via, r.gw));
      return xdst === dst && (r.gw === undefined || sameIP(x.via, r.gw));
    });
    if (!found) throw new Error(`Expected Route ${routeText(r)} not found in routing table`);
  }
}

function sameIP(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = tryParseIP(a);
  const y = tryParseIP(b);
  return x !== undefined && y !== undefined && x.family === y.family && x.value === y.value;
}

// ---------------------------------------------------------------------------------------------------
// STATUS

export async function status(args: CmdArgs, deps: BridgeDeps): Promise<void> {
  const n = parseBridgeConf(args.stdinData, args.args);
  if (n.ipamType !== '') await deps.ipam.status(n.ipamType, args.stdinData);
}
