// What a changed network config leaves behind when flanneld starts on it, and how it is dealt with.
//
// A node is *renumbered* when the lease it gets differs from the previous run's FLANNEL_SUBNET
// (subnet.env): the Network, SubnetLen or range changed, or the old subnet was taken. Left alone,
// two things break new pods (flannel-io/flannel#1850 and friends):
//   - the CNI bridge (cni0) still holds the old subnet's gateway (10.1.3.1/24); the bridge plugin (Go's
//     and ours) refuses any second IPv4 address: `"cni0" already has an IP address different from …`;
//   - a vxlan device of the old VNI (flannel.<old>) stays, with the old address and peer entries.
// So on start, after the new lease is taken and subnet.env written:
//   - the old gateway is removed from the bridge when it is exactly the previous FLANNEL_SUBNET (first
//     address and prefix, what the bridge plugin puts there) on a link of kind bridge; anything else
//     on the bridge is left alone and named in the log;
//   - the previous subnet's /32 (/128) goes from the vxlan device we run now (the backend keeps
//     addresses outside the new Network as the operator's);
//   - a vxlan device recorded in <dataDir>/network.json by an earlier start and not used by this
//     config is deleted, only while it still is what was recorded (kind, VNI, MAC).
// Existing pods keep their old addresses: with the old gateway gone the host no longer routes to
// them, and no peer routes the old subnet to this node any more. They lose all routed connectivity
// (host, other nodes, outside; only same-bridge L2 is left) and must be recreated. The log says so.
//
// Going back: <dataDir>/network.json remembers, per Network, the subnets this node held; when
// subnet.env's previous subnet does not fit the config, the remembered one is asked for (it is taken
// only if free, by the usual rules of LocalManager).
import type { Kernel } from '../shared/kernel/kernel.js';
import { type IPNet, formatCIDR, formatNet, netEqual, netIP, nextIP, tryParseCIDR } from '../shared/net/ip.js';
import { parseVxlanConfig } from './backend/vxlan/vxlan.js';
import type { Lease } from './lease.js';
import { type Logger, errorMessage } from '../shared/log.js';
import { type Config, subnetFits } from './subnet/config.js';
import type { PreviousSubnets } from './subnet/subnet-file.js';
import {
  type BackendRecord,
  type DeviceRecord,
  type HistoryEntry,
  type NetworkState,
  remember,
  rememberedSubnet,
  writeStateFile,
} from './subnet/state-file.js';

/** `sn` fits the v4 (`family` 4) or v6 part of `cfg` alone (SubnetLen, SubnetMin..SubnetMax). */
export function fitsFamily(cfg: Config, family: 4 | 6, sn: IPNet): boolean {
  if (sn.family !== family) return false;
  return family === 4
    ? cfg.enableIPv4 && subnetFits({ ...cfg, enableIPv6: false }, sn, undefined)
    : cfg.enableIPv6 && subnetFits({ ...cfg, enableIPv4: false }, undefined, sn);
}

/**
 * The previous subnets to ask LocalManager for: subnet.env's when they fit the config, else the
 * newest this node held in the config's Network (from the state file). subnet.env's own values are
 * still what the traffic rules tear down; this is only the preference for the lease.
 */
export function choosePrevious(fromFile: PreviousSubnets, cfg: Config, history: readonly HistoryEntry[], log: Logger): PreviousSubnets {
  const out: PreviousSubnets = { ...fromFile };
  const pick = (family: 4 | 6, have: IPNet | undefined, network: IPNet | undefined): IPNet | undefined => {
    if (!network || (family === 4 ? !cfg.enableIPv4 : !cfg.enableIPv6)) return have;
    if (have && fitsFamily(cfg, family, have)) return have;
    const old = rememberedSubnet(history, network, (sn) => fitsFamily(cfg, family, sn));
    if (!old) return have;
    log.info(
      `${have ? `previous subnet ${formatNet(have)} (subnet.env) does not fit the network config` : 'no previous subnet in subnet.env'}: ` +
        `asking for ${formatNet(old)}, which this node held in ${formatNet(network)} before`,
    );
    return old;
  };
  const sn = pick(4, fromFile.subnet, cfg.network);
  const sn6 = pick(6, fromFile.ipv6Subnet, cfg.ipv6Network);
  if (sn) out.subnet = sn;
  if (sn6) out.ipv6Subnet = sn6;
  return out;
}

/** The devices a config makes the backend create: `flannel.<VNI>` / `flannel-v6.<VNI>` for vxlan. */
export function backendDevices(cfg: Config): { name: string; vni: number }[] {
  if (cfg.backendType !== 'vxlan') return [];
  const { vni } = parseVxlanConfig(cfg.backend, 1500); // throws on a bad Backend, as the backend would
  const out: { name: string; vni: number }[] = [];
  if (cfg.enableIPv4) out.push({ name: `flannel.${vni}`, vni });
  if (cfg.enableIPv6) out.push({ name: `flannel-v6.${vni}`, vni });
  return out;
}

/** What the backend runs on now, as the kernel shows it (recorded after registerNetwork). */
export async function recordBackend(kernel: Kernel, cfg: Config): Promise<BackendRecord> {
  const devices: DeviceRecord[] = [];
  for (const d of backendDevices(cfg)) {
    const link = await kernel.getLink(d.name);
    if (link?.kind === 'vxlan' && link.vxlan?.vni === d.vni) devices.push({ name: d.name, kind: 'vxlan', vni: d.vni, mac: link.mac.toLowerCase() });
  }
  return { type: cfg.backendType, devices };
}

/** The state to write after a successful start: this backend, and the lease at the head of history. */
export function nextState(prev: NetworkState, backend: BackendRecord, cfg: Config, lease: Lease): NetworkState {
  let history = prev.history;
  if (cfg.enableIPv6 && cfg.ipv6Network && lease.ipv6Subnet) history = remember(history, cfg.ipv6Network, lease.ipv6Subnet);
  if (cfg.enableIPv4 && cfg.network) history = remember(history, cfg.network, lease.subnet);
  return { backend, history };
}

/**
 * Deletes the devices of `old` (the previous start's record) that the current backend does not use,
 * each only if it still has the recorded kind, VNI and MAC. Never throws: a failure is logged.
 */
export async function removeStaleDevices(kernel: Kernel, old: BackendRecord | undefined, current: readonly string[], log: Logger): Promise<void> {
  for (const rec of old?.devices ?? []) {
    if (current.includes(rec.name)) continue;
    try {
      const link = await kernel.getLink(rec.name);
      if (!link) continue;
      const why =
        link.kind !== 'vxlan'
          ? `kind ${link.kind ?? 'unknown'}`
          : link.vxlan?.vni !== rec.vni
            ? `VNI ${link.vxlan?.vni ?? '?'}`
            : link.mac.toLowerCase() !== rec.mac
              ? `MAC ${link.mac}`
              : undefined;
      if (why) {
        log.warn(`leaving ${rec.name} in place: it is not the device flanneld recorded (vxlan VNI ${rec.vni}, MAC ${rec.mac}; it has ${why})`);
        continue;
      }
      await kernel.deleteLink(rec.name, { missingOk: true });
      log.warn(`deleted ${rec.name} (vxlan VNI ${rec.vni}) of the previous ${old!.type} backend config: the current config does not use it`);
    } catch (err) {
      log.error(`failed to delete the stale device ${rec.name}: ${errorMessage(err)}`);
    }
  }
}

/** `10.1.3.0/24` → `10.1.3.1/24`: FLANNEL_SUBNET's form, the gateway the bridge plugin sets. */
export function gatewayOf(sn: IPNet): string {
  return formatCIDR(nextIP(netIP(sn)), sn.prefix);
}

function sameCidr(a: string, b: string): boolean {
  const x = tryParseCIDR(a);
  const y = tryParseCIDR(b);
  return !!x && !!y && x.ip.family === y.ip.family && x.ip.value === y.ip.value && x.net.prefix === y.net.prefix;
}

export interface RenumberInput {
  /** subnet.env of the previous run (as read at start, before it was rewritten) */
  previous: PreviousSubnets;
  lease: Lease;
  /** the CNI bridge to clean ('' = leave bridges alone) */
  bridge: string;
  /** the vxlan devices we run now (their old-subnet address goes) */
  devices: readonly string[];
}

/** The renumberings of this start: previous subnet → new subnet, per family. */
export function renumberings(previous: PreviousSubnets, lease: Lease): { from: IPNet; to: IPNet }[] {
  const out: { from: IPNet; to: IPNet }[] = [];
  if (previous.subnet && lease.enableIPv4 && !netEqual(previous.subnet, lease.subnet)) out.push({ from: previous.subnet, to: lease.subnet });
  if (previous.ipv6Subnet && lease.ipv6Subnet && !netEqual(previous.ipv6Subnet, lease.ipv6Subnet)) {
    out.push({ from: previous.ipv6Subnet, to: lease.ipv6Subnet });
  }
  return out;
}

/**
 * After a renumbering: logs it once with what it means for existing pods, removes the old gateway
 * from the CNI bridge and the old address from our vxlan devices. Never throws (each step logs).
 */
export async function cleanUpRenumbering(kernel: Kernel, input: RenumberInput, log: Logger): Promise<void> {
  const changes = renumberings(input.previous, input.lease);
  if (changes.length === 0) return;
  const what = changes.map((c) => `${formatNet(c.from)} -> ${formatNet(c.to)}`).join(', ');
  const olds = changes.map((c) => formatNet(c.from)).join(' and ');
  log.warn(
    `this node was renumbered: ${what}. Pods started before keep addresses in ${olds}: ` +
      `they lose connectivity (host, other nodes, outside) and must be recreated (delete them or drain this node)`,
  );
  if (input.bridge) await cleanBridge(kernel, input.bridge, changes, log);
  for (const dev of input.devices) {
    try {
      const addrs = await kernel.listAddrs({ dev });
      for (const c of changes) {
        const old = formatCIDR(netIP(c.from), c.from.family === 4 ? 32 : 128);
        if (!addrs.some((a) => sameCidr(a.cidr, old))) continue;
        await kernel.deleteAddr(dev, old, { missingOk: true });
        log.info(`removed the previous subnet's address ${old} from ${dev}`);
      }
    } catch (err) {
      log.error(`failed to remove the previous subnet's address from ${dev}: ${errorMessage(err)}`);
    }
  }
}

async function cleanBridge(kernel: Kernel, bridge: string, changes: { from: IPNet; to: IPNet }[], log: Logger): Promise<void> {
  try {
    const link = await kernel.getLink(bridge);
    if (!link) return; // no pod was created since boot: nothing stale
    if (link.kind !== 'bridge') {
      log.warn(`${bridge} is not a bridge (kind ${link.kind ?? 'unknown'}): leaving it alone`);
      return;
    }
    const addrs = await kernel.listAddrs({ dev: bridge });
    for (const c of changes) {
      const oldGw = gatewayOf(c.from);
      const newGw = gatewayOf(c.to);
      if (addrs.some((a) => sameCidr(a.cidr, oldGw))) {
        await kernel.deleteAddr(bridge, oldGw, { missingOk: true });
        log.warn(`removed the previous subnet's gateway ${oldGw} from ${bridge}, so that the bridge plugin can put ${newGw} there`);
      }
      // any other v4 address still makes every pod ADD fail; it is not provably ours, so only say so
      if (c.to.family === 4) {
        const others = addrs.filter((a) => a.family === 4 && !sameCidr(a.cidr, oldGw) && !sameCidr(a.cidr, newGw));
        for (const a of others) {
          log.warn(
            `${bridge} also holds ${a.cidr}, which is not this node's previous gateway: pod ADDs will fail with ` +
              `"${bridge}" already has an IP address different from ${newGw} until it is removed (ip addr del ${a.cidr} dev ${bridge})`,
          );
        }
      }
    }
  } catch (err) {
    log.error(`failed to remove the previous subnet's gateway from ${bridge}: ${errorMessage(err)}`);
  }
}

export interface SettleInput {
  /** subnet.env of the previous run */
  previous: PreviousSubnets;
  /** network.json of the previous run */
  state: NetworkState;
  config: Config;
  lease: Lease;
  /** the CNI bridge ('' = leave bridges alone) */
  bridge: string;
  dataDir: string;
}

/**
 * After a successful start: deletes the previous backend's unused devices, cleans up a renumbering,
 * then records this start in network.json. Returns the state written (or that would have been).
 * Never throws: every step logs its own failure and the daemon runs on.
 */
export async function settleNetworkChange(kernel: Kernel, i: SettleInput, log: Logger): Promise<NetworkState> {
  let devices: string[] = [];
  try {
    devices = backendDevices(i.config).map((d) => d.name);
  } catch (err) {
    log.error(`cannot tell the backend's devices: ${errorMessage(err)}`);
  }
  await removeStaleDevices(kernel, i.state.backend, devices, log);
  await cleanUpRenumbering(kernel, { previous: i.previous, lease: i.lease, bridge: i.bridge, devices }, log);
  let backend: BackendRecord = { type: i.config.backendType, devices: [] };
  try {
    backend = await recordBackend(kernel, i.config);
  } catch (err) {
    log.error(`cannot read the backend's devices: ${errorMessage(err)}`);
  }
  const next = nextState(i.state, backend, i.config, i.lease);
  try {
    await writeStateFile(i.dataDir, next);
  } catch (err) {
    log.error(`failed to write the network state to ${i.dataDir}: ${errorMessage(err)}`);
  }
  return next;
}
