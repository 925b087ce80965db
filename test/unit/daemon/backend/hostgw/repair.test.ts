// host-gw continuous repair on the fake kernel with its watch() on: a route of a live lease deleted or
// changed behind the daemon's back is written again at once, a route of ours no lease has is removed,
// each once in the log and counted.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeKernel } from '../../../../../shared/kernel/fake/fake-kernel.js';
import { parseIP, parseNet } from '../../../../../shared/net/ip.js';
import type { ExternalInterface } from '../../../../../daemon/backend/backend.js';
import { createHostgwBackend } from '../../../../../daemon/backend/hostgw/hostgw.js';
import type { HostgwNetwork } from '../../../../../daemon/backend/hostgw/network.js';
import type { Lease } from '../../../../../daemon/lease.js';
import { metricValue } from '../../../../../daemon/metrics/metrics.js';
import { FakeSubnetManager, linesLogger } from '../../../../helpers/fake-subnet-manager.js';
import { until, IN_PROCESS } from '../../../../helpers/until.js';

const EXT: ExternalInterface = { iface: { name: 'eth0', index: 2, mtu: 1500 }, ifaceAddr: parseIP('192.168.100.1'), extAddr: parseIP('192.168.100.1') };

let kernel: FakeKernel;
let manager: FakeSubnetManager;
let logs: string[];
const controllers: AbortController[] = [];

const hgw = (subnet: string, publicIP: string): Lease => ({
  enableIPv4: true,
  enableIPv6: false,
  subnet: parseNet(subnet),
  attrs: { publicIP: parseIP(publicIP), backendType: 'host-gw' },
  expiration: Date.now() + 86_400_000,
});
const ns = () => kernel.world.namespaces.get('/')!;
const routeTo = (dst: string) => ns().routes.find((r) => r.dst === dst);

beforeEach(async () => {
  kernel = new FakeKernel();
  kernel.world.watchable = true;
  manager = new FakeSubnetManager('10.10.16.0/20');
  logs = [];
  await kernel.batch([
    { op: 'addBridge', name: 'eth0' },
    { op: 'addAddr', dev: 'eth0', cidr: '192.168.100.1/24' },
    { op: 'setLinkUp', dev: 'eth0' },
  ]);
});

afterEach(() => {
  for (const ac of controllers.splice(0)) ac.abort();
});

async function running(): Promise<HostgwNetwork> {
  const ac = new AbortController();
  controllers.push(ac);
  const deps = { subnetManager: manager, extIface: EXT, kernel, stateDir: '/nonexistent', logger: linesLogger(logs) };
  const nw = (await createHostgwBackend(deps).registerNetwork(ac.signal, { enableIPv4: true, enableIPv6: false, backend: { Type: 'host-gw' }, network: parseNet('10.10.0.0/16') })) as HostgwNetwork;
  void nw.run(ac.signal);
  manager.push([{ type: 'added', lease: hgw('10.10.32.0/20', '192.168.100.2') }, { type: 'added', lease: hgw('10.10.48.0/20', '192.168.100.3') }]);
  await nw.firstSync;
  return nw;
}

describe('host-gw repair on kernel events', () => {
  it('restores a deleted route (Go’s "Route recovered" line), logged once while it flaps, counted each time', async () => {
    await running();
    const before = await metricValue('flannel_repairs_total', { kind: 'route', action: 'restored' });
    for (let i = 0; i < 2; i++) {
      await kernel.batch([{ op: 'deleteRoute', route: { dst: '10.10.32.0/20', dev: 'eth0' } }]);
      await until(() => routeTo('10.10.32.0/20')?.via === '192.168.100.2', `the route restored (${i})`, IN_PROCESS);
    }
    expect(logs.filter((l) => l === 'Route recovered 10.10.32.0/20 : 192.168.100.2')).toHaveLength(1);
    expect(await metricValue('flannel_repairs_total', { kind: 'route', action: 'restored' })).toBe(before + 2);
  });

  it('corrects a route whose gateway was changed', async () => {
    await running();
    await kernel.batch([{ op: 'replaceRoute', route: { dst: '10.10.48.0/20', via: '192.168.100.99', dev: 'eth0' } }]);
    await until(() => routeTo('10.10.48.0/20')?.via === '192.168.100.3', 'the gateway corrected', IN_PROCESS);
    expect(logs).toContain('Repaired route 10.10.48.0/20 via 192.168.100.3 dev eth0 (was via 192.168.100.99 dev eth0)');
  });

  it('removes a route of ours that no lease has, also one whose lease went away', async () => {
    await running();
    await kernel.batch([{ op: 'replaceRoute', route: { dst: '10.10.80.0/20', via: '192.168.100.8', dev: 'eth0' } }]);
    await until(() => routeTo('10.10.80.0/20') === undefined, 'the stray route removed', IN_PROCESS);
    expect(logs).toContain('Removed stale route 10.10.80.0/20 via 192.168.100.8 dev eth0 (no lease has it)');
    manager.push([{ type: 'removed', lease: hgw('10.10.32.0/20', '192.168.100.2') }]);
    await until(() => routeTo('10.10.32.0/20') === undefined, 'the removed lease’s route gone', IN_PROCESS);
    await kernel.batch([{ op: 'replaceRoute', route: { dst: '10.10.32.0/20', via: '192.168.100.2', dev: 'eth0' } }]);
    await until(() => routeTo('10.10.32.0/20') === undefined, 'the re-added route of a removed lease removed', IN_PROCESS);
    // an operator's route of another shape stays
    await kernel.batch([{ op: 'replaceRoute', route: { dst: '10.10.96.0/24', via: '192.168.100.9', dev: 'eth0' } }]);
    await kernel.batch([{ op: 'deleteRoute', route: { dst: '10.10.48.0/20', dev: 'eth0' } }]);
    await until(() => routeTo('10.10.48.0/20') !== undefined, 'a later repair round', IN_PROCESS);
    expect(routeTo('10.10.96.0/24')).toBeDefined();
  });
});
