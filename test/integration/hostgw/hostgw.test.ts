// The host-gw backend on the real kernel. Hosts h1 and h2 are network namespaces whose eth0 hangs on
// one underlay bridge (one L2 segment, dual stack); each runs the backend with a FakeSubnetManager
// (leases handed over by the test, as etcd would) and holds a pod behind a cni0 bridge. Checked: the
// peer routes `<subnet> via <PublicIP> dev eth0` (v4 and v6), pod-to-pod traffic across the hosts,
// routes deleted by hand or flushed by a link flap coming back (route check), removal with the lease,
// a peer that is not on our L2 segment, and stale routes removed on restart. Every namespace comes from
// test/helpers/netns.ts and is deleted in afterAll (and on process exit); the root namespace is
// never touched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKernel } from '../../../shared/kernel/iproute2/kernel.js';
import { parseIP, parseNet } from '../../../shared/net/ip.js';
import { createHostgwBackend } from '../../../daemon/backend/hostgw/hostgw.js';
import type { HostgwNetwork } from '../../../daemon/backend/hostgw/network.js';
import type { Lease, LeaseEvent } from '../../../daemon/lease.js';
import { marshalLeaseAttrs } from '../../../daemon/subnet/lease-json.js';
import { canUseNetns, cleanupNetns, type Netns } from '../../helpers/netns.js';
import { FakeSubnetManager, linesLogger } from '../../helpers/fake-subnet-manager.js';
import { createHost, createPod, createUnderlay, ping } from '../vxlan/hosts.js';
import { until } from '../../helpers/until.js';

const NETWORK = '10.10.0.0/16';
const NETWORK6 = 'fd10::/32';
const CHECK_MS = 200;

interface Flannel {
  manager: FakeSubnetManager;
  nw: HostgwNetwork;
  logs: string[];
  stop(): Promise<void>;
}

interface Host {
  ns: Netns;
  pod: Netns;
  flannel: Flannel;
  subnet: string;
  subnet6: string;
  ip: string;
  ip6: string;
}

async function startFlannel(ns: Netns, subnet: string, subnet6: string, ip: string, ip6: string): Promise<Flannel> {
  const kernel = createKernel().inNetns(ns.path);
  const eth0 = (await kernel.getLink('eth0'))!;
  const manager = new FakeSubnetManager(subnet, subnet6);
  const logs: string[] = [];
  const backend = createHostgwBackend({
    subnetManager: manager,
    kernel,
    stateDir: '/nonexistent',
    logger: linesLogger(logs),
    extIface: {
      iface: { name: 'eth0', index: eth0.index, mtu: eth0.mtu },
      ifaceAddr: parseIP(ip),
      extAddr: parseIP(ip),
      ifaceV6Addr: parseIP(ip6),
      extV6Addr: parseIP(ip6),
    },
  });
  const ac = new AbortController();
  const nw = (await backend.registerNetwork(ac.signal, {
    enableIPv4: true,
    enableIPv6: true,
    backend: { Type: 'host-gw' },
    network: parseNet(NETWORK),
    ipv6Network: parseNet(NETWORK6),
  })) as HostgwNetwork;
  nw.timing.checkInterval = CHECK_MS;
  const run = nw.run(ac.signal);
  return {
    manager,
    nw,
    logs,
    async stop() {
      ac.abort();
      await run;
    },
  };
}

function leaseOf(h: Pick<Host, 'subnet' | 'subnet6' | 'ip' | 'ip6'>): Lease {
  return {
    enableIPv4: true,
    enableIPv6: true,
    subnet: parseNet(h.subnet),
    ipv6Subnet: parseNet(h.subnet6),
    attrs: { publicIP: parseIP(h.ip), publicIPv6: parseIP(h.ip6), backendType: 'host-gw' },
    expiration: Date.now() + 86_400_000,
  };
}

const gw = (subnet: string, host: number) => subnet.replace(/(\.0|::)\//, (m) => (m === '.0/' ? `.${host}/` : `::${host}/`));
const addr = (cidr: string) => cidr.split('/')[0]!;

describe.skipIf(!canUseNetns)('host-gw backend on the real kernel', () => {
  const hosts: Host[] = [];
  let ul: Netns;

  beforeAll(async () => {
    ul = createUnderlay();
    for (const i of [1, 2]) {
      const ip = `192.168.77.${i}`;
      const ip6 = `fd77::${i}`;
      const ns = createHost(ul, { cidr: `${ip}/24`, cidr6: `${ip6}/64` });
      const subnet = `10.10.${16 * i}.0/20`;
      const subnet6 = `fd10:0:${16 * i}::/64`;
      const pod = createPod(ns, { gateway: gw(subnet, 1), cidr: gw(subnet, 2), gateway6: gw(subnet6, 1), cidr6: gw(subnet6, 2) });
      const flannel = await startFlannel(ns, subnet, subnet6, ip, ip6);
      hosts.push({ ns, pod, flannel, subnet, subnet6, ip, ip6 });
    }
    // every host gets the other's lease, as etcd would hand it out
    for (const h of hosts) h.flannel.manager.push(hosts.filter((p) => p !== h).map((p) => ({ type: 'added' as const, lease: leaseOf(p) })));
    for (const h of hosts) await h.flannel.nw.firstSync;
  });

  afterAll(async () => {
    await Promise.allSettled(hosts.map((h) => h.flannel.stop()));
    cleanupNetns();
  });

  const routeTo = (h: Host, dst: string) => h.ns.exec(['ip', ...(dst.includes(':') ? ['-6'] : []), 'route', 'show', 'exact', dst]).stdout.trim();

  it('writes the lease as Go does and reports the interface MTU', () => {
    const [h1] = hosts as [Host];
    expect(marshalLeaseAttrs(h1.flannel.manager.acquired[0]!)).toBe('{"PublicIP":"192.168.77.1","PublicIPv6":"fd77::1","BackendType":"host-gw"}');
    expect(h1.flannel.nw.mtu()).toBe(1500);
  });

  it('routes each peer subnet via its PublicIP on eth0, v4 and v6', () => {
    const [h1, h2] = hosts as [Host, Host];
    expect(routeTo(h1, h2.subnet)).toMatch(/^10\.10\.32\.0\/20 via 192\.168\.77\.2 dev eth0\s*$/);
    expect(routeTo(h2, h1.subnet)).toMatch(/^10\.10\.16\.0\/20 via 192\.168\.77\.1 dev eth0\s*$/);
    expect(routeTo(h1, h2.subnet6)).toMatch(/^fd10:0:32::\/64 via fd77::2 dev eth0 metric 1024/);
    expect(routeTo(h2, h1.subnet6)).toMatch(/^fd10:0:16::\/64 via fd77::1 dev eth0 metric 1024/);
  });

  it('carries pod-to-pod traffic across the hosts, v4 and v6', async () => {
    const [h1, h2] = hosts as [Host, Host];
    await until(() => ping(h1.pod, addr(gw(h2.subnet, 2))), 'ping(h1.pod, addr(gw(h2.subnet, 2)))');
    expect(ping(h2.pod, addr(gw(h1.subnet, 2)))).toBe(true);
    await until(() => ping(h1.pod, addr(gw(h2.subnet6, 2))), 'ping(h1.pod, addr(gw(h2.subnet6, 2)))');
    expect(ping(h2.pod, addr(gw(h1.subnet6, 2)))).toBe(true);
  });

  it('puts back a route deleted by hand (route check)', async () => {
    const [h1, h2] = hosts as [Host, Host];
    h1.ns.exec(['ip', 'route', 'del', h2.subnet]);
    h1.ns.exec(['ip', '-6', 'route', 'del', h2.subnet6]);
    expect(routeTo(h1, h2.subnet)).toBe('');
    // the log line comes when our `ip` exec has been reaped, which can be after the route shows up
    await until(() => routeTo(h1, h2.subnet) !== '' && routeTo(h1, h2.subnet6) !== '' && h1.flannel.logs.includes(`Route recovered ${h2.subnet} : ${h2.ip}`), 'both routes back and "Route recovered" logged', { ms: 5000 });
    expect(routeTo(h1, h2.subnet)).toMatch(/via 192\.168\.77\.2 dev eth0/);
    expect(ping(h1.pod, addr(gw(h2.subnet, 2)))).toBe(true);
  });

  it('restores the routes the kernel flushed when eth0 went down and up', async () => {
    const [h1, h2] = hosts as [Host, Host];
    h1.ns.exec(['ip', 'link', 'set', 'eth0', 'down']);
    expect(routeTo(h1, h2.subnet)).toBe('');
    h1.ns.exec(['ip', 'link', 'set', 'eth0', 'up']);
    // the kernel drops IPv6 addresses on link down (keep_addr_on_down=0): the operator puts it back
    h1.ns.exec(['ip', '-6', 'addr', 'add', `${h1.ip6}/64`, 'dev', 'eth0', 'nodad']);
    await until(() => routeTo(h1, h2.subnet) !== '' && routeTo(h1, h2.subnet6) !== '', "h1 routes to both of h2's subnets", { ms: 5000 });
    await until(() => ping(h1.pod, addr(gw(h2.subnet, 2))), 'ping(h1.pod, addr(gw(h2.subnet, 2)))', { ms: 5000 });
  });

  it('removes the route with the lease, and adds it back with the lease', async () => {
    const [h1, h2] = hosts as [Host, Host];
    h1.flannel.manager.push([{ type: 'removed', lease: leaseOf(h2) }]);
    await until(() => routeTo(h1, h2.subnet) === '' && routeTo(h1, h2.subnet6) === '', "routeTo(h1, h2.subnet) === '' && routeTo(h1, h2.subnet6) === ''");
    expect(ping(h1.pod, addr(gw(h2.subnet, 2)))).toBe(false);
    // not put back by the route check
    await new Promise((r) => setTimeout(r, 2 * CHECK_MS + 100));
    expect(routeTo(h1, h2.subnet)).toBe('');
    h1.flannel.manager.push([{ type: 'added', lease: leaseOf(h2) }]);
    await until(() => routeTo(h1, h2.subnet) !== '', "routeTo(h1, h2.subnet) !== ''");
    await until(() => ping(h1.pod, addr(gw(h2.subnet, 2))), 'ping(h1.pod, addr(gw(h2.subnet, 2)))');
  });

  it('a peer not on our L2 segment gets no route, a log that says why, and the others are unaffected', async () => {
    const [h1, h2] = hosts as [Host, Host];
    const far = { subnet: '10.10.48.0/20', subnet6: 'fd10:0:48::/64', ip: '192.168.78.3', ip6: 'fd78::3' };
    const near = { subnet: '10.10.64.0/20', subnet6: 'fd10:0:64::/64', ip: '192.168.77.4', ip6: 'fd77::4' };
    const batch: LeaseEvent[] = [{ type: 'added', lease: leaseOf(far) }, { type: 'added', lease: leaseOf(near) }];
    h1.flannel.manager.push(batch);
    await until(() => routeTo(h1, near.subnet) !== '' && routeTo(h1, near.subnet6) !== '', "h1 routes to both of near's subnets");
    expect(routeTo(h1, far.subnet)).toBe('');
    expect(routeTo(h1, far.subnet6)).toBe('');
    await until(() => h1.flannel.logs.some((l) => l.startsWith('Error adding route to 10.10.48.0/20')), 'h1 to log "Error adding route to 10.10.48.0/20"');
    const line = h1.flannel.logs.find((l) => l.startsWith('Error adding route to 10.10.48.0/20'))!;
    expect(line).toMatch(/192\.168\.78\.3 is not on a network directly attached to eth0: host-gw needs every host on one L2 segment/);
    expect(h1.flannel.logs.some((l) => l.startsWith('Error adding route to fd10:0:48::/64'))).toBe(true);
    // retried by the check, but logged once
    await new Promise((r) => setTimeout(r, 3 * CHECK_MS));
    expect(h1.flannel.logs.filter((l) => l.startsWith('Error adding route to 10.10.48.0/20'))).toHaveLength(1);
    expect(routeTo(h1, h2.subnet)).toMatch(/via 192\.168\.77\.2 dev eth0/);
    h1.flannel.manager.push(batch.map((e) => ({ ...e, type: 'removed' as const })));
    await until(() => routeTo(h1, near.subnet) === '', "routeTo(h1, near.subnet) === ''");
  });

  it('on restart, removes routes of leases deleted while it was down and keeps the rest', async () => {
    const [h1, h2] = hosts as [Host, Host];
    await h2.flannel.stop();
    // leftovers of a peer whose lease expired while flanneld was down, and an operator's routes
    h2.ns.exec(['ip', 'route', 'add', '10.10.80.0/20', 'via', '192.168.77.9', 'dev', 'eth0']);
    h2.ns.exec(['ip', '-6', 'route', 'add', 'fd10:0:80::/64', 'via', 'fd77::9', 'dev', 'eth0']);
    h2.ns.exec(['ip', 'route', 'add', '10.10.0.0/16', 'via', '192.168.77.254', 'dev', 'eth0']);
    h2.ns.exec(['ip', 'route', 'add', '10.10.96.0/20', 'via', '192.168.77.10', 'dev', 'eth0', 'proto', 'static']);
    h2.flannel = await startFlannel(h2.ns, h2.subnet, h2.subnet6, h2.ip, h2.ip6);
    h2.flannel.manager.push([{ type: 'added', lease: leaseOf(h1) }]);
    await h2.flannel.nw.firstSync;
    expect(routeTo(h2, '10.10.80.0/20')).toBe('');
    expect(routeTo(h2, 'fd10:0:80::/64')).toBe('');
    expect(routeTo(h2, '10.10.0.0/16')).not.toBe('');
    expect(routeTo(h2, '10.10.96.0/20')).not.toBe('');
    expect(routeTo(h2, h1.subnet)).toMatch(/via 192\.168\.77\.1 dev eth0/);
    expect(h2.flannel.logs.some((l) => l.startsWith('removed 2 stale routes'))).toBe(true);
    await until(() => ping(h2.pod, addr(gw(h1.subnet, 2))), 'ping(h2.pod, addr(gw(h1.subnet, 2)))');
  });
});
