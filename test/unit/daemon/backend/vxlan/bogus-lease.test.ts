// Peers that are not what they claim (issue 9, item 3) on the vxlan backend, on FakeKernel: a lease that
// shares a healthy peer's VTEP address or VtepMAC, overlaps our subnet or another lease, or names a
// PublicIP or VtepMAC that no host can have, must never take over (nor, when deleted, remove) what a
// healthy peer needs; precedence between overlapping leases is deterministic.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeKernel } from '../../../../../shared/kernel/fake/fake-kernel.js';
import { KernelError } from '../../../../../shared/kernel/errors.js';
import type { KernelOp } from '../../../../../shared/kernel/kernel.js';
import { parseIP, parseNet } from '../../../../../shared/net/ip.js';
import type { ExternalInterface } from '../../../../../daemon/backend/backend.js';
import type { Lease, LeaseEvent } from '../../../../../daemon/lease.js';
import { createVxlanBackend } from '../../../../../daemon/backend/vxlan/vxlan.js';
import type { VxlanNetwork } from '../../../../../daemon/backend/vxlan/network.js';
import { FakeSubnetManager, vxlanLease as lease, linesLogger } from '../../../../helpers/fake-subnet-manager.js';
import { until } from '../../../../helpers/until.js';

const OWN_SUBNET = '10.10.16.0/20';
const NETWORK = '10.10.0.0/16';
const DEV = 'flannel.100';
const EXT: ExternalInterface = {
  iface: { name: 'eth0', index: 2, mtu: 1500 },
  ifaceAddr: parseIP('192.168.100.1'),
  extAddr: parseIP('192.168.100.1'),
};

/** FakeKernel that refuses a `bridge fdb replace` of one MAC, as the kernel refuses some peers. */
class RefusingKernel extends FakeKernel {
  refuseMac: string | undefined;
  override async batch(ops: readonly KernelOp[]): Promise<void> {
    const bad = ops.find((op) => op.op === 'replaceFdb' && op.mac === this.refuseMac);
    if (bad) {
      this.world.calls++;
      throw new KernelError('Operation not supported', { code: 'EOPNOTSUPP' }).withOp(bad);
    }
    return super.batch(ops);
  }
}

let stateDir: string;
let kernel: RefusingKernel;
let manager: FakeSubnetManager;
let logs: string[];
let ac: AbortController;
let run: Promise<void> | undefined;

beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'vxlan-bogus-'));
  kernel = new RefusingKernel();
  manager = new FakeSubnetManager(OWN_SUBNET);
  logs = [];
  ac = new AbortController();
  run = undefined;
});

afterEach(async () => {
  ac.abort();
  await run;
  rmSync(stateDir, { recursive: true, force: true });
});

async function start(retryDelay = 1000): Promise<VxlanNetwork> {
  const nw = (await createVxlanBackend({ subnetManager: manager, extIface: EXT, kernel, stateDir, logger: linesLogger(logs) }).registerNetwork(ac.signal, {
    enableIPv4: true,
    enableIPv6: false,
    backend: { Type: 'vxlan', VNI: 100 },
    network: parseNet(NETWORK),
  })) as VxlanNetwork;
  nw.timing.retryDelay = retryDelay;
  nw.timing.pollInterval = 0;
  run = nw.run(ac.signal);
  return nw;
}

/** Pushes a batch and waits until the network has applied it. */
async function push(nw: VxlanNetwork, batch: LeaseEvent[]): Promise<void> {
  manager.push(batch);
  await until(() => manager.queued === 0, 'the batch to be taken', 2000, 2);
  await new Promise((r) => setTimeout(r, 0));
  await nw.idle();
}

const added = (l: Lease): LeaseEvent => ({ type: 'added', lease: l });
const removed = (l: Lease): LeaseEvent => ({ type: 'removed', lease: l });
const ns = () => kernel.world.namespaces.get('/')!;

/** Everything on flannel.100, in a comparable form. */
function entries() {
  const s = ns();
  return {
    neighs: s.neighs.filter((n) => n.dev === DEV).map((n) => `${n.ip}=${n.mac}`).sort(),
    fdb: s.fdb.filter((f) => f.dev === DEV).map((f) => `${f.mac}>${f.dst}`).sort(),
    routes: s.routes.filter((r) => r.dev === DEV).map((r) => `${r.dst} via ${r.via}`).sort(),
  };
}

const HEALTHY = lease('10.10.32.0/20', '192.168.100.2', '0a:00:00:00:00:02');
const OTHER = lease('10.10.48.0/20', '192.168.100.3', '0a:00:00:00:00:03');
const HEALTHY_STATE = {
  neighs: ['10.10.32.0=0a:00:00:00:00:02', '10.10.48.0=0a:00:00:00:00:03'],
  fdb: ['0a:00:00:00:00:02>192.168.100.2', '0a:00:00:00:00:03>192.168.100.3'],
  routes: ['10.10.32.0/20 via 10.10.32.0', '10.10.48.0/20 via 10.10.48.0'],
};

describe('vxlan: a bogus lease never takes over a healthy peer', () => {
  it.each([
    ['a /21 at a peer /20 base (shared VTEP address)', lease('10.10.32.0/21', '192.168.100.9', '0a:00:00:00:00:09')],
    ['the same VtepMAC from another PublicIP', lease('10.10.64.0/20', '192.168.100.9', '0a:00:00:00:00:02')],
    ['a /24 inside a peer /20', lease('10.10.40.0/24', '192.168.100.9', '0a:00:00:00:00:09')],
    ['a supernet of two peers', lease('10.10.32.0/19', '192.168.100.9', '0a:00:00:00:00:09')],
    ['a /24 inside our own /20', lease('10.10.17.0/24', '192.168.100.9', '0a:00:00:00:00:09')],
    ['the whole Network', lease(NETWORK, '192.168.100.9', '0a:00:00:00:00:09')],
    ['a supernet of our own subnet', lease('10.10.0.0/18', '192.168.100.9', '0a:00:00:00:00:09')],
    ['our own VtepMAC', lease('10.10.64.0/20', '192.168.100.9', 'OWN')],
    ['a broadcast PublicIP', lease('10.10.64.0/20', '255.255.255.255', '0a:00:00:00:00:09')],
    ['a multicast PublicIP', lease('10.10.64.0/20', '239.1.2.3', '0a:00:00:00:00:09')],
    ['a loopback PublicIP', lease('10.10.64.0/20', '127.0.0.1', '0a:00:00:00:00:09')],
    ['our own PublicIP', lease('10.10.64.0/20', '192.168.100.1', '0a:00:00:00:00:09')],
    ['a broadcast VtepMAC', lease('10.10.64.0/20', '192.168.100.9', 'ff:ff:ff:ff:ff:ff')],
    ['a multicast VtepMAC', lease('10.10.64.0/20', '192.168.100.9', '01:00:5e:00:00:01')],
  ])('%s: refused with a log line while present, and its deletion leaves the peers intact', async (_what, raw) => {
    const nw = await start();
    const ownMac = ns().links.get(DEV)!.mac;
    const bogus = (raw.attrs.backendData as { VtepMAC: string }).VtepMAC === 'OWN' ? lease('10.10.64.0/20', '192.168.100.9', ownMac) : raw;
    await push(nw, [added(HEALTHY), added(OTHER)]);
    expect(entries()).toEqual(HEALTHY_STATE);

    await push(nw, [added(bogus)]);
    expect(entries()).toEqual(HEALTHY_STATE);
    expect(logs.filter((l) => l.startsWith('refusing peer lease'))).toHaveLength(1);

    // renewals of the bogus lease are not logged again
    await push(nw, [added(bogus)]);
    expect(logs.filter((l) => l.startsWith('refusing peer lease'))).toHaveLength(1);

    await push(nw, [removed(bogus)]);
    expect(entries()).toEqual(HEALTHY_STATE);
    expect([...nw.knownPeers().keys()].sort()).toEqual(['10.10.32.0/20', '10.10.48.0/20']);
  });

  it('the same, all in one snapshot with the bogus leases first in key order', async () => {
    const nw = await start();
    await push(nw, [
      added(lease('10.10.32.0/19', '192.168.100.9', '0a:00:00:00:00:09')),
      added(lease('10.10.32.0/21', '192.168.100.8', '0a:00:00:00:00:08')),
      added(HEALTHY),
      added(OTHER),
    ]);
    expect(entries()).toEqual(HEALTHY_STATE);
  });

  it('a real peer (network SubnetLen) that joins after an overlapping bogus lease pushes it out', async () => {
    const nw = await start();
    const bogus = lease('10.10.32.0/21', '192.168.100.9', '0a:00:00:00:00:09');
    await push(nw, [added(bogus), added(OTHER)]);
    expect(entries().routes).toContain('10.10.32.0/21 via 10.10.32.0');
    await push(nw, [added(HEALTHY)]);
    expect(entries()).toEqual(HEALTHY_STATE);
    expect(logs.join('\n')).toMatch(/refusing peer lease 10\.10\.32\.0\/21 .*overlaps the peer lease 10\.10\.32\.0\/20 .*takes precedence/);
    await push(nw, [removed(bogus)]);
    expect(entries()).toEqual(HEALTHY_STATE);
  });

  it('first seen wins at equal rank, and the refused lease is accepted when the winner goes away', async () => {
    const nw = await start();
    const late = lease('10.10.64.0/20', '192.168.100.9', '0a:00:00:00:00:02');
    await push(nw, [added(HEALTHY)]);
    await push(nw, [added(late)]);
    expect(entries().fdb).toEqual(['0a:00:00:00:00:02>192.168.100.2']);
    expect(logs.join('\n')).toMatch(/refusing peer lease 10\.10\.64\.0\/20 \(PublicIP 192\.168\.100\.9\): its IPv4 VtepMAC 0a:00:00:00:00:02 is also claimed by the peer lease 10\.10\.32\.0\/20/);
    await push(nw, [removed(HEALTHY)]);
    // the survivor is programmed: FDB to its PublicIP, its own neighbour and route
    expect(entries()).toEqual({ neighs: ['10.10.64.0=0a:00:00:00:00:02'], fdb: ['0a:00:00:00:00:02>192.168.100.9'], routes: ['10.10.64.0/20 via 10.10.64.0'] });
    expect(logs.join('\n')).toMatch(/accepting peer lease 10\.10\.64\.0\/20/);
  });

  it('an unknown removal that names a live peer\'s entries removes nothing', async () => {
    const nw = await start();
    await push(nw, [added(HEALTHY), added(OTHER)]);
    await push(nw, [removed(lease('10.10.32.0/21', '192.168.100.9', '0a:00:00:00:00:03'))]);
    expect(entries()).toEqual(HEALTHY_STATE);
  });

  it('a peer the kernel keeps refusing is logged once, not on every retry', async () => {
    const nw = await start(5);
    kernel.refuseMac = '0a:00:00:00:00:07';
    await push(nw, [added(lease('10.10.64.0/20', '192.168.100.7', '0a:00:00:00:00:07'))]);
    // let it be retried several times (back-off 5, 10, 20, 40 ms)
    await until(() => (nw.pendingRetries().get('10.10.64.0/20') ?? 0) >= 40, 'four retries', 5000, 2);
    expect(logs.filter((l) => l.startsWith('failed to program lease 10.10.64.0/20'))).toHaveLength(1);
    kernel.refuseMac = undefined;
    await until(() => nw.knownPeers().has('10.10.64.0/20'), 'the lease to be programmed', 5000, 2);
    expect(logs.join('\n')).toMatch(/programmed lease 10\.10\.64\.0\/20, which had failed/);
  });
});
