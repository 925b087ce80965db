// The wireguard backend against the fake kernel and a fake WireGuard control (what wgctrl would be
// told): devices, MTU, address and Network route as Go's Configure; one peer per lease with
// AllowedIPs = its subnet and Endpoint = PublicIP:Port; peers removed with their lease; refused leases
// (our key, a key another peer has); the devices deleted when the network stops; a clear error when
// neither kernel WireGuard nor wireguard-go is available.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeKernel } from '../../../../../shared/kernel/fake/fake-kernel.js';
import { parseIP, parseNet } from '../../../../../shared/net/ip.js';
import type { ExternalInterface } from '../../../../../daemon/backend/backend.js';
import type { Lease, LeaseEvent } from '../../../../../daemon/lease.js';
import { chooseImplementation, createWireguardBackend } from '../../../../../daemon/backend/wireguard/wireguard.js';
import type { WireguardNetwork } from '../../../../../daemon/backend/wireguard/network.js';
import type { DeviceConfig, WgControl } from '../../../../../daemon/backend/wireguard/control.js';
import { WgKey } from '../../../../../daemon/backend/wireguard/keys.js';
import { FakeSubnetManager, linesLogger } from '../../../../helpers/fake-subnet-manager.js';
import { until, IN_PROCESS } from '../../../../helpers/until.js';

const EXT: ExternalInterface = {
  iface: { name: 'eth0', index: 2, mtu: 1500 },
  ifaceAddr: parseIP('192.168.100.1'),
  extAddr: parseIP('192.168.100.1'),
  ifaceV6Addr: parseIP('fd00:100::1'),
  extV6Addr: parseIP('fd00:100::1'),
};
const KEY2 = WgKey.generatePrivate().publicKey().toString();
const KEY3 = WgKey.generatePrivate().publicKey().toString();

/** A WireGuard device table as the kernel or wireguard-go would keep it. */
interface FakeDev {
  privateKey?: string;
  listenPort?: number;
  peers: Map<string, { endpoint?: string; allowedIPs: string[] }>;
}
class FakeControl implements WgControl {
  readonly kind = 'fake';
  readonly devs = new Map<string, FakeDev>();
  readonly calls: DeviceConfig[] = [];
  async configure(dev: string, cfg: DeviceConfig): Promise<void> {
    this.calls.push(cfg);
    const d: FakeDev = this.devs.get(dev) ?? { peers: new Map() };
    this.devs.set(dev, d);
    if (cfg.privateKey) d.privateKey = cfg.privateKey.toString();
    if (cfg.listenPort !== undefined) d.listenPort = cfg.listenPort;
    if (cfg.replacePeers) d.peers.clear();
    for (const p of cfg.peers ?? []) {
      if (p.remove) d.peers.delete(p.publicKey.toString());
      else d.peers.set(p.publicKey.toString(), { ...(p.endpoint ? { endpoint: p.endpoint } : {}), allowedIPs: p.allowedIPs ?? [] });
    }
  }
  async peers(dev: string): Promise<Array<{ publicKey: string; endpoint?: string; allowedIPs: string[] }>> {
    return [...(this.devs.get(dev)?.peers ?? new Map())].map(([publicKey, p]) => ({ publicKey, ...p }));
  }
}

function wgLease(subnet: string, publicIP: string, key: string, v6?: { subnet: string; ip: string }): Lease {
  return {
    enableIPv4: true,
    enableIPv6: !!v6,
    subnet: parseNet(subnet),
    ...(v6 ? { ipv6Subnet: parseNet(v6.subnet) } : {}),
    attrs: {
      publicIP: parseIP(publicIP),
      ...(v6 ? { publicIPv6: parseIP(v6.ip), backendV6Data: { PublicKey: key, Port: 51821 } } : {}),
      backendType: 'wireguard',
      backendData: { PublicKey: key, Port: 51820 },
    },
    expiration: Date.now() + 86_400_000,
  };
}

let kernel: FakeKernel;
let manager: FakeSubnetManager;
let control: FakeControl;
let logs: string[];
let ac: AbortController;
let run: Promise<void> | undefined;
let stateDir: string;

beforeEach(async () => {
  kernel = new FakeKernel();
  manager = new FakeSubnetManager('10.244.16.0/24', 'fd10:244:0:10::/64');
  control = new FakeControl();
  logs = [];
  ac = new AbortController();
  run = undefined;
  stateDir = mkdtempSync(join(tmpdir(), 'h9-wg-unit-'));
  await kernel.batch([
    { op: 'addBridge', name: 'eth0' },
    { op: 'addAddr', dev: 'eth0', cidr: '192.168.100.1/24' },
    { op: 'setLinkUp', dev: 'eth0' },
  ]);
});

afterEach(async () => {
  ac.abort();
  await run;
  rmSync(stateDir, { recursive: true, force: true });
});

async function start(backend: Record<string, unknown> = { Type: 'wireguard' }, dual = false): Promise<WireguardNetwork> {
  const be = createWireguardBackend(
    { subnetManager: manager, extIface: dual ? EXT : { ...EXT, ifaceV6Addr: undefined, extV6Addr: undefined } as ExternalInterface, kernel, stateDir, logger: linesLogger(logs) },
    { choose: async () => ({ impl: { kind: 'kernel' }, control }), env: {} },
  );
  const nw = (await be.registerNetwork(ac.signal, {
    enableIPv4: true,
    enableIPv6: dual,
    backend,
    network: parseNet('10.244.0.0/16'),
    ...(dual ? { ipv6Network: parseNet('fd10:244::/56') } : {}),
  })) as WireguardNetwork;
  run = nw.run(ac.signal);
  return nw;
}

async function push(nw: WireguardNetwork, batch: LeaseEvent[]): Promise<void> {
  manager.push(batch);
  await until(() => manager.queued === 0, 'the batch to be taken', IN_PROCESS);
  await new Promise((r) => setTimeout(r, 0));
  await nw.idle();
}

describe('the wireguard backend', () => {
  it("creates flannel-wg as Go: MTU underlay − 80, our key and port, <subnet.IP>/32, up, the Network routed through it", async () => {
    const nw = await start();
    const link = await kernel.getLink('flannel-wg');
    expect(link).toMatchObject({ kind: 'wireguard', mtu: 1420, up: true });
    expect(nw.mtu()).toBe(1420);
    expect((await kernel.listAddrs({ dev: 'flannel-wg' })).map((a) => a.cidr)).toEqual(['10.244.16.0/32']);
    expect(await kernel.listRoutes({ dev: 'flannel-wg' })).toEqual([expect.objectContaining({ dst: '10.244.0.0/16', scope: 'link' })]);
    expect(control.devs.get('flannel-wg')).toMatchObject({ listenPort: 51820 });
    const pub = WgKey.parse(control.devs.get('flannel-wg')!.privateKey!).publicKey().toString();
    expect(manager.acquired[0]).toMatchObject({ backendType: 'wireguard', backendData: { PublicKey: pub, Port: 51820 } });
    expect(manager.acquired[0]!.backendV6Data).toBeUndefined();
    expect(logs.join('\n')).not.toContain(control.devs.get('flannel-wg')!.privateKey!);
  });

  it('adds one peer per lease (AllowedIPs its subnet, Endpoint PublicIP:Port) and removes it with the lease', async () => {
    const nw = await start({ Type: 'wireguard', PersistentKeepaliveInterval: 25 });
    const l2 = wgLease('10.244.57.0/24', '192.168.100.2', KEY2);
    const l3 = wgLease('10.244.83.0/24', '192.168.100.3', KEY3);
    await push(nw, [{ type: 'added', lease: l2 }, { type: 'added', lease: l3 }]);
    const peers = control.devs.get('flannel-wg')!.peers;
    expect(peers.get(KEY2)).toEqual({ endpoint: '192.168.100.2:51820', allowedIPs: ['10.244.57.0/24'] });
    expect(peers.get(KEY3)).toEqual({ endpoint: '192.168.100.3:51820', allowedIPs: ['10.244.83.0/24'] });
    expect(control.calls.at(-1)!.peers!.every((p) => p.keepalive === 25)).toBe(true);
    await push(nw, [{ type: 'removed', lease: l2 }]);
    expect([...peers.keys()]).toEqual([KEY3]);
  });

  it('refuses a lease that claims our key or a key a live peer has', async () => {
    const nw = await start();
    const ours = WgKey.parse(control.devs.get('flannel-wg')!.privateKey!).publicKey().toString();
    await push(nw, [
      { type: 'added', lease: wgLease('10.244.57.0/24', '192.168.100.2', KEY2) },
      { type: 'added', lease: wgLease('10.244.60.0/24', '192.168.100.6', ours) },
      { type: 'added', lease: wgLease('10.244.61.0/24', '192.168.100.7', KEY2) },
    ]);
    expect([...control.devs.get('flannel-wg')!.peers.keys()]).toEqual([KEY2]);
    expect(control.devs.get('flannel-wg')!.peers.get(KEY2)!.allowedIPs).toEqual(['10.244.57.0/24']);
  });

  it('dual stack, Mode separate: flannel-wg-v6 on ListenPortV6 carries the v6 peer at [PublicIPv6]:Port', async () => {
    const nw = await start({ Type: 'wireguard' }, true);
    expect(await kernel.getLink('flannel-wg-v6')).toMatchObject({ mtu: 1420, up: true });
    expect(control.devs.get('flannel-wg-v6')).toMatchObject({ listenPort: 51821 });
    expect(await kernel.listRoutes({ family: 6, dev: 'flannel-wg-v6' })).toEqual([expect.objectContaining({ dst: 'fd10:244::/56' })]);
    expect(manager.acquired[0]!.backendV6Data).toMatchObject({ Port: 51821 });
    await push(nw, [{ type: 'added', lease: wgLease('10.244.57.0/24', '192.168.100.2', KEY2, { subnet: 'fd10:244:0:39::/64', ip: 'fd00:100::2' }) }]);
    expect(control.devs.get('flannel-wg')!.peers.get(KEY2)).toEqual({ endpoint: '192.168.100.2:51820', allowedIPs: ['10.244.57.0/24'] });
    expect(control.devs.get('flannel-wg-v6')!.peers.get(KEY2)).toEqual({ endpoint: '[fd00:100::2]:51821', allowedIPs: ['fd10:244:0:39::/64'] });
  });

  it('Mode auto: one device, one peer with both subnets', async () => {
    const nw = await start({ Type: 'wireguard', Mode: 'auto' }, true);
    expect(await kernel.getLink('flannel-wg-v6')).toBeUndefined();
    await push(nw, [{ type: 'added', lease: wgLease('10.244.57.0/24', '192.168.100.2', KEY2, { subnet: 'fd10:244:0:39::/64', ip: 'fd00:100::2' }) }]);
    expect(control.devs.get('flannel-wg')!.peers.get(KEY2)).toEqual({ endpoint: '192.168.100.2:51820', allowedIPs: ['10.244.57.0/24', 'fd10:244:0:39::/64'] });
  });

  it('deletes its devices when it stops (Go: the only backend that cleans up)', async () => {
    await start({ Type: 'wireguard' }, true);
    ac.abort();
    await run;
    expect(await kernel.getLink('flannel-wg')).toBeUndefined();
    expect(await kernel.getLink('flannel-wg-v6')).toBeUndefined();
    expect(logs).toContain('Removed wireguard device flannel-wg');
  });

  it('re-creates an existing device, as Go', async () => {
    await kernel.batch([{ op: 'addWireguard', name: 'flannel-wg', mtu: 9000 }]);
    await start();
    expect(await kernel.getLink('flannel-wg')).toMatchObject({ mtu: 1420 });
    expect(logs).toContain('"flannel-wg" already exists; recreating device');
  });
});

describe('choosing kernel or userspace WireGuard', () => {
  const deps = (k: FakeKernel, lines: string[]) => ({ subnetManager: manager, extIface: EXT, kernel: k, stateDir: '/nonexistent', logger: linesLogger(lines) });

  it('uses wireguard-go when the kernel refuses a wireguard link, and says so', async () => {
    kernel.world.failOn('addWireguard', 'EOPNOTSUPP');
    const lines: string[] = [];
    const c = await chooseImplementation(deps(kernel, lines), { PATH: '/bin:/usr/bin', WG_QUICK_USERSPACE_IMPLEMENTATION: '/bin/true' });
    expect(c.impl).toEqual({ kind: 'userspace', binary: '/bin/true' });
    expect(lines.join('\n')).toMatch(/the kernel has no WireGuard \(.*\); using userspace \/bin\/true/);
  });

  it('fails saying what to install when neither is there', async () => {
    kernel.world.failOn('addWireguard', 'EOPNOTSUPP');
    await expect(chooseImplementation(deps(kernel, []), { PATH: '/nonexistent' })).rejects.toThrow(
      /WireGuard is not available: the kernel has no WireGuard .* and wireguard-go is not installed; install wireguard-go/,
    );
  });

  it('uses kernel WireGuard when the kernel has it (probe link removed)', async () => {
    const lines: string[] = [];
    const c = await chooseImplementation(deps(kernel, lines), { PATH: '/usr/bin:/bin' });
    expect(c.impl).toEqual({ kind: 'kernel' });
    expect(await kernel.getLink('flannel-wgprobe')).toBeUndefined();
    expect(lines.join('\n')).toMatch(/using kernel WireGuard, configured with \S*wg/);
  });
});
