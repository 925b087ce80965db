// The ipip backend (flannel's pkg/backend/ipip/ipip.go; IPv4 only): IP-in-IP tunnelling over the
// shared route network. One device `flannel.ipip` (`ip link add flannel.ipip type ipip local <iface
// addr>`, remote any), MTU = external MTU − 20, address `<subnet.IP>/32`, up; per peer one route
//     <peer subnet> via <peer PublicIP> dev flannel.ipip onlink
// or, with DirectRouting and a peer on our L2 segment, `via <peer PublicIP> dev <ext iface>` as host-gw.
// The same 10 s route check as host-gw. FLANNEL_MTU = the device MTU. Lease {PublicIP, BackendType}.
//
// Not proven on a real kernel here (this machine's kernel has no CONFIG_NET_IPIP): unit-tested against
// the fake kernel. A kernel without the module makes registration fail with one clear line (flanneld
// exits 1).
//
// Where we differ from Go: an existing flannel.ipip is always re-created (our kernel seam does not read
// back an ipip device's local/remote to tell a compatible one); DirectRouting is decided from the
// IPv4 networks on the external interface (Go asks RouteGet per peer: one route without a gateway).
import { access } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { GoStruct } from '../../../shared/go/json.js';
import type { Kernel } from '../../../shared/kernel/kernel.js';
import { isExists } from '../../../shared/kernel/errors.js';
import { errorMessage, type Logger } from '../../../shared/log.js';
import { formatIP, formatNet, ipEqual, netContains, netIP, tryParseIP, type IP, type IPNet } from '../../../shared/net/ip.js';
import type { Lease, LeaseAttrs } from '../../lease.js';
import type { SubnetManager } from '../../subnet/manager.js';
import { acquireLeaseFor, type Backend, type BackendDeps, type BackendNetworkConfig, type Network } from '../backend.js';
import { LeaseLoop } from '../lease-loop.js';
import { guardFor, underlayNetworks } from '../peer-guard.js';
import { ROUTE_CHECK_INTERVAL, RouteNetwork, type PeerRoute } from '../route-network.js';

export const BACKEND_TYPE = 'ipip';
export const TUNNEL_NAME = 'flannel.ipip';
/** the outer IPv4 header */
export const OVERHEAD = 20;

export interface IpipBackendOptions {
  /** Whether the kernel can have ipip devices: /sys/module/ipip, else `modprobe ipip` (tests replace it). */
  ipipAvailable?: () => Promise<boolean>;
}

export function createIpipBackend(deps: BackendDeps, opts: IpipBackendOptions = {}): IpipBackend {
  return new IpipBackend(deps, opts);
}

/** /sys/module/ipip exists (module loaded or built in), or `modprobe ipip` loads it. */
export async function ipipModuleAvailable(): Promise<boolean> {
  try {
    await access('/sys/module/ipip');
    return true;
  } catch {
    // try to load it
  }
  const ok = await new Promise<boolean>((resolve) => {
    const p = spawn('modprobe', ['ipip'], { stdio: 'ignore' });
    p.on('error', () => resolve(false));
    p.on('close', (code) => resolve(code === 0));
  });
  if (!ok) return false;
  try {
    await access('/sys/module/ipip');
    return true;
  } catch {
    return false;
  }
}

export function parseIpipConfig(raw: Record<string, unknown>): { directRouting: boolean } {
  try {
    return { directRouting: GoStruct.from(raw, 'struct { DirectRouting bool }').bool('DirectRouting', false) };
  } catch (err) {
    throw new Error(`error decoding IPIP backend config: ${(err as Error).message}`, { cause: err });
  }
}

export class IpipBackend implements Backend {
  constructor(
    private readonly deps: BackendDeps,
    private readonly opts: IpipBackendOptions = {},
  ) {}

  async registerNetwork(signal: AbortSignal, config: BackendNetworkConfig): Promise<Network> {
    const { extIface, kernel, subnetManager, logger } = this.deps;
    if (config.enableIPv6) throw new Error('the ipip backend does not support IPv6 (use vxlan or wireguard for IPv6)');
    const cfg = parseIpipConfig(config.backend);
    logger.info(`IPIP config: DirectRouting=${cfg.directRouting}`);
    const ifaceName = JSON.stringify(extIface.iface.name);
    if (!extIface.extAddr || !extIface.ifaceAddr) throw new Error(`failed to find an IPv4 address on ${ifaceName} for the ipip backend`);
    const mtu = extIface.iface.mtu - OVERHEAD;
    if (mtu <= 0) throw new Error(`MTU ${extIface.iface.mtu} of iface ${extIface.iface.name} is too small for ipip mode to work`);

    const attrs: LeaseAttrs = { publicIP: extIface.extAddr, backendType: BACKEND_TYPE };
    const lease = await acquireLeaseFor(subnetManager, attrs, signal);
    if (!config.network) throw new Error('the ipip backend needs the IPv4 Network');

    await this.ensureDevice(kernel, formatIP(extIface.ifaceAddr), mtu);
    try {
      await kernel.batch([
        { op: 'replaceAddr', dev: TUNNEL_NAME, cidr: `${formatIP(netIP(lease.subnet))}/32` },
        { op: 'setLinkUp', dev: TUNNEL_NAME },
      ]);
    } catch (err) {
      throw new Error(`failed to configure ${TUNNEL_NAME}: ${errorMessage(err)}`, { cause: err });
    }
    // Go's EnsureV4AddressOnLink: other addresses of the Network on the device go
    for (const a of await kernel.listAddrs({ dev: TUNNEL_NAME, family: 4 })) {
      const ip = tryParseIP(a.cidr.split('/')[0]!);
      if (ip && !ipEqual(ip, netIP(lease.subnet)) && netContains(config.network, ip)) await kernel.deleteAddr(TUNNEL_NAME, a.cidr, { missingOk: true });
    }

    return new IpipNetwork({
      subnetManager,
      kernel,
      logger,
      lease,
      mtu,
      extIface: extIface.iface.name,
      directRouting: cfg.directRouting,
      network: config.network,
      ownAddrs: [extIface.ifaceAddr],
      underlay: await underlayNetworks(kernel, extIface.iface.name, (m) => logger.warn(m)),
    });
  }

  /** ensureLink: flannel.ipip with our local address; a kernel without ipip is one clear error. */
  private async ensureDevice(kernel: Kernel, local: string, mtu: number): Promise<void> {
    const existing = await kernel.getLink(TUNNEL_NAME);
    if (existing) {
      if (existing.kind !== 'ipip') throw new Error(`${TUNNEL_NAME} isn't an ipip mode device, please remove device and try again`);
      this.deps.logger.info(`${JSON.stringify(TUNNEL_NAME)} already exists; recreating it with local=${local}`);
      await kernel.deleteLink(TUNNEL_NAME, { missingOk: true });
    }
    try {
      await kernel.batch([{ op: 'addIpip', name: TUNNEL_NAME, local, mtu }]);
    } catch (err) {
      if (!isExists(err) && !(await (this.opts.ipipAvailable ?? ipipModuleAvailable)())) {
        throw new Error(
          `this kernel has no IPIP support (ip link add type ipip: ${errorMessage(err)}; no /sys/module/ipip and \`modprobe ipip\` failed): load the ipip module or use another backend (vxlan, host-gw, wireguard)`,
          { cause: err },
        );
      }
      throw new Error(`failed to create ipip interface: ${errorMessage(err)}`, { cause: err });
    }
  }
}

export interface IpipNetworkOptions {
  subnetManager: Pick<SubnetManager, 'watchLeases'>;
  kernel: Kernel;
  logger: Logger;
  lease: Lease;
  mtu: number;
  extIface: string;
  directRouting: boolean;
  network: IPNet;
  ownAddrs?: readonly (IP | undefined)[];
  underlay?: readonly IPNet[];
  checkInterval?: number;
}

/** The ipip network: the shared lease loop over a RouteNetwork with onlink routes through the tunnel. */
export class IpipNetwork implements Network {
  private readonly loop: LeaseLoop;
  private readonly routes: RouteNetwork;
  readonly firstSync: Promise<void>;

  constructor(private readonly o: IpipNetworkOptions) {
    const guard = guardFor({ ...o, enableIPv4: true, enableIPv6: false });
    this.loop = new LeaseLoop({ name: BACKEND_TYPE, subnetManager: o.subnetManager, logger: o.logger, guard });
    this.routes = new RouteNetwork({
      kernel: o.kernel,
      logger: o.logger,
      own: o.lease,
      backendType: BACKEND_TYPE,
      extIface: o.extIface,
      enableIPv4: true,
      enableIPv6: false,
      network: o.network,
      checkEvery: () => this.o.checkInterval ?? ROUTE_CHECK_INTERVAL,
      routeFor: (lease, family) => this.routeFor(lease, family),
    });
    this.firstSync = this.loop.firstSync;
  }

  lease(): Lease {
    return this.o.lease;
  }

  mtu(): number {
    return this.o.mtu;
  }

  get timing(): { checkInterval?: number } {
    return this.o;
  }

  wantedRoutes(): ReturnType<RouteNetwork['wantedRoutes']> {
    return this.routes.wantedRoutes();
  }

  idle(): Promise<void> {
    return this.loop.idle();
  }

  checkRoutes(): Promise<void> {
    return this.loop.serial(() => this.routes.checkRoutes());
  }

  run(signal: AbortSignal): Promise<void> {
    return this.loop.run(signal, this.routes);
  }

  /** `<subnet> via <PublicIP> dev flannel.ipip onlink`, or the direct route for an L2 neighbour. */
  private routeFor(lease: Lease, family: 4 | 6): PeerRoute | string | undefined {
    if (family !== 4 || !lease.enableIPv4) return undefined;
    const gw = lease.attrs.publicIP;
    if (gw.value === 0n || gw.family !== 4) return 'no public IPv4';
    const direct = this.o.directRouting && (this.o.underlay ?? []).some((n) => netContains(n, gw));
    if (direct) return { dst: formatNet(lease.subnet), via: formatIP(gw), dev: this.o.extIface };
    // the spread of a PeerRoute into the replaceRoute op keeps `onlink` (RouteNetwork copies the object)
    const route: PeerRoute & { onlink: true } = { dst: formatNet(lease.subnet), via: formatIP(gw), dev: TUNNEL_NAME, onlink: true };
    return route;
  }
}
