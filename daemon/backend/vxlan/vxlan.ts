// The vxlan backend: config, device creation and lease acquisition (flannel's pkg/backend/vxlan/vxlan.go).
//
// Design notes.
// VXLAN carries L2 frames in UDP, but flannel only routes L3: every host owns one subnet of the flannel
// network and one VXLAN device `flannel.<VNI>` whose only address is `<subnet>.0/32`. Early flannel
// versions listened for the kernel's L2/L3 "miss" callouts and answered them on demand; this backend,
// like current upstream, listens for nothing from the kernel's VXLAN code. Instead, for every remote
// host it learns from the subnet manager it writes three permanent entries up front:
//   1. a neighbour (ARP) entry   remote subnet.0      → remote VtepMAC          (ip neigh replace … nud permanent)
//   2. an FDB entry              remote VtepMAC       → remote PublicIP         (bridge fdb replace … self permanent)
//   3. an onlink route           remote subnet/len    via remote subnet.0 dev flannel.<VNI>
// in that order, so that by the time the route exists the kernel never has to ARP for the next hop nor
// flood for the MAC. Table sizes grow linearly: one route, one neighbour and one FDB entry per remote host.
// With `DirectRouting`, a peer on the same L2 segment (the kernel's route to its PublicIP has no gateway)
// gets a plain route `subnet via PublicIP` instead and no encapsulation at all.
//
// Where we deliberately differ from upstream (see network.ts and device.ts for the mechanics):
// - The VtepMAC survives restarts: a live compatible device keeps its MAC, else the MAC persisted in
//   stateDir (with a line naming the node that wrote it) is used, so a re-created device keeps the MAC
//   every peer already has in its neighbour and FDB tables (upstream #1795). A MAC file written by
//   another node (shared or cloned stateDir) is ignored, and a MAC another node's lease advertises is
//   never used: a new random one is picked (both logged).
// - An existing device is reconciled: a compatible one keeps running with its MTU corrected; an
//   incompatible one (VNI, port, local address, underlay device, learning, GBP or MAC differ) is re-created.
// - If the device disappears while we run it is re-created and every known peer is re-programmed
//   (upstream re-creates it with a new MAC and replays nothing).
// - The IPv6 device `flannel-v6.<VNI>` gets MTU − 70 (IPv6 outer header), not − 50.
// - On start, once the lease snapshot is programmed, entries on our devices left by leases deleted while
//   flanneld was down are removed (upstream's LeaseWatcher starts empty and never removes them).
// - All kernel writes of one lease batch go through one `ip -batch` exec (5000 peers in a few execs).
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { field, GoStruct } from '../../../shared/go/json.js';
import { formatIP, formatNet, ipEqual, type IP } from '../../../shared/net/ip.js';
import { acquireLeaseFor, type Backend, type BackendDeps, type BackendNetworkConfig, type Network } from '../backend.js';
import type { Lease, LeaseAttrs } from '../../lease.js';
import type { Logger } from '../../../shared/log.js';
import { normalizeMac, randomMac } from '../../../shared/net/mac.js';
import { VxlanDevice, vxlanIncompat, type VxlanDeviceAttrs } from './device.js';
import { VxlanNetwork } from './network.js';
import { underlayNetworks } from '../peer-guard.js';

export const DEFAULT_VNI = 1;
/** Outer IPv4 + UDP + VXLAN + inner Ethernet headers. */
export const ENCAP_OVERHEAD_V4 = 50;
/** The same over an IPv6 underlay (40-byte outer header instead of 20). */
export const ENCAP_OVERHEAD_V6 = 70;

export interface VxlanConfig {
  vni: number;
  /** 0 = the kernel default, 8472 */
  port: number;
  gbp: boolean;
  learning: boolean;
  directRouting: boolean;
  /** the underlay MTU (default: the external interface's); devices get mtu − overhead */
  mtu: number;
}

/** Parses the network config's `Backend` object as Go's json.Unmarshal into the VXLAN config struct. */
export function parseVxlanConfig(raw: Record<string, unknown>, ifaceMtu: number): VxlanConfig {
  let s: GoStruct;
  try {
    s = GoStruct.from(raw, 'struct { VNI int; Port int; GBP bool; Learning bool; DirectRouting bool; MTU int }');
    const cfg: VxlanConfig = {
      vni: s.int('VNI') ?? DEFAULT_VNI,
      port: s.int('Port') ?? 0,
      gbp: s.bool('GBP', false),
      learning: s.bool('Learning', false),
      directRouting: s.bool('DirectRouting', false),
      mtu: s.int('MTU') ?? ifaceMtu,
    };
    if (cfg.vni < 0 || cfg.vni > 0xffffff) throw new RangeError(`VNI ${cfg.vni} out of range 0..16777215`);
    if (cfg.port < 0 || cfg.port > 65535) throw new RangeError(`Port ${cfg.port} out of range 0..65535`);
    if (cfg.mtu <= 0) cfg.mtu = ifaceMtu;
    return cfg;
  } catch (err) {
    throw new Error(`error decoding VXLAN backend config: ${(err as Error).message}`, { cause: err });
  }
}

/** `{"VNI":..,"VtepMAC":".."}`: the lease's BackendData, key order as Go marshals vxlanLeaseAttrs. */
export interface VxlanLeaseAttrs {
  VNI: number;
  VtepMAC: string;
}

/** Where the VtepMAC of a device survives restarts: `<stateDir>/<device>.mac`, one MAC line. */
export function macFilePath(stateDir: string, devName: string): string {
  return join(stateDir, `${devName}.mac`);
}

/**
 * Which node wrote the MAC file: `<stateDir>/<device>.mac.node`, one line `<VTEP local address> <underlay
 * MAC>`. A separate file so that the MAC file stays the plain MAC line older versions of ours read. A
 * stateDir shared by two nodes (a cloned VM image, two test hosts on one machine) must not give both
 * one VtepMAC: a MAC file whose node line names another node is ignored.
 */
export function macNodeFilePath(stateDir: string, devName: string): string {
  return `${macFilePath(stateDir, devName)}.node`;
}

export interface StoredMac {
  mac: string;
  /** the node line, undefined when absent (written by an older version) */
  node: string | undefined;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, path);
}

export async function readStoredMac(stateDir: string, devName: string): Promise<StoredMac | undefined> {
  const text = await readOptional(macFilePath(stateDir, devName));
  const mac = text === undefined ? undefined : normalizeMac(text.trim());
  if (!mac) return undefined;
  return { mac, node: (await readOptional(macNodeFilePath(stateDir, devName)))?.trim() };
}

export async function writeStoredMac(stateDir: string, devName: string, mac: string, node: string): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o755 });
  await writeAtomic(macFilePath(stateDir, devName), `${mac}\n`);
  await writeAtomic(macNodeFilePath(stateDir, devName), `${node}\n`);
}

/** VtepMACs advertised by other nodes' leases (MAC → who), any family. */
export function advertisedMacs(leases: readonly Lease[], ours: readonly (IP | undefined)[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of leases) {
    // a lease with our PublicIP is ours from an earlier run: its MAC is ours to keep
    if (ours.some((a) => a && (ipEqual(a, l.attrs.publicIP) || (l.attrs.publicIPv6 && ipEqual(a, l.attrs.publicIPv6))))) continue;
    for (const data of [l.attrs.backendData, l.attrs.backendV6Data]) {
      if (typeof data !== 'object' || data === null) continue;
      const mac = normalizeMac(field(data as Record<string, unknown>, 'VtepMAC'));
      if (mac) out.set(mac, `${formatNet(l.subnet)} (PublicIP ${formatIP(l.attrs.publicIP)})`);
    }
  }
  return out;
}

/**
 * What registerNetwork reads: BackendNetworkConfig plus the flannel `Network`, which upstream's
 * RegisterNetwork gets with the whole config. It decides which other v4 addresses on flannel.<VNI> are
 * stale (inside it) and which are the operator's (outside it, kept); see VxlanDevice.configure.
 */
export function createVxlanBackend(deps: BackendDeps): Backend {
  return new VxlanBackend(deps);
}

export class VxlanBackend implements Backend {
  private readonly logger: Logger;
  constructor(private readonly deps: BackendDeps) {
    this.logger = deps.logger;
  }

  private readonly log = (m: string): void => this.logger.info(m);

  async registerNetwork(signal: AbortSignal, config: BackendNetworkConfig): Promise<Network> {
    const { extIface, kernel, stateDir, subnetManager } = this.deps;
    const log = this.log;
    const cfg = parseVxlanConfig(config.backend, extIface.iface.mtu);
    const interval = this.deps.reconcileInterval;
    log(`VXLAN config: VNI=${cfg.vni} Port=${cfg.port} GBP=${cfg.gbp} Learning=${cfg.learning} DirectRouting=${cfg.directRouting}`);

    const devAttrs = (family: 4 | 6, addr: IP): VxlanDeviceAttrs => ({
      name: family === 4 ? `flannel.${cfg.vni}` : `flannel-v6.${cfg.vni}`,
      family,
      vni: cfg.vni,
      vtepDev: extIface.iface.name,
      vtepAddr: formatIP(addr),
      vtepPort: cfg.port,
      gbp: cfg.gbp,
      learning: cfg.learning,
      mtu: cfg.mtu - (family === 4 ? ENCAP_OVERHEAD_V4 : ENCAP_OVERHEAD_V6),
      mac: '',
    });

    // The device comes first: the lease carries its MAC, which must be no other node's.
    const taken = advertisedMacs(await this.otherLeases(signal), [extIface.extAddr, extIface.extV6Addr]);
    const recorded = subnetManager.storedMacAddresses?.() ?? {};
    let dev: VxlanDevice | undefined;
    let v6Dev: VxlanDevice | undefined;
    if (config.enableIPv4) {
      const addr = extIface.ifaceAddr ?? extIface.extAddr;
      if (!addr) throw new Error(`failed to find an IPv4 address on ${JSON.stringify(extIface.iface.name)} for the vxlan device`);
      dev = await this.newDevice(devAttrs(4, addr), taken, recorded.v4);
    }
    if (config.enableIPv6) {
      const addr = extIface.ifaceV6Addr ?? extIface.extV6Addr;
      if (!addr) throw new Error(`failed to find an IPv6 address on ${JSON.stringify(extIface.iface.name)} for the vxlan device`);
      v6Dev = await this.newDevice(devAttrs(6, addr), taken, recorded.v6);
    }

    const attrs: LeaseAttrs = { publicIP: extIface.extAddr ?? { family: 4, value: 0n }, backendType: 'vxlan' };
    if (dev && extIface.extAddr) {
      attrs.backendData = { VNI: cfg.vni, VtepMAC: dev.attrs.mac } satisfies VxlanLeaseAttrs;
    }
    if (v6Dev && extIface.extV6Addr) {
      attrs.publicIPv6 = extIface.extV6Addr;
      attrs.backendV6Data = { VNI: cfg.vni, VtepMAC: v6Dev.attrs.mac } satisfies VxlanLeaseAttrs;
    }

    const lease = await acquireLeaseFor(subnetManager, attrs, signal);

    // The device's only address is the subnet's network address as a /32 (/128): no broadcast or
    // whole-network route is created; it is the source for host-to-pod traffic and the next hop peers use.
    if (dev) {
      if (!lease.subnet || lease.subnet.family !== 4) throw new Error('IPv4 is enabled but the lease has no IPv4');
      try {
        await dev.configure(lease.subnet, config.network);
      } catch (err) {
        throw new Error(`failed to configure interface ${dev.attrs.name}: ${(err as Error).message}`, { cause: err });
      }
    }
    if (v6Dev) {
      if (!lease.ipv6Subnet) throw new Error('IPv6 is enabled but the lease has no IPv6');
      try {
        await v6Dev.configure(lease.ipv6Subnet);
      } catch (err) {
        throw new Error(`failed to configure interface ${v6Dev.attrs.name}: ${(err as Error).message}`, { cause: err });
      }
    }

    return new VxlanNetwork({
      subnetManager,
      kernel,
      logger: this.logger,
      lease,
      dev,
      v6Dev,
      directRouting: cfg.directRouting,
      ownAddrs: [extIface.ifaceAddr, extIface.ifaceV6Addr, extIface.extAddr, extIface.extV6Addr],
      underlay: await underlayNetworks(kernel, extIface.iface.name, (m) => this.logger.warn(m)),
      ...(config.network ? { network: config.network } : {}),
      ...(config.ipv6Network ? { ipv6Network: config.ipv6Network } : {}),
      mtu: Math.min(dev?.attrs.mtu ?? Infinity, v6Dev?.attrs.mtu ?? Infinity),
      ...(interval !== undefined ? { reconcileInterval: interval } : {}),
    });
  }

  private async otherLeases(signal: AbortSignal): Promise<Lease[]> {
    try {
      return await this.deps.subnetManager.listLeases(signal);
    } catch (err) {
      if (signal.aborted) throw err;
      this.logger.warn(`could not list the leases to check that our VtepMAC is no other node's: ${(err as Error).message}`);
      return [];
    }
  }

  /**
   * Picks the VtepMAC, persists it with this node's identity, ensures the device. In order:
   * 1. the MAC of a live compatible device (ours from an earlier run, or Go's): peers already have it;
   * 2. the MAC file, if it was written by this node (or by an older version, which wrote no node line);
   * 3. the MAC the datastore says this node advertised before (`recorded`: kube's backend-data
   *    annotation, as Go reuses it after a reboot);
   * 4. a new random MAC.
   * A MAC another node's lease advertises is never used (a cloned image, a shared stateDir): a new one
   * is picked and logged.
   */
  private async newDevice(attrs: VxlanDeviceAttrs, taken: Map<string, string>, recorded?: string): Promise<VxlanDevice> {
    const { kernel, stateDir, extIface } = this.deps;
    const log = this.log;
    const underlay = await kernel.getLink(extIface.iface.name).catch(() => undefined);
    const node = `${attrs.vtepAddr} ${underlay ? normalizeMac(underlay.mac) ?? '-' : '-'}`;
    const stored = await readStoredMac(stateDir, attrs.name);
    const existing = await kernel.getLink(attrs.name);
    const liveMac = existing ? normalizeMac(existing.mac) : undefined;
    let mac: string | undefined;
    let from = '';
    if (existing && liveMac && !vxlanIncompat(existing, { ...attrs, mac: liveMac })) {
      mac = liveMac;
      from = `the existing device ${attrs.name}`;
      if (stored && stored.mac !== mac) log(`${attrs.name}: keeping the live device's VtepMAC ${mac}, not ${stored.mac} from ${macFilePath(stateDir, attrs.name)}`);
    } else if (stored && stored.node !== undefined && stored.node !== node) {
      log(`ignoring ${macFilePath(stateDir, attrs.name)}: it was written by another node (${stored.node}, this node is ${node}); is the state dir shared or copied?`);
    } else if (stored) {
      mac = stored.mac;
      from = macFilePath(stateDir, attrs.name);
    }
    const recordedMac = recorded ? normalizeMac(recorded) : undefined;
    if (!mac && recordedMac) {
      mac = recordedMac;
      from = `the VtepMAC this node advertised before (${this.deps.subnetManager.name()})`;
    }
    if (mac && taken.has(mac)) {
      log(`VtepMAC ${mac} from ${from} is already advertised by the lease ${taken.get(mac)}: picking a new one for ${attrs.name}`);
      mac = undefined;
    }
    if (!mac) {
      do mac = randomMac(randomBytes);
      while (taken.has(mac));
    }
    if (stored?.mac !== mac || stored.node !== node) await writeStoredMac(stateDir, attrs.name, mac, node);
    // a device of another node's MAC is incompatible now: ensure() re-creates it with ours
    const dev = new VxlanDevice(kernel, { ...attrs, mac }, log);
    await dev.ensure();
    return dev;
  }
}
