// The wireguard network (Go's wireguard_network.go) on the shared lease loop: every accepted peer lease
// becomes one WireGuard peer per device, keyed by its public key, with AllowedIPs = its subnet and
// Endpoint = its PublicIP:Port; a removed lease removes the peer.
//
// - Mode separate: flannel-wg carries the v4 peer (BackendData), flannel-wg-v6 the v6 peer
//   (BackendV6Data, endpoint [PublicIPv6]:Port). Modes auto/ipv4/ipv6: one device, one peer with both
//   subnets, the endpoint family chosen as Go's selectMode (auto) or fixed.
// - One UAPI transaction (or one `wg set`) per device per lease batch; what failed is retried by the
//   loop with back-off.
// - The wanted peers are kept, so a wireguard-go that was restarted gets all of them back.
// Where we differ from Go: a lease whose key is missing or malformed, or that claims our key or another
// live peer's key, is refused by PeerGuard (logged once) instead of failing in ParseKey; a known peer
// whose key changed has its old peer removed (Go leaves it); in auto/ipv4/ipv6 mode the endpoint port
// is the peer's BackendData Port for either family (its one device listens there; Go uses
// BackendV6Data's Port, ListenPortV6, for a v6 endpoint, where nothing listens).
import type { Kernel } from '../../../shared/kernel/kernel.js';
import { errorMessage, type Logger } from '../../../shared/log.js';
import { formatIP, formatNet, netContains, parseNet, type IP, type IPNet } from '../../../shared/net/ip.js';
import { leaseKey, type Lease, type LeaseEvent } from '../../lease.js';
import type { SubnetManager } from '../../subnet/manager.js';
import type { Network } from '../backend.js';
import { LeaseLoop, type LeaseHandler } from '../lease-loop.js';
import { guardFor } from '../peer-guard.js';
import { BACKEND_TYPE, parseLeaseData, type WgMode } from './config.js';
import type { PeerConfig } from './control.js';
import type { WgDevice } from './device.js';
import type { WgKey } from './keys.js';

/** Route re-check period (ms): the Network route through each device is written again. */
export const ROUTE_CHECK_INTERVAL = 10_000;

export interface WireguardNetworkOptions {
  subnetManager: Pick<SubnetManager, 'watchLeases'>;
  kernel: Kernel;
  logger: Logger;
  lease: Lease;
  mode: WgMode;
  /** the v4 device (separate) or the one device (other modes) */
  dev?: WgDevice;
  /** the v6 device (separate mode) */
  v6Dev?: WgDevice;
  /** the MTU for subnet.env (underlay − 80) */
  mtu: number;
  enableIPv4: boolean;
  enableIPv6: boolean;
  network?: IPNet;
  ipv6Network?: IPNet;
  psk?: WgKey;
  keepalive: number;
  /** our public key: a lease that claims it is refused */
  publicKey: WgKey;
  /** our external addresses (selectMode, and never a peer's) */
  extAddr?: IP;
  extV6Addr?: IP;
  ownAddrs?: readonly (IP | undefined)[];
  underlay?: readonly IPNet[];
  checkInterval?: number;
}

/** One peer on one device. */
interface Want {
  dev: WgDevice;
  peer: PeerConfig;
}

const PRIVATE = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'].map(parseNet);
/** Go's net.IP.IsPrivate (RFC 1918, RFC 4193). */
export function isPrivate(ip: IP): boolean {
  return PRIVATE.some((n) => n.family === ip.family && netContains(n, ip));
}

export class WireguardNetwork implements Network, LeaseHandler {
  private readonly loop: LeaseLoop;
  /** lease key → the peers it wants */
  private readonly peers = new Map<string, Want[]>();
  readonly firstSync: Promise<void>;
  readonly periodic = [{ everyMs: () => this.o.checkInterval ?? ROUTE_CHECK_INTERVAL, run: () => this.checkRoutes() }];

  constructor(private readonly o: WireguardNetworkOptions) {
    const guard = guardFor(o, (l) => this.keyClaims(l));
    this.loop = new LeaseLoop({ name: BACKEND_TYPE, subnetManager: o.subnetManager, logger: o.logger, guard });
    this.firstSync = this.loop.firstSync;
  }

  lease(): Lease {
    return this.o.lease;
  }

  mtu(): number {
    return this.o.mtu;
  }

  /** The devices of this network. */
  devices(): WgDevice[] {
    return [this.o.dev, this.o.v6Dev].filter((d): d is WgDevice => d !== undefined);
  }

  /** Wanted peers (lease key → device and peer public key), for tests and diagnostics. */
  wantedPeers(): Map<string, Array<{ dev: string; publicKey: string; endpoint?: string; allowedIPs: string[] }>> {
    return new Map(
      [...this.peers].map(([k, ws]) => [
        k,
        ws.map((w) => ({ dev: w.dev.name, publicKey: w.peer.publicKey.toString(), ...(w.peer.endpoint ? { endpoint: w.peer.endpoint } : {}), allowedIPs: w.peer.allowedIPs ?? [] })),
      ]),
    );
  }

  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Runs a function serialized with the lease batches (the devices' restart work). */
  serial(f: () => Promise<void>): Promise<void> {
    return this.loop.serial(f);
  }

  async run(signal: AbortSignal): Promise<void> {
    try {
      await this.loop.run(signal, this);
    } finally {
      await this.loop.idle();
      for (const d of this.devices()) await d.remove();
    }
  }

  /** Exclusive keys: the public key(s) a wireguard lease advertises; or why it cannot be used. */
  private keyClaims(l: Lease): string[] | string {
    if (l.attrs.backendType !== BACKEND_TYPE) return [];
    const out = new Set<string>();
    for (const [on, data] of [
      [l.enableIPv4 && this.o.enableIPv4, l.attrs.backendData],
      [!!l.ipv6Subnet && this.o.enableIPv6, l.attrs.backendV6Data],
    ] as const) {
      if (!on) continue;
      const d = parseLeaseData(data);
      if (typeof d === 'string') return d;
      out.add(`WireGuard PublicKey ${d.publicKey.toString()}`);
    }
    return [...out];
  }

  // ---- LeaseHandler ---------------------------------------------------------------------------

  async handleBatch(last: Map<string, LeaseEvent>): Promise<void> {
    const removes = new Map<WgDevice, PeerConfig[]>();
    const adds = new Map<WgDevice, PeerConfig[]>();
    const owners = new Map<WgDevice, string[]>();
    const push = (m: Map<WgDevice, PeerConfig[]>, d: WgDevice, p: PeerConfig): void => void m.set(d, [...(m.get(d) ?? []), p]);
    for (const [key, ev] of last) {
      const prev = this.peers.get(key) ?? [];
      let next: Want[] = [];
      if (ev.type === 'added' && ev.lease.attrs.backendType === BACKEND_TYPE) {
        next = this.peersFor(ev.lease);
      } else if (ev.lease.attrs.backendType !== BACKEND_TYPE) {
        this.o.logger.warn(`Ignoring non-wireguard subnet: type=${ev.lease.attrs.backendType ?? ''}`);
      } else if (!this.peers.has(key)) {
        // removed and never seen by this run: nothing of it is on our fresh devices
        continue;
      } else {
        for (const w of prev) this.o.logger.info(`Subnet removed: ${(w.peer.allowedIPs ?? []).join(',')}`);
      }
      for (const w of prev) {
        if (!next.some((n) => n.dev === w.dev && n.peer.publicKey.toString() === w.peer.publicKey.toString())) {
          push(removes, w.dev, { publicKey: w.peer.publicKey, remove: true });
        }
      }
      for (const w of next) {
        push(adds, w.dev, w.peer);
        owners.set(w.dev, [...(owners.get(w.dev) ?? []), key]);
      }
      if (next.length > 0) this.peers.set(key, next);
      else this.peers.delete(key);
    }
    for (const dev of this.devices()) {
      const peers = [...(removes.get(dev) ?? []), ...(adds.get(dev) ?? [])];
      if (peers.length === 0) continue;
      try {
        await dev.o.control.configure(dev.name, { peers });
        if (adds.has(dev)) await dev.ensureRoutes();
      } catch (err) {
        this.o.logger.error(`failed to set up ${peers.length} peers on ${dev.name}: ${errorMessage(err)}; retrying`);
        for (const key of owners.get(dev) ?? []) {
          const ev = last.get(key);
          if (ev?.type === 'added') this.loop.scheduleRetry(key, ev.lease);
        }
      }
    }
  }

  async retry(due: Map<string, Lease>): Promise<void> {
    await this.handleBatch(new Map([...due].map(([k, lease]) => [k, { type: 'added' as const, lease }])));
  }

  /** After wireguard-go was restarted: every wanted peer of that device again, in one transaction. */
  async reapply(dev: WgDevice): Promise<void> {
    const peers = [...this.peers.values()].flat().filter((w) => w.dev === dev).map((w) => w.peer);
    if (peers.length === 0) return;
    await dev.o.control.configure(dev.name, { peers });
    this.o.logger.info(`re-applied ${peers.length} peers on ${dev.name}`);
  }

  async checkRoutes(): Promise<void> {
    for (const d of this.devices()) {
      try {
        await d.ensureRoutes();
      } catch (err) {
        this.o.logger.warn(`failed to re-ensure the routes through ${d.name}: ${errorMessage(err)}`);
      }
    }
  }

  // ---- which peers a lease needs ---------------------------------------------------------------

  private peerConfig(publicKey: WgKey, endpoint: string, allowed: IPNet[]): PeerConfig {
    return {
      publicKey,
      ...(this.o.psk ? { presharedKey: this.o.psk } : {}),
      keepalive: this.o.keepalive,
      endpoint,
      allowedIPs: allowed.map(formatNet),
    };
  }

  private peersFor(lease: Lease): Want[] {
    const v4 = lease.enableIPv4 && this.o.enableIPv4 ? parseLeaseData(lease.attrs.backendData) : undefined;
    const v6 = lease.ipv6Subnet && this.o.enableIPv6 ? parseLeaseData(lease.attrs.backendV6Data) : undefined;
    const pub4 = lease.attrs.publicIP.value !== 0n ? lease.attrs.publicIP : undefined;
    const pub6 = lease.attrs.publicIPv6;
    const out: Want[] = [];
    const skip = (why: string): void => this.o.logger.warn(`skipping lease ${leaseKey(lease)}: ${why}`);
    if (this.o.mode === 'separate') {
      if (v4 !== undefined && this.o.dev) {
        if (typeof v4 === 'string') skip(v4);
        else if (!pub4) skip('no public IPv4');
        else {
          const ep = `${formatIP(pub4)}:${v4.port || this.o.dev.o.listenPort}`;
          this.o.logger.info(`Subnet added: ${formatNet(lease.subnet)} via ${ep}`);
          out.push({ dev: this.o.dev, peer: this.peerConfig(v4.publicKey, ep, [lease.subnet]) });
        }
      }
      if (v6 !== undefined && this.o.v6Dev) {
        if (typeof v6 === 'string') skip(v6);
        else if (!pub6) skip('no public IPv6');
        else {
          const ep = `[${formatIP(pub6)}]:${v6.port || this.o.v6Dev.o.listenPort}`;
          this.o.logger.info(`Subnet added: ${formatNet(lease.ipv6Subnet!)} via ${ep}`);
          out.push({ dev: this.o.v6Dev, peer: this.peerConfig(v6.publicKey, ep, [lease.ipv6Subnet!]) });
        }
      }
      return out;
    }
    const dev = this.o.dev;
    if (!dev) return out;
    const data = typeof v6 === 'object' ? v6 : v4;
    if (data === undefined) return out;
    if (typeof data === 'string') {
      skip(data);
      return out;
    }
    const port = (typeof v4 === 'object' ? v4.port : data.port) || dev.o.listenPort;
    let mode = this.o.mode;
    if (mode === 'auto') mode = this.selectMode(pub4, pub6);
    const ep = mode === 'ipv6' ? (pub6 ? `[${formatIP(pub6)}]:${port}` : undefined) : pub4 ? `${formatIP(pub4)}:${port}` : undefined;
    if (!ep) {
      skip(`no public IPv${mode === 'ipv6' ? 6 : 4} for its endpoint`);
      return out;
    }
    const subnets = [...(typeof v4 === 'object' ? [lease.subnet] : []), ...(typeof v6 === 'object' ? [lease.ipv6Subnet!] : [])];
    this.o.logger.info(`Subnet(s) added: ${subnets.map(formatNet).join(' ')} via ${ep}`);
    out.push({ dev, peer: this.peerConfig(data.publicKey, ep, subnets) });
    return out;
  }

  /** Go's selectMode: v4 unless the peer has a v6 address and only v6 looks publicly reachable. */
  private selectMode(ip4: IP | undefined, ip6: IP | undefined): 'ipv4' | 'ipv6' {
    if (!ip6) return 'ipv4';
    if (ip4 && !isPrivate(ip4) && this.o.extAddr) return 'ipv4';
    if (!isPrivate(ip6) && this.o.extV6Addr && !isPrivate(this.o.extV6Addr)) return 'ipv6';
    return 'ipv4';
  }
}
