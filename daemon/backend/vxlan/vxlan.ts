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
// - The VtepMAC is persisted in stateDir and the device is always created with it, so a restarted or
//   re-created device keeps the MAC every peer already has in its neighbour and FDB tables (upstream #1795).
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
import { GoStruct } from '../../../shared/cni/go-json.js';
import { formatIP, type IP, type IPNet } from '../../../shared/net/ip.js';
import { acquireLeaseFor, type Backend, type BackendDeps, type BackendNetworkConfig, type Network } from '../backend.js';
import type { LeaseAttrs } from '../../lease.js';
import { normalizeMac, VxlanDevice, type VxlanDeviceAttrs } from './device.js';
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
      gbp: s.bool('GBP') ?? false,
      learning: s.bool('Learning') ?? false,
      directRouting: s.bool('DirectRouting') ?? false,
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

/** Random locally administered unicast MAC, as upstream's newHardwareAddr. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = ((b[0] ?? 0) & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Where the VtepMAC of a device survives restarts: `<stateDir>/<device>.mac`. */
export function macFilePath(stateDir: string, devName: string): string {
  return join(stateDir, `${devName}.mac`);
}

export async function readStoredMac(stateDir: string, devName: string): Promise<string | undefined> {
  try {
    return normalizeMac((await readFile(macFilePath(stateDir, devName), 'utf8')).trim());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function writeStoredMac(stateDir: string, devName: string, mac: string): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o755 });
  const path = macFilePath(stateDir, devName);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${mac}\n`, { mode: 0o644 });
  await rename(tmp, path);
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
  constructor(private readonly deps: BackendDeps) {}

  async registerNetwork(signal: AbortSignal, config: BackendNetworkConfig): Promise<Network> {
    const { extIface, kernel, log, stateDir, subnetManager } = this.deps;
    const cfg = parseVxlanConfig(config.backend, extIface.iface.mtu);
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

    // The device comes first: the lease carries its MAC.
    let dev: VxlanDevice | undefined;
    let v6Dev: VxlanDevice | undefined;
    if (config.enableIPv4) {
      const addr = extIface.ifaceAddr ?? extIface.extAddr;
      if (!addr) throw new Error(`failed to find an IPv4 address on ${JSON.stringify(extIface.iface.name)} for the vxlan device`);
      dev = await this.newDevice(devAttrs(4, addr));
    }
    if (config.enableIPv6) {
      const addr = extIface.ifaceV6Addr ?? extIface.extV6Addr;
      if (!addr) throw new Error(`failed to find an IPv6 address on ${JSON.stringify(extIface.iface.name)} for the vxlan device`);
      v6Dev = await this.newDevice(devAttrs(6, addr));
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
      log,
      lease,
      dev,
      v6Dev,
      directRouting: cfg.directRouting,
      ownAddrs: [extIface.ifaceAddr, extIface.ifaceV6Addr, extIface.extAddr, extIface.extV6Addr],
      underlay: await underlayNetworks(kernel, extIface.iface.name, log),
      ...(config.network ? { network: config.network } : {}),
      ...(config.ipv6Network ? { ipv6Network: config.ipv6Network } : {}),
      mtu: Math.min(dev?.attrs.mtu ?? Infinity, v6Dev?.attrs.mtu ?? Infinity),
    });
  }

  /** Picks the MAC (persisted, else the existing device's, else random), persists it, ensures the device. */
  private async newDevice(attrs: VxlanDeviceAttrs): Promise<VxlanDevice> {
    const { kernel, log, stateDir } = this.deps;
    let mac = await readStoredMac(stateDir, attrs.name);
    if (!mac) {
      // First start with this stateDir: adopt the MAC of a device left by an earlier flanneld (Go's or
      // ours) so that peers' entries stay valid, else make one up.
      const existing = await kernel.getLink(attrs.name);
      mac = existing?.kind === 'vxlan' ? normalizeMac(existing.mac) : undefined;
      mac ??= randomMac();
      await writeStoredMac(stateDir, attrs.name, mac);
    }
    const dev = new VxlanDevice(kernel, { ...attrs, mac }, log);
    await dev.ensure();
    return dev;
  }
}
