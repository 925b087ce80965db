// host-gw and peers that are not what they claim (issue 9, item 4): a lease inside our own subnet, or
// overlapping a live peer's, from another PublicIP must never be routed (host 1 would route part of its
// own pod subnet away), and its deletion must leave the healthy peers' routes alone.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeKernel } from '../../../../../shared/kernel/fake/fake-kernel.js';
import { parseIP, parseNet } from '../../../../../shared/net/ip.js';
import type { ExternalInterface } from '../../../../../daemon/backend/backend.js';
import { createHostgwBackend } from '../../../../../daemon/backend/hostgw/hostgw.js';
import type { HostgwNetwork } from '../../../../../daemon/backend/hostgw/network.js';
import type { Lease, LeaseEvent } from '../../../../../daemon/lease.js';
import { FakeSubnetManager, linesLogger } from '../../../../helpers/fake-subnet-manager.js';
import { until } from '../../../../helpers/until.js';

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

async function start(): Promise<HostgwNetwork> {
  const nw = (await createHostgwBackend({ subnetManager: manager, extIface: EXT, kernel, stateDir: '/nonexistent', logger: linesLogger(logs) }).registerNetwork(ac.signal, {
    enableIPv4: true,
    enableIPv6: false,
    backend: { Type: 'host-gw' },
    network: parseNet('10.10.0.0/16'),
  })) as HostgwNetwork;
  nw.timing.checkInterval = 0;
  run = nw.run(ac.signal);
  return nw;
}

async function push(nw: HostgwNetwork, batch: LeaseEvent[]): Promise<void> {
  manager.push(batch);
  await until(() => manager.queued === 0, 'the batch to be taken', 2000, 2);
  await new Promise((r) => setTimeout(r, 0));
  await nw.idle();
}

function hgw(subnet: string, publicIP: string): Lease {
  return { enableIPv4: true, enableIPv6: false, subnet: parseNet(subnet), attrs: { publicIP: parseIP(publicIP), backendType: 'host-gw' }, expiration: 0 };
}

const added = (l: Lease): LeaseEvent => ({ type: 'added', lease: l });
const removed = (l: Lease): LeaseEvent => ({ type: 'removed', lease: l });
const peerRoutes = () =>
  kernel.world.namespaces.get('/')!.routes.filter((r) => r.via !== undefined).map((r) => `${r.dst} via ${r.via}`).sort();

const PEER = hgw('10.10.32.0/20', '192.168.100.2');

describe('host-gw: never route into our own subnet nor over a live peer', () => {
  it.each([
    ['a /24 inside our own /20', hgw('10.10.17.0/24', '192.168.100.9')],
    ['a supernet of our own /20', hgw('10.10.0.0/18', '192.168.100.9')],
    ['the whole Network', hgw('10.10.0.0/16', '192.168.100.9')],
    ['a /24 inside a peer /20', hgw('10.10.33.0/24', '192.168.100.9')],
    ['a /21 at a peer /20 base', hgw('10.10.32.0/21', '192.168.100.9')],
    ['a broadcast PublicIP', hgw('10.10.48.0/20', '192.168.100.255')],
    ['a limited-broadcast PublicIP', hgw('10.10.48.0/20', '255.255.255.255')],
    ['our own PublicIP', hgw('10.10.48.0/20', '192.168.100.1')],
  ])('%s: refused with a log line; its deletion leaves the peer route', async (_what, bogus) => {
    const nw = await start();
    await push(nw, [added(PEER)]);
    expect(peerRoutes()).toEqual(['10.10.32.0/20 via 192.168.100.2']);
    await push(nw, [added(bogus)]);
    expect(peerRoutes()).toEqual(['10.10.32.0/20 via 192.168.100.2']);
    expect(logs.filter((l) => l.startsWith('refusing peer lease'))).toHaveLength(1);
    await push(nw, [removed(bogus)]);
    expect(peerRoutes()).toEqual(['10.10.32.0/20 via 192.168.100.2']);
    await nw.checkRoutes();
    expect(peerRoutes()).toEqual(['10.10.32.0/20 via 192.168.100.2']);
  });
});
