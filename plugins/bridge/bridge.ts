// The bridge plugin (containernetworking/plugins plugins/main/bridge, HEAD behaviour).
//
// Design notes: the ADD follows upstream's steps, but the kernel work is batched so that an ADD costs
// few execs (each one a process start; scripts/bench/cni-latency measures them). cmdAdd runs:
//   1. IPAM ‖ read in parallel: the IPAM ADD (delegate exec through CNI_PATH, whole stdin, as upstream,
//                  which runs it after the veth) and one read of the bridge (exists? a bridge? up? its
//                  MAC to pin and its addresses for ensureAddr)
//   2. host batch  ONE Kernel.batch (ops.ts): create/up the bridge (mtu, vlan_filtering, promisc), the
//                  veth pair with the container end created directly in the pod netns (configured or
//                  pre-chosen MAC; no move), host end up and enslaved, port flags (hairpin, isolated,
//                  VLANs), then the gateway address(es) planned from step 1's addresses (ensureAddr) and
//                  the bridge MAC pin. With vlan + isGateway the gateway goes on the veth `<br>.<vlan>`
//                  (one extra read; created in this batch if missing)
//   3. pod batch   ONE Kernel.batch in the pod netns (shared/ip/configure-iface.ts): L3 sysctls,
//                  addresses, link up, routes; L2 link up only. DAD is waited for only with enabledad + a
//                  v6 gw. With macspoofchk, ONE nft transaction in the host runs beside it
//                  (shared/link/spoof-check.ts)
//   4. forwarding  ip_forward / ipv6 forwarding for each family with a gateway (sysctl files, no exec)
//   5. ipMasq      the iptables chain and rules (shared/ip/ipmasq.ts, only when configured)
//   6. one read    of the host veth (port state, polled like upstream) and the bridge (+ `<br>.<vlan>`)
//                  for the result's MACs
// Host sysctls (accept_ra, ip_forward) are file writes in our own namespace: no exec. The container MAC
// is chosen here (random, locally administered, as the kernel would) unless configured, so the result
// needs no read in the pod. The netns path is checked before anything else, so a bad one leaves the
// host untouched.
//
// As upstream: a failure after IPAM releases the IP (undo stack) and removes the spoof-check rules;
// the veth is left for the runtime's DEL. DEL succeeds when the netns, the link or the masquerade chain
// are already gone, and always releases IPAM. The spoof-check teardown (a read, then one nft exec if
// anything is left) reports errors on stderr only, as upstream; unlike upstream it also runs when
// CNI_NETNS is empty or gone. CHECK is in check.ts.
import type { CmdArgs, Result, Route as CniRoute } from '../../shared/cni/types.js';
import { formatChainName, formatComment } from '../../shared/cni/utils.js';
import { goQuote } from '../../shared/go/quote.js';
import { configureIface, settleAddresses } from '../../shared/ip/configure-iface.js';
import { setupIPMasq, teardownIPMasq } from '../../shared/ip/ipmasq.js';
import { randomVethName } from '../../shared/ip/link.js';
import { explainFailure, type OpPlan } from '../../shared/ip/op-plan.js';
import { isExists, isNotFound, KernelError } from '../../shared/kernel/errors.js';
import type { Iptables } from '../../shared/kernel/iptables.js';
import type { Kernel } from '../../shared/kernel/kernel.js';
import type { Nft } from '../../shared/kernel/nft.js';
import { SpoofChecker } from '../../shared/link/spoof-check.js';
import { errorMessage } from '../../shared/log.js';
import { formatIP, nextIP, parseCIDR } from '../../shared/net/ip.js';
import type { Family } from '../../shared/net/ip.js';
import { parseMac, randomMac } from '../../shared/net/mac.js';
import { formatRouteDst } from '../../shared/net/route.js';
import { netnsGone, NetnsNotExistError } from '../../shared/ns/netns.js';
import { parseBridgeConf, type BridgeConf } from './netconf.js';
import { bridgePlan, gatewayPlan, portPlan, type GatewayTarget } from './ops.js';

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
    gc(type: string, stdin: Buffer): Promise<void>;
  };
  /** ns.GetNS's check (shared/ns/netns.ts): throws Go's words when `path` is missing or not a namespace */
  openNetns(path: string): void;
  sleep(ms: number): Promise<void>;
  random(n: number): Buffer;
  log(msg: string): void;
}

/** The netns check of ADD and CHECK, worded as upstream's `ns.GetNS` failure. */
export function openNetns(deps: BridgeDeps, path: string): void {
  try {
    deps.openNetns(path);
  } catch (err) {
    throw new Error(`failed to open netns ${goQuote(path)}: ${errorMessage(err)}`, { cause: err });
  }
}

/** netlink.OperState.String() of iproute2's operstate word. */
function operStateText(s: string | undefined): string {
  const words: Record<string, string> = { UP: 'up', DOWN: 'down', LOWERLAYERDOWN: 'lower-layer-down', DORMANT: 'dormant', TESTING: 'testing', NOTPRESENT: 'not-present' };
  return (s !== undefined ? words[s] : undefined) ?? 'unknown';
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
        if (r.gw !== undefined && formatRouteDst(r.dst) === defaultDst) {
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

// ---------------------------------------------------------------------------------------------------
// ADD

export async function cmdAdd(args: CmdArgs, deps: BridgeDeps): Promise<Result> {
  const n = parseBridgeConf(args.stdinData, args.args);
  if (n.isDefaultGateway) n.isGateway = true;
  const isLayer3 = n.ipamType !== '';
  if (n.hairpinMode && n.promiscMode) throw new Error('cannot set hairpin mode and promiscuous mode at the same time');
  if (n.disableContainerInterface && isLayer3) throw new Error('cannot use IPAM when DisableContainerInterface flag is set');
  if (n.ipMasq && n.ipMasqBackend !== undefined && n.ipMasqBackend !== 'iptables' && n.ipMasqBackend !== 'nftables') {
    throw new Error(`unknown ipmasq backend ${goQuote(n.ipMasqBackend)}`);
  }
  if (n.ipMasq && n.ipMasqBackend === 'nftables') throw new Error('the nftables ipmasq backend is not supported by this bridge plugin: use "iptables"');
  const contMac = n.mac !== undefined ? parseMac(n.mac) : randomMac(deps.random);

  // Upstream opens the netns after creating the bridge; checking first leaves the host untouched.
  openNetns(deps, args.netns);

  const host = deps.kernel;
  const pod = host.inNetns(args.netns);
  const brName = n.bridge;
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
      throw new Error(`failed to create bridge ${goQuote(brName)}: ${goQuote(brName)} already exists but is not a bridge`);
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
    const masq = ipamResult !== undefined && n.ipMasq ? startIPMasq(deps, masqNames(n, args), (result.ips ?? []).map((ipc) => ipc.address), undo) : undefined;

    // 2. the host side in one batch: bridge, veth (container end created in the pod netns), port flags,
    //    gateway address(es) and the MAC pin
    const bridge = bridgePlan(n, brName, before, brPinMac);
    let gateway: OpPlan = { ops: [], explain: (e) => (e instanceof Error ? e : new Error(String(e))) };
    let vlanIface: string | undefined;
    if (n.isGateway && gw !== undefined) {
      let target: GatewayTarget = { dev: brName, addrs: (before?.addrs ?? []).map((a) => a.cidr) };
      if (n.vlan !== 0) {
        vlanIface = `${brName}.${n.vlan}`;
        const existing = (await host.inspect([vlanIface])).get(vlanIface);
        target = { dev: vlanIface, addrs: existing?.addrs.map((a) => a.cidr) ?? [] };
        if (existing === undefined) target.create = { peer: randomVethName(deps.random), mac: randomMac(deps.random) };
      }
      gateway = gatewayPlan(n, brName, [gw.v4, gw.v6], target, brPinMac);
    }

    let hostVeth = '';
    for (let attempt = 0; ; attempt++) {
      hostVeth = randomVethName(deps.random);
      const port = portPlan(n, brName, hostVeth, { name: args.ifName, netns: args.netns, mac: contMac });
      const plans = [bridge, port, gateway];
      const ops = plans.flatMap((p) => p.ops);
      try {
        await host.batch(ops);
        break;
      } catch (err) {
        const op = err instanceof KernelError ? err.op : undefined;
        const done = op === undefined ? -1 : ops.indexOf(op);
        if (op?.op === 'addBridge' && isExists(err)) {
          // a concurrent ADD created it: carry on without creating it
          bridge.ops.splice(0, done + 1);
          attempt--;
          continue;
        }
        // only the pod's veth is retried under a new name (a clash on <br>.<vlan>'s veth, created by a
        // concurrent ADD, is a gateway-step error)
        if (op?.op === 'addVeth' && port.ops.includes(op) && isExists(err) && attempt < 10) {
          bridge.ops.splice(0, done); // those ran
          if ((await pod.getLink(args.ifName)) !== undefined) {
            throw new Error(`container veth name (${goQuote(args.ifName)}) peer provided (${goQuote(hostVeth)}) already exists`);
          }
          continue; // host name collision: a new random name
        }
        throw explainFailure(err, plans);
      }
    }
    // we want to own the routes for these interfaces (file writes in our own namespace: no exec)
    await host.writeSysctl(`net/ipv6/conf/${brName}/accept_ra`, '0').catch(() => {});
    await host.writeSysctl(`net/ipv6/conf/${hostVeth}/accept_ra`, '0').catch(() => {});
    result.interfaces = [{ name: brName }, { name: hostVeth }, { name: args.ifName, mac: contMac, sandbox: args.netns }];

    // macspoofchk: upstream sets it up right after the veth, before IPAM. Its one exec runs beside the
    // pod batch; its error wins, as upstream stops there
    const spoof = n.macspoofchk ? setupSpoofCheck(deps, spoofCheckRefID(args), hostVeth, contMac, undo) : Promise.resolve(undefined);

    // 3. the pod side in one batch (any throw becomes a rejection, so the setup is always awaited)
    const podStep = (async () => {
      if (isLayer3) {
        const iface = configureIface(args.ifName, result, { enabledad: n.enabledad });
        await pod.batch(iface.ops).catch((err: unknown) => {
          throw iface.explain(err);
        });
      } else if (!n.disableContainerInterface) {
        await pod.batch([{ op: 'setLinkUp', dev: args.ifName }]).catch((err: unknown) => {
          throw new Error(`failed to set ${goQuote(args.ifName)} up: ${errorMessage(err)}`, { cause: err });
        });
      }
    })();
    await alongside(spoof, podStep);
    if (isLayer3) {
      // ConfigureIface waits for DAD when there is a v6 gateway; with accept_dad=0 there is nothing to wait for
      if (n.enabledad && (result.ips ?? []).some((i) => i.gateway?.includes(':'))) await settleAddresses(pod, args.ifName, deps.sleep);
      if (gw !== undefined && n.isGateway) {
        for (const g of [gw.v4, gw.v6]) {
          if (g.gws.length === 0) continue;
          await enableIPForward(host, g.family).catch((err: unknown) => {
            throw new Error(`failed to enable forwarding: ${errorMessage(err)}`, { cause: err });
          });
        }
      }
      const masqErr = await masq;
      if (masqErr !== undefined) throw masqErr;
    }

    // 4. one read for the port state and the MACs of the result; poll while the port is not up
    const names = vlanIface !== undefined ? [hostVeth, brName, vlanIface] : [hostVeth, brName];
    let links = await host.inspect(names);
    if (!n.disableContainerInterface) {
      const sleeps = [0, 50, 500, 1000, 1000];
      for (let i = 0; ; i++) {
        const veth = links.get(hostVeth);
        if (veth === undefined) throw new Error(`failed to lookup ${goQuote(hostVeth)}: Link not found`);
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

/**
 * The masquerade chain and rules (upstream sets them up last), started as soon as IPAM gave the
 * addresses: its exec (one iptables-restore for a new container's chain) is spawned before this
 * returns and runs beside the kernel batches rather than after them (it took most of an ADD's wall
 * time). Resolves to its error (it runs beside other work; ADD reports it where upstream would). The
 * rollback of a failed ADD awaits it, then removes the rules: a failure before that point leaves none,
 * as upstream's order does.
 */
function startIPMasq(deps: BridgeDeps, { chain, comment }: MasqNames, addresses: readonly string[], undo: Array<() => Promise<void>>): Promise<Error | undefined> {
  const setup = settled(setupIPMasq(deps.iptables, addresses, chain, comment));
  undo.push(async () => {
    await setup;
    await teardownIPMasq(deps.iptables, addresses, chain, comment);
  });
  return setup;
}

interface MasqNames {
  chain: string;
  comment: string;
}

/** The container's masquerade chain and the comment on its rules (upstream's utils.FormatChainName / FormatComment). */
function masqNames(n: BridgeConf, args: CmdArgs): MasqNames {
  return { chain: formatChainName(n.name, args.containerId), comment: formatComment(n.name, args.containerId) };
}

/** `work`'s error as a value: for work that runs beside other work and is awaited later. */
function settled(work: Promise<void>): Promise<Error | undefined> {
  return work.then(
    () => undefined,
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );
}

function dnsConfSet(n: BridgeConf): boolean {
  return n.dns.nameservers !== undefined || n.dns.search !== undefined || n.dns.options !== undefined || (n.dns.domain ?? '') !== '';
}

async function enableIPForward(host: Kernel, family: Family): Promise<void> {
  const key = family === 4 ? 'net/ipv4/ip_forward' : 'net/ipv6/conf/all/forwarding';
  const cur = await host.readSysctl(key).catch(() => '');
  if (cur === '1') return;
  await host.writeSysctl(key, '1');
}

// ---------------------------------------------------------------------------------------------------
// macspoofchk (upstream pkg/link/spoofcheck.go: shared/link/spoof-check.ts)

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
  const err = await settled(sc.setup(hostVeth, mac));
  if (err === undefined) undo.push(() => sc.teardown());
  return err;
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
// DEL

export async function cmdDel(args: CmdArgs, deps: BridgeDeps): Promise<void> {
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

  // The masquerade teardown starts once the addresses are read: its exec (spawned before the link
  // delete is sent) runs beside the link delete, the kernel's slowest step of a DEL, and IPAM DEL.
  // Settled before DEL returns or fails.
  let masq: Promise<Error | undefined> | undefined;
  try {
    deps.openNetns(args.netns);
    const pod = deps.kernel.inNetns(args.netns);
    if (isLayer3 && n.ipMasq) {
      const link = (await pod.inspect([args.ifName])).get(args.ifName);
      const addresses = (link?.addrs ?? []).filter((a) => a.scope === 'global').map((a) => a.cidr);
      const { chain, comment } = masqNames(n, args);
      masq = settled(teardownIPMasq(deps.iptables, addresses, chain, comment));
    }
    await pod.deleteLink(args.ifName, { missingOk: true });
  } catch (err) {
    await masq;
    if (err instanceof NetnsNotExistError) return release();
    if (!(err instanceof KernelError) || !isNotFound(err)) throw err;
    // the netns vanished between the check and the delete: as if it never existed
    if (!netnsGone(args.netns, deps.openNetns)) throw err;
    return release();
  }
  await release().finally(() => masq); // an IPAM error comes first, as upstream stops there
  const masqErr = await masq;
  if (masqErr !== undefined) throw masqErr;
}

// ---------------------------------------------------------------------------------------------------
// STATUS

export async function cmdStatus(args: CmdArgs, deps: BridgeDeps): Promise<void> {
  const n = parseBridgeConf(args.stdinData, args.args);
  if (n.ipamType !== '') await deps.ipam.status(n.ipamType, args.stdinData);
}

// ---------------------------------------------------------------------------------------------------
// GC

/**
 * GC passes the runtime's valid attachments on to IPAM, which releases every other reservation. The
 * reference bridge registers no GC handler (so host-local never sees a GC under it); we forward it, as
 * the spec asks of a plugin with delegates, so a leaked address is released by the runtime's GC.
 */
export async function cmdGc(args: CmdArgs, deps: BridgeDeps): Promise<void> {
  const n = parseBridgeConf(args.stdinData, args.args);
  if (n.ipamType !== '') await deps.ipam.gc(n.ipamType, args.stdinData);
}
