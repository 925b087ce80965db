// The bridge's CHECK (upstream cmdCheck): the IPAM CHECK, then the prevResult against the kernel: the
// bridge (kind, MAC, promisc), the container veth and its host peer on the bridge, the addresses and the
// routes. The spoof check is not looked at (neither does upstream).
import { CniError } from '../../shared/cni/errors.js';
import type { CmdArgs, Interface, Route as CniRoute } from '../../shared/cni/types.js';
import { parseResult } from '../../shared/cni/version.js';
import { normCidr } from '../../shared/ip/configure-iface.js';
import { tryParseIP, type Family } from '../../shared/net/ip.js';
import { formatRouteDst } from '../../shared/net/route.js';
import { openNetns, type BridgeDeps } from './bridge.js';
import { parseBridgeConf } from './netconf.js';

export async function cmdCheck(args: CmdArgs, deps: BridgeDeps): Promise<void> {
  const n = parseBridgeConf(args.stdinData, args.args);
  openNetns(deps, args.netns);
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
    const dst = formatRouteDst(r.dst);
    const isDefault = dst === '0.0.0.0/0' || dst === '::/0';
    const f: Family = !dst.includes(':') ? 4 : 6;
    const found = routes.some((x) => {
      if (x.family !== f) return false;
      const xdst = x.dst === 'default' ? (f === 4 ? '0.0.0.0/0' : '::/0') : formatRouteDst(x.dst.includes('/') ? x.dst : `${x.dst}/${f === 4 ? 32 : 128}`);
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

/** Go's types.Route %v, approximately: `{Dst:10.1.0.0/16 GW:10.1.0.1}` */
function routeText(r: CniRoute): string {
  return `{Dst:${r.dst} GW:${r.gw ?? '<nil>'}}`;
}
