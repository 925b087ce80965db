// The wireguard backend (flannel's pkg/backend/wireguard): an encrypted fabric. Every host has a
// WireGuard device whose peers are the other hosts (one per lease, AllowedIPs = the lease's subnet,
// Endpoint = its PublicIP:Port), and the whole flannel Network is routed through the device; WireGuard
// picks the peer by destination. See config.ts (config and lease data), keys.ts (the persisted key),
// device.ts (the device, kernel or userspace), network.ts (peers from leases).
//
// Kernel or userspace: we try `ip link add type wireguard` first; a kernel without WireGuard refuses
// it and we run wireguard-go instead (supervised: userspace.ts). Which one is in use is logged once at
// start. Neither available: registration fails saying what to install.
//
// Where we differ from Go: the key file defaults to <data dir>/wgkey (Go: /run/flannel/wgkey;
// WIREGUARD_KEY_FILE overrides both) and is 0600 (Go 0400); userspace WireGuard is supported (Go needs
// the kernel module); see network.ts for the peer handling.
import { errorMessage } from '../../../shared/log.js';
import { netIP } from '../../../shared/net/ip.js';
import type { LeaseAttrs } from '../../lease.js';
import { acquireLeaseFor, type Backend, type BackendDeps, type BackendNetworkConfig, type Network } from '../backend.js';
import { underlayNetworks } from '../peer-guard.js';
import { BACKEND_TYPE, DEV_V4, DEV_V6, leaseData, OVERHEAD, parseWireguardConfig } from './config.js';
import { UAPI_SOCKET_DIR, UapiControl, WgToolControl, type WgControl } from './control.js';
import { WgDevice, type WgImplementation } from './device.js';
import { keyFilePath, loadOrCreateKey } from './keys.js';
import { WireguardNetwork } from './network.js';
import { findExecutable, userspaceImplementation } from './userspace.js';

export interface WireguardBackendOptions {
  /** which implementation to use; default: probe the kernel, then wireguard-go */
  choose?: (deps: BackendDeps) => Promise<{ impl: WgImplementation; control: WgControl }>;
  env?: NodeJS.ProcessEnv;
}

export function createWireguardBackend(deps: BackendDeps, opts: WireguardBackendOptions = {}): WireguardBackend {
  return new WireguardBackend(deps, opts);
}

/**
 * Kernel WireGuard if `ip link add type wireguard` works here (the probe device is deleted at once),
 * and `wg` is installed to configure it; else wireguard-go. Logs which, once.
 */
export async function chooseImplementation(deps: BackendDeps, env: NodeJS.ProcessEnv = process.env): Promise<{ impl: WgImplementation; control: WgControl }> {
  const { kernel, logger } = deps;
  const probe = `flannel-wgprobe`;
  let kernelError: string;
  try {
    await kernel.batch([{ op: 'addWireguard', name: probe }]);
    await kernel.deleteLink(probe, { missingOk: true });
    const wg = await findExecutable('wg', env.PATH);
    if (!wg) throw new Error('the kernel has WireGuard, but the `wg` tool that configures it is missing: install wireguard-tools');
    logger.info(`wireguard: using kernel WireGuard, configured with ${wg}`);
    return { impl: { kind: 'kernel' }, control: new WgToolControl() };
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('the kernel has WireGuard')) throw err;
    kernelError = errorMessage(err);
  }
  const name = userspaceImplementation(env);
  const binary = await findExecutable(name, env.PATH);
  if (!binary) {
    throw new Error(
      `WireGuard is not available: the kernel has no WireGuard (ip link add type wireguard: ${kernelError}) and ${name} is not installed; ` +
        'install wireguard-go (userspace WireGuard, e.g. `apt install wireguard-go`) or use a kernel with WireGuard (`modprobe wireguard`)',
    );
  }
  logger.info(`wireguard: the kernel has no WireGuard (${kernelError}); using userspace ${binary}, configured through ${UAPI_SOCKET_DIR}/<device>.sock`);
  return { impl: { kind: 'userspace', binary }, control: new UapiControl() };
}

export class WireguardBackend implements Backend {
  constructor(
    private readonly deps: BackendDeps,
    private readonly opts: WireguardBackendOptions = {},
  ) {}

  async registerNetwork(signal: AbortSignal, config: BackendNetworkConfig): Promise<Network> {
    const { extIface, kernel, subnetManager, logger } = this.deps;
    const cfg = parseWireguardConfig(config.backend, extIface.iface.mtu);
    const env = this.opts.env ?? process.env;
    const { privateKey, publicKey, created } = await loadOrCreateKey(keyFilePath(this.deps.stateDir, env));
    logger.info(`wireguard: ${created ? 'generated a new' : 'using the stored'} key (public key ${publicKey.toString()}); Mode=${cfg.mode} ListenPort=${cfg.listenPort} ListenPortV6=${cfg.listenPortV6} MTU=${cfg.mtu - OVERHEAD}`);
    const { impl, control } = await (this.opts.choose ?? ((d) => chooseImplementation(d, env)))(this.deps);

    let nw: WireguardNetwork | undefined;
    const devices: WgDevice[] = [];
    const newDev = async (name: string, listenPort: number): Promise<WgDevice> => {
      const dev: WgDevice = new WgDevice({
        name,
        listenPort,
        mtu: cfg.mtu - OVERHEAD,
        privateKey,
        kernel,
        control,
        impl,
        logger,
        serial: (f) => (nw ? nw.serial(f) : f()),
        onRecreated: async () => {
          await nw?.reapply(dev);
        },
      });
      devices.push(dev);
      await dev.create();
      return dev;
    };
    try {
      let dev: WgDevice | undefined;
      let v6Dev: WgDevice | undefined;
      if (cfg.mode === 'separate') {
        if (config.enableIPv4) dev = await newDev(DEV_V4, cfg.listenPort);
        if (config.enableIPv6) v6Dev = await newDev(DEV_V6, cfg.listenPortV6);
      } else {
        dev = await newDev(DEV_V4, cfg.listenPort);
      }

      const attrs: LeaseAttrs = { publicIP: extIface.extAddr ?? { family: 4, value: 0n }, backendType: BACKEND_TYPE };
      if (extIface.extV6Addr) attrs.publicIPv6 = extIface.extV6Addr;
      if (config.enableIPv4) attrs.backendData = leaseData(publicKey, cfg.listenPort);
      if (config.enableIPv6) attrs.backendV6Data = leaseData(publicKey, cfg.listenPortV6);
      const lease = await acquireLeaseFor(subnetManager, attrs, signal);

      if (config.enableIPv4) {
        if (!lease.enableIPv4 || !config.network) throw new Error('failed to configure wg interface: IPv4 is enabled but the lease has no IPv4');
        await dev!.configure({ ip: netIP(lease.subnet), network: config.network });
      }
      if (config.enableIPv6) {
        if (!lease.ipv6Subnet || !config.ipv6Network) throw new Error('failed to configure wg interface: IPv6 is enabled but the lease has no IPv6');
        await (cfg.mode === 'separate' ? v6Dev! : dev!).configure({ ip: netIP(lease.ipv6Subnet), network: config.ipv6Network });
      }

      nw = new WireguardNetwork({
        subnetManager,
        kernel,
        logger,
        lease,
        mode: cfg.mode,
        ...(dev ? { dev } : {}),
        ...(v6Dev ? { v6Dev } : {}),
        mtu: cfg.mtu - OVERHEAD,
        enableIPv4: config.enableIPv4,
        enableIPv6: config.enableIPv6,
        ...(config.network ? { network: config.network } : {}),
        ...(config.ipv6Network ? { ipv6Network: config.ipv6Network } : {}),
        ...(cfg.psk ? { psk: cfg.psk } : {}),
        keepalive: cfg.keepalive,
        publicKey,
        ...(extIface.extAddr ? { extAddr: extIface.extAddr } : {}),
        ...(extIface.extV6Addr ? { extV6Addr: extIface.extV6Addr } : {}),
        ownAddrs: [extIface.ifaceAddr, extIface.ifaceV6Addr],
        underlay: await underlayNetworks(kernel, extIface.iface.name, (m) => logger.warn(m)),
      });
      return nw;
    } catch (err) {
      // nothing of ours stays behind a failed registration (flanneld exits 1)
      for (const d of devices) await d.remove();
      throw err;
    }
  }
}
