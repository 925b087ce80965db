// The ipip backend against the fake kernel (no CONFIG_NET_IPIP here, so not proven on a real kernel):
// flannel.ipip with our local address, MTU − 20, <subnet.IP>/32, up; per peer `<subnet> via <PublicIP>
// dev flannel.ipip onlink` (DirectRouting: via the external interface for an L2 neighbour); the lease
// {PublicIP, BackendType:"ipip"}; a kernel without the ipip module is one clear error; IPv6 refused.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeKernel } from '../../../../../shared/kernel/fake/fake-kernel.js';
import { parseIP, parseNet } from '../../../../../shared/net/ip.js';
import type { ExternalInterface } from '../../../../../daemon/backend/backend.js';
import { createIpipBackend, type IpipNetwork } from '../../../../../daemon/backend/ipip/ipip.js';
import { marshalLeaseAttrs } from '../../../../../daemon/subnet/lease-json.js';
import type { LeaseEvent } from '../../../../../daemon/lease.js';
import { FakeSubnetManager, linesLogger, vxlanLease } from '../../../../helpers/fake-subnet-manager.js';
import { IN_PROCESS, until } from '../../../../helpers/until.js';

const EXT: ExternalInterface = {
  iface: { name: 'eth0', index: 2, mtu: 1500 },
  ifaceAddr: parseIP('192.168.100.1'),
  extAddr: parseIP('192.168.100.1'),
};

let kernel: FakeKernel;
let manager: FakeSubnetManager;
let logs: string[];
let ac: AbortController;
let run: Promise<void> | undefined;

beforeEach(async () => {
  kernel = new FakeKernel();
  manager = new FakeSubnetManager('10.10.16.0/20');
  logs = [];
  ac = new AbortController();
  run = undefined;
  await kernel.batch([
    { op: 'addBridge', name: 'eth0' },
    { op: 'addAddr', dev: 'eth0', cidr: '192.168.100.1/24' },
    { op: 'setLinkUp', dev: 'eth0' },
  ]);
});

afterEach(async () => {
  ac.abort();
  await run;
});

async function start(backend: Record<string, unknown> = { Type: 'ipip' }, ipipAvailable = async () => true): Promise<IpipNetwork> {
  const nw = (await createIpipBackend({ subnetManager: manager, extIface: EXT, kernel, stateDir: '/nonexistent', logger: linesLogger(logs) }, { ipipAvailable }).registerNetwork(ac.signal, {
    enableIPv4: true,
    enableIPv6: false,
    backend,
    network: parseNet('10.10.0.0/16'),
  })) as IpipNetwork;
  nw.timing.checkInterval = 0;
  run = nw.run(ac.signal);
  return nw;
}

async function push(nw: IpipNetwork, batch: LeaseEvent[]): Promise<void> {
  manager.push(batch);
  await until(() => manager.queued === 0, 'the batch to be taken', IN_PROCESS);
  await new Promise((r) => setTimeout(r, 0));
  await nw.idle();
}

const ipipLease = (subnet: string, ip: string) => vxlanLease(subnet, ip, undefined, 'ipip');

describe('the ipip backend', () => {
  it('creates flannel.ipip as Go: MTU − 20, <subnet.IP>/32, up; FLANNEL_MTU is the device MTU; the lease is {PublicIP, BackendType}', async () => {
    const nw = await start();
    expect(await kernel.getLink('flannel.ipip')).toMatchObject({ kind: 'ipip', mtu: 1480, up: true });
    expect((await kernel.listAddrs({ dev: 'flannel.ipip' })).map((a) => a.cidr)).toEqual(['10.10.16.0/32']);
    expect(nw.mtu()).toBe(1480);
    expect(marshalLeaseAttrs(manager.acquired[0]!)).toBe('{"PublicIP":"192.168.100.1","PublicIPv6":null,"BackendType":"ipip"}');
  });

  it('routes each peer subnet via its PublicIP through the tunnel, onlink, and removes it with the lease', async () => {
    const nw = await start();
    const peer = ipipLease('10.10.32.0/20', '10.99.0.2');
    await push(nw, [{ type: 'added', lease: peer }, { type: 'added', lease: vxlanLease('10.10.48.0/20', '10.99.0.3', '0e:00:00:00:00:03') }]);
    const routes = await kernel.listRoutes({ family: 4 });
    expect(routes).toContainEqual(expect.objectContaining({ dst: '10.10.32.0/20', via: '10.99.0.2', dev: 'flannel.ipip', onlink: true }));
    expect(routes.find((r) => r.dst === '10.10.48.0/20')).toBeUndefined(); // a vxlan lease is ignored
    await push(nw, [{ type: 'removed', lease: peer }]);
    expect((await kernel.listRoutes({ family: 4 })).find((r) => r.dst === '10.10.32.0/20')).toBeUndefined();
  });

  it('with DirectRouting, a peer on our L2 segment is routed via the external interface, like host-gw', async () => {
    const nw = await start({ Type: 'ipip', DirectRouting: true });
    await push(nw, [{ type: 'added', lease: ipipLease('10.10.32.0/20', '192.168.100.2') }, { type: 'added', lease: ipipLease('10.10.48.0/20', '10.99.0.3') }]);
    const routes = await kernel.listRoutes({ family: 4 });
    expect(routes).toContainEqual(expect.objectContaining({ dst: '10.10.32.0/20', via: '192.168.100.2', dev: 'eth0' }));
    expect(routes).toContainEqual(expect.objectContaining({ dst: '10.10.48.0/20', via: '10.99.0.3', dev: 'flannel.ipip', onlink: true }));
  });

  it('says in one line that the kernel has no IPIP support when the device cannot be made and the module is missing', async () => {
    kernel.world.failOn('addIpip', 'EOPNOTSUPP');
    await expect(start({ Type: 'ipip' }, async () => false)).rejects.toThrow(
      /^this kernel has no IPIP support \(ip link add type ipip: .*\): load the ipip module or use another backend/,
    );
  });

  it('refuses IPv6 and a non-ipip device in the way', async () => {
    const be = createIpipBackend({ subnetManager: manager, extIface: EXT, kernel, stateDir: '/x', logger: linesLogger(logs) });
    await expect(be.registerNetwork(ac.signal, { enableIPv4: true, enableIPv6: true, backend: {}, network: parseNet('10.10.0.0/16') })).rejects.toThrow(/does not support IPv6/);
    await kernel.batch([{ op: 'addBridge', name: 'flannel.ipip' }]);
    await expect(start()).rejects.toThrow("flannel.ipip isn't an ipip mode device, please remove device and try again");
  });
});
