// The vxlan unit tests' shared world: a FakeKernel, a FakeSubnetManager, a private stateDir, the logs,
// and registering a vxlan network on them. `useVxlanHarness()` installs the per-test reset.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { FakeKernel } from '../../../../../shared/kernel/fake/fake-kernel.js';
import { parseIP, parseNet } from '../../../../../shared/net/ip.js';
import type { BackendDeps, ExternalInterface } from '../../../../../daemon/backend/backend.js';
import type { Lease } from '../../../../../daemon/lease.js';
import { FakeSubnetManager, vxlanLease, linesLogger } from '../../../../helpers/fake-subnet-manager.js';
import { createVxlanBackend } from '../../../../../daemon/backend/vxlan/vxlan.js';
import type { VxlanNetwork } from '../../../../../daemon/backend/vxlan/network.js';

export const OWN_SUBNET = '10.10.16.0/20';

export const lease = vxlanLease;

export class FakeManager extends FakeSubnetManager {
  constructor() {
    super(OWN_SUBNET);
  }
}

export const EXT: ExternalInterface = {
  iface: { name: 'eth0', index: 2, mtu: 1500 },
  ifaceAddr: parseIP('192.168.100.1'),
  extAddr: parseIP('192.168.100.1'),
};

export const BACKEND = { Type: 'vxlan', VNI: 100, Port: 8472 };

export let stateDir: string;
export let kernel: FakeKernel;
export let manager: FakeManager;
export let logs: string[];
export const controllers: AbortController[] = [];

export function deps(over: Partial<BackendDeps> = {}): BackendDeps {
  return { subnetManager: manager, extIface: EXT, kernel, stateDir, logger: linesLogger(logs), ...over };
}

export async function register(backend: Record<string, unknown> = BACKEND, over: Partial<BackendDeps> = {}) {
  const ac = new AbortController();
  controllers.push(ac);
  const nw = (await createVxlanBackend(deps(over)).registerNetwork(ac.signal, {
    enableIPv4: true,
    enableIPv6: false,
    backend,
  })) as VxlanNetwork;
  return { nw, ac };
}

export const ns = () => kernel.world.namespaces.get('/')!;

/** What the kernel holds for a peer on flannel.100. */
export function peerState(subnet: string) {
  const gw = subnet.split('/')[0]!;
  const s = ns();
  const neigh = s.neighs.find((n) => n.dev === 'flannel.100' && n.ip === gw);
  const route = s.routes.find((r) => r.dst === subnet);
  const fdb = neigh ? s.fdb.filter((f) => f.dev === 'flannel.100' && f.mac === neigh.mac) : [];
  return { neigh, route, fdb };
}

/** A peer lease as a dual-stack (or, without `subnet`, a v6-only) flanneld writes it. */
export function dualLease(o: { subnet?: string; v6: string; publicIP?: string; publicIPv6: string; mac?: string; mac6: string }): Lease {
  const l: Lease = {
    enableIPv4: o.subnet !== undefined,
    enableIPv6: true,
    subnet: parseNet(o.subnet ?? '0.0.0.0/0'),
    ipv6Subnet: parseNet(o.v6),
    attrs: {
      publicIP: parseIP(o.publicIP ?? '0.0.0.0'),
      publicIPv6: parseIP(o.publicIPv6),
      backendType: 'vxlan',
      backendV6Data: { VNI: 100, VtepMAC: o.mac6 },
    },
    expiration: Date.now() + 86_400_000,
  };
  if (o.mac !== undefined) l.attrs.backendData = { VNI: 100, VtepMAC: o.mac };
  return l;
}

export const EXT6: ExternalInterface = { ...EXT, ifaceV6Addr: parseIP('fd00::1'), extV6Addr: parseIP('fd00::1') };

export async function registerWith(config: { enableIPv4?: boolean; enableIPv6?: boolean; network?: string; backend?: Record<string, unknown> }, over: Partial<BackendDeps> = {}) {
  const ac = new AbortController();
  controllers.push(ac);
  const nw = (await createVxlanBackend(deps(over)).registerNetwork(ac.signal, {
    enableIPv4: config.enableIPv4 ?? true,
    enableIPv6: config.enableIPv6 ?? false,
    backend: config.backend ?? BACKEND,
    ...(config.network ? { network: parseNet(config.network) } : {}),
  })) as VxlanNetwork;
  return { nw, ac };
}

export const addrsOn = (dev: string) => ns().addrs.filter((a) => a.dev === dev).map((a) => a.cidr).sort();

export function useVxlanHarness(): void {
  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'vxlan-unit-'));
    kernel = new FakeKernel();
    manager = new FakeManager();
    logs = [];
  });

  afterEach(() => {
    for (const ac of controllers.splice(0)) ac.abort();
    rmSync(stateDir, { recursive: true, force: true });
  });
}
