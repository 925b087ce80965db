// One WireGuard device (flannel-wg, flannel-wg-v6): kernel WireGuard (`ip link add type wireguard`,
// configured with `wg`) or a supervised wireguard-go (configured through its UAPI socket).
//
// As Go (device.go): an existing device is deleted and re-created; the private key and listen port are
// set with ReplacePeers; once the lease is known the device gets `<subnet.IP>/32` (v6: /128), is set
// up, and the whole flannel Network is routed through it (`scope link`, RouteReplace). The device is
// deleted when flanneld exits. A userspace device that dies with its wireguard-go is re-created by the
// supervisor; `setup()` then writes all of the above again and the network re-applies every peer.
import type { Kernel, KernelOp } from '../../../shared/kernel/kernel.js';
import { errorMessage, type Logger } from '../../../shared/log.js';
import { formatIP, formatNet, type IP, type IPNet } from '../../../shared/net/ip.js';
import type { DeviceConfig, WgControl } from './control.js';
import type { WgKey } from './keys.js';
import { WireguardGo } from './userspace.js';

/** What is running the WireGuard devices of this host. */
export type WgImplementation = { kind: 'kernel' } | { kind: 'userspace'; binary: string; socketDir?: string };

export interface WgDeviceOptions {
  name: string;
  listenPort: number;
  /** the device MTU (underlay − 80) */
  mtu: number;
  privateKey: WgKey;
  kernel: Kernel;
  control: WgControl;
  impl: WgImplementation;
  logger: Logger;
  /** after wireguard-go was restarted and setup() ran again: re-apply the peers */
  onRecreated?: () => Promise<void>;
  /** serializes the restart work with the lease batches (LeaseLoop.serial) */
  serial?: (f: () => Promise<void>) => Promise<void>;
}

/** The address and route a device carries for one family (Configure / ConfigureV6). */
export interface LocalNet {
  /** our subnet's first address: the device address, /32 or /128 */
  ip: IP;
  /** the flannel Network (or IPv6Network): routed through the device */
  network: IPNet;
}

export class WgDevice {
  private readonly local: LocalNet[] = [];
  private userspace: WireguardGo | undefined;

  constructor(readonly o: WgDeviceOptions) {}

  get name(): string {
    return this.o.name;
  }

  /** The supervised wireguard-go's PID (userspace only). */
  get pid(): number | undefined {
    return this.userspace?.pid;
  }

  get restarts(): number {
    return this.userspace?.restartCount ?? 0;
  }

  /** ensureLink + the first ConfigureDevice: a fresh device with our key and port, no peers. */
  async create(): Promise<void> {
    const { kernel, name, mtu, impl } = this.o;
    const existing = await kernel.getLink(name);
    if (existing) {
      this.o.logger.warn(`${JSON.stringify(name)} already exists; recreating device`);
      await kernel.deleteLink(name, { missingOk: true });
    }
    if (impl.kind === 'kernel') {
      try {
        await kernel.batch([{ op: 'addWireguard', name, mtu }]);
      } catch (err) {
        throw new Error(`could not create wireguard interface: ${errorMessage(err)}`, { cause: err });
      }
    } else {
      this.userspace = new WireguardGo({
        binary: impl.binary,
        dev: name,
        logger: this.o.logger,
        ...(impl.socketDir !== undefined ? { socketDir: impl.socketDir } : {}),
        onRestart: () => (this.o.serial ?? ((f) => f()))(() => this.recreated()),
      });
      await this.userspace.start();
      await kernel.setLinkMtu(name, mtu);
    }
    await this.configureKey();
  }

  private async configureKey(): Promise<void> {
    const cfg: DeviceConfig = { privateKey: this.o.privateKey, listenPort: this.o.listenPort, replacePeers: true };
    await this.o.control.configure(this.o.name, cfg);
  }

  /** Configure / ConfigureV6: the device address, up, and the Network route through it. */
  async configure(net: LocalNet): Promise<void> {
    this.local.push(net);
    try {
      await this.o.kernel.batch(this.localOps([net]));
    } catch (err) {
      throw new Error(`failed to configure ${this.o.name} for ${formatNet(net.network)}: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** The writes that make the device carry `nets`; replace semantics, so safe to repeat. */
  localOps(nets: readonly LocalNet[] = this.local): KernelOp[] {
    const dev = this.o.name;
    const ops: KernelOp[] = nets.map((n) => ({ op: 'replaceAddr', dev, cidr: `${formatIP(n.ip)}/${n.ip.family === 4 ? 32 : 128}` }));
    ops.push({ op: 'setLinkUp', dev });
    for (const n of nets) ops.push({ op: 'replaceRoute', route: { dst: formatNet(n.network), dev, scope: 'link' } });
    return ops;
  }

  /** Re-writes the Network route(s) (Go re-ensures it with every peer it adds). */
  async ensureRoutes(): Promise<void> {
    await this.o.kernel.batch(this.localOps());
  }

  /** wireguard-go came back: a new TUN device, so everything again, then the peers. */
  private async recreated(): Promise<void> {
    try {
      await this.o.kernel.setLinkMtu(this.o.name, this.o.mtu);
      await this.configureKey();
      await this.o.kernel.batch(this.localOps());
      await this.o.onRecreated?.();
    } catch (err) {
      this.o.logger.error(`re-configuring ${this.o.name} after wireguard-go restarted: ${errorMessage(err)}`);
    }
  }

  /** The device goes (Go: removed on exit, the only backend that cleans up). */
  async remove(): Promise<void> {
    await this.userspace?.stop();
    try {
      await this.o.kernel.deleteLink(this.o.name, { missingOk: true });
      this.o.logger.info(`Removed wireguard device ${this.o.name}`);
    } catch (err) {
      this.o.logger.error(`Error while removing device: could not remove wireguard device: ${errorMessage(err)}`);
    }
  }
}
