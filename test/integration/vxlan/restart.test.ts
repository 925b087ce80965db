// flanneld restarts on the real kernel: h1 and h2 on one underlay, h1 also knows two leases of hosts
// that do not exist (their entries are only looked at, no traffic goes there).
// - Entries left by a lease deleted while flanneld was down are removed after the snapshot (our
//   extension: upstream keeps them forever); every other entry, ours or not, stays; traffic flows.
// - The device address follows upstream's EnsureV4AddressOnLink: addresses inside the flannel Network
//   other than ours are removed, addresses outside it are kept.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LeaseEvent } from '../../../daemon/lease.js';
import { canUseNetns, cleanupNetns, type Netns } from '../../helpers/netns.js';
import { createHost, createPod, createUnderlay, peerLease, ping, startFlannel, type Flannel } from './hosts.js';
import { until } from '../../helpers/until.js';

const NETWORK = '10.10.0.0/16';
const C = peerLease({ subnet: '10.10.48.0/20', publicIP: '192.168.77.9', mac: '0a:00:00:00:00:0c' });
const D = peerLease({ subnet: '10.10.64.0/20', publicIP: '192.168.77.10', mac: '0a:00:00:00:00:0d' });

describe.skipIf(!canUseNetns)('vxlan backend across a flanneld restart', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'vxlan-restart-'));
  let h1: Netns;
  let h2: Netns;
  let pod1: Netns;
  let f1: Flannel;
  let f2: Flannel;

  const start1 = () => startFlannel(h1, { subnet: '10.10.16.0/20', network: NETWORK, stateDir: join(stateDir, 'h1') });
  const lease2 = () => peerLease({ subnet: '10.10.32.0/20', publicIP: '192.168.77.2', mac: f2.mac! });
  const snapshot = (...extra: ReturnType<typeof peerLease>[]): LeaseEvent[] =>
    [lease2(), ...extra].map((lease) => ({ type: 'added' as const, lease }));
  const sh = (ns: Netns, ...argv: string[]) => ns.exec(argv).stdout;

  beforeAll(async () => {
    const ul = createUnderlay();
    h1 = createHost(ul, { cidr: '192.168.77.1/24' });
    h2 = createHost(ul, { cidr: '192.168.77.2/24' });
    f1 = await start1();
    f2 = await startFlannel(h2, { subnet: '10.10.32.0/20', network: NETWORK, stateDir: join(stateDir, 'h2') });
    pod1 = createPod(h1, { gateway: '10.10.16.1/20', cidr: '10.10.16.2/20' });
    createPod(h2, { gateway: '10.10.32.1/20', cidr: '10.10.32.2/20' });
    f1.manager.push(snapshot(C, D));
    f2.manager.push([{ type: 'added', lease: peerLease({ subnet: '10.10.16.0/20', publicIP: '192.168.77.1', mac: f1.mac! }) }]);
    await until(() => f1.nw.knownPeers().size === 3 && f2.nw.knownPeers().size === 1, 'f1.nw.knownPeers().size === 3 && f2.nw.knownPeers().size === 1');
    await until(() => ping(pod1, '10.10.32.2'), "ping(pod1, '10.10.32.2')");
  });

  afterAll(async () => {
    await Promise.allSettled([f1, f2].filter(Boolean).map((f) => f.stop()));
    cleanupNetns();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('removes the entries of a lease deleted while it was down, and nothing else', async () => {
    // entries that are not flannel's: an operator's dev route and a learned-style (stale) neighbour on
    // flannel.100, the all-zeros flood entry, and a look-alike vxlan device with flannel-shaped entries
    h1.exec(['ip', 'route', 'add', '10.99.0.0/16', 'dev', 'flannel.100']);
    h1.exec(['ip', 'neigh', 'add', '10.10.99.9', 'lladdr', '0a:00:00:00:99:99', 'dev', 'flannel.100', 'nud', 'stale']);
    h1.exec(['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'flannel.100', 'dst', '192.168.77.60']);
    h1.exec(['ip', 'link', 'add', 'vx-other', 'type', 'vxlan', 'id', '7', 'local', '192.168.77.1', 'dev', 'eth0', 'dstport', '4790', 'nolearning']);
    h1.exec(['ip', 'addr', 'add', '10.20.16.0/32', 'dev', 'vx-other']);
    h1.exec(['ip', 'link', 'set', 'vx-other', 'up']);
    h1.exec(['ip', 'neigh', 'replace', '10.20.48.0', 'lladdr', '0a:00:00:00:00:0c', 'dev', 'vx-other', 'nud', 'permanent']);
    h1.exec(['bridge', 'fdb', 'replace', '0a:00:00:00:00:0c', 'dev', 'vx-other', 'dst', '192.168.77.9', 'self', 'permanent']);
    h1.exec(['ip', 'route', 'replace', '10.20.48.0/20', 'via', '10.20.48.0', 'dev', 'vx-other', 'onlink']);
    const other = () => [sh(h1, 'ip', 'route', 'show', 'dev', 'vx-other'), sh(h1, 'ip', 'neigh', 'show', 'dev', 'vx-other'), sh(h1, 'bridge', 'fdb', 'show', 'dev', 'vx-other')];
    const otherBefore = other();
    const ifindex = sh(h1, 'ip', '-o', 'link', 'show', 'flannel.100').split(':')[0];

    await f1.stop();
    // while flanneld is down, C's lease is deleted; the data path keeps working
    expect(ping(pod1, '10.10.32.2')).toBe(true);
    f1 = await start1();
    f1.manager.push(snapshot(D));
    await until(() => f1.logs.some((l) => /^removed \d+ stale entries/.test(l)), 'a "removed N stale entries" line in f1.logs');

    const routes = sh(h1, 'ip', 'route', 'show', 'dev', 'flannel.100');
    const neighs = sh(h1, 'ip', 'neigh', 'show', 'dev', 'flannel.100');
    const fdb = sh(h1, 'bridge', 'fdb', 'show', 'dev', 'flannel.100');
    // C is gone
    expect(routes).not.toContain('10.10.48.0/20');
    expect(neighs).not.toMatch(/10\.10\.48\.0 /);
    expect(fdb).not.toContain('0a:00:00:00:00:0c');
    // h2 and D are untouched
    expect(routes).toMatch(/10\.10\.32\.0\/20 via 10\.10\.32\.0 onlink/);
    expect(routes).toMatch(/10\.10\.64\.0\/20 via 10\.10\.64\.0 onlink/);
    expect(neighs).toMatch(new RegExp(`10\\.10\\.32\\.0 lladdr ${f2.mac} PERMANENT`));
    expect(fdb).toMatch(/0a:00:00:00:00:0d dst 192\.168\.77\.10 self permanent/);
    // not ours: kept
    expect(routes).toMatch(/10\.99\.0\.0\/16 scope link/);
    expect(neighs).toContain('10.10.99.9 lladdr 0a:00:00:00:99:99');
    expect(fdb).toContain('00:00:00:00:00:00 dst 192.168.77.60 self permanent');
    expect(other()).toEqual(otherBefore);
    // the device itself was kept, and so was the traffic
    expect(sh(h1, 'ip', '-o', 'link', 'show', 'flannel.100').split(':')[0]).toBe(ifindex);
    expect(ping(pod1, '10.10.32.2')).toBe(true);
    expect(f1.logs.join('\n')).toMatch(/removed 3 stale entries/);
    expect(f1.logs.join('\n')).not.toMatch(/one by one/);
  });

  it('keeps addresses outside the flannel Network on flannel.100 and removes the others (EnsureV4AddressOnLink)', async () => {
    h1.exec(['ip', 'addr', 'add', '10.10.80.0/32', 'dev', 'flannel.100']); // an old lease's
    h1.exec(['ip', 'addr', 'add', '10.10.16.7/24', 'dev', 'flannel.100']);
    h1.exec(['ip', 'addr', 'add', '192.0.2.7/32', 'dev', 'flannel.100']); // the operator's
    h1.exec(['ip', 'addr', 'add', '172.31.1.1/24', 'dev', 'flannel.100']);
    await f1.stop();
    f1 = await start1();
    f1.manager.push(snapshot(D));
    await until(() => f1.nw.knownPeers().size === 2, 'f1.nw.knownPeers().size === 2');
    const addrs = (JSON.parse(sh(h1, 'ip', '-4', '-j', 'addr', 'show', 'dev', 'flannel.100')) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>)
      .flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`))
      .sort();
    expect(addrs).toEqual(['10.10.16.0/32', '172.31.1.1/24', '192.0.2.7/32']);
    expect(sh(h1, 'ip', 'link', 'show', 'flannel.100')).toMatch(/state UNKNOWN|,UP/);
    await until(() => ping(h1, '10.10.32.0', '10.10.16.0'), "ping(h1, '10.10.32.0', '10.10.16.0')");
    expect(ping(pod1, '10.10.32.2')).toBe(true);
  });
});
