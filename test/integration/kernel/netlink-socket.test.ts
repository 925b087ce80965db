// The netlink transport against the real kernel, in namespaces this test makes: a socket created in a
// namespace acts there, batched requests get one result each (a failure in the middle included), the
// monitor sees changes made with `ip` and reports a receive-buffer overflow, withNetns always comes
// back. Messages are hand-encoded here (the rtnetlink codec has its own tests).
import { fstatSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { until } from '../../helpers/until.js';
import {
  NLM_F_CREATE,
  NLM_F_EXCL,
  RTM_DELLINK,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTNLGRP_IPV4_ROUTE,
  RTNLGRP_LINK,
  type NlMessage,
  type NlRequest,
} from '../../../shared/kernel/netlink/nlmsg.js';
import { NetlinkSocket } from '../../../shared/kernel/netlink/socket.js';
import { openMonitor, type Monitor } from '../../../shared/kernel/netlink/monitor.js';
import { closeFd, openNetnsFd, withNetns } from '../../../shared/kernel/netlink/netns.js';
import { nativeAddon } from '../../../shared/native/load.js';

const haveShim = nativeAddon() !== undefined;

function attr(type: number, v: Buffer): Buffer {
  const b = Buffer.alloc((4 + v.length + 3) & ~3);
  b.writeUInt16LE(4 + v.length, 0);
  b.writeUInt16LE(type, 2);
  v.copy(b, 4);
  return b;
}
const str = (s: string) => Buffer.from(`${s}\0`);
const ipv4 = (s: string) => Buffer.from(s.split('.').map(Number));

/** RTM_NEWLINK name type <kind> (ifinfomsg + IFLA_IFNAME + IFLA_LINKINFO{IFLA_INFO_KIND}) */
const newLink = (name: string, kind: string): NlRequest => ({
  type: RTM_NEWLINK,
  flags: NLM_F_CREATE | NLM_F_EXCL,
  payload: Buffer.concat([Buffer.alloc(16), attr(3, str(name)), attr(18, attr(1, str(kind)))]),
});

/** RTM_NEWADDR ip/prefix dev <index> (ifaddrmsg + IFA_LOCAL + IFA_ADDRESS) */
function newAddr(index: number, ip: string, prefix: number): NlRequest {
  const ifa = Buffer.alloc(8);
  ifa.writeUInt8(2, 0); // AF_INET
  ifa.writeUInt8(prefix, 1);
  ifa.writeUInt32LE(index, 4);
  return { type: RTM_NEWADDR, flags: NLM_F_CREATE | NLM_F_EXCL, payload: Buffer.concat([ifa, attr(2, ipv4(ip)), attr(1, ipv4(ip))]) };
}

/** RTM_NEWROUTE dst/32 dev <index> (rtmsg main table, static, link scope, unicast + RTA_DST + RTA_OIF) */
function newRoute(dst: string, oif: number): NlRequest {
  const rtm = Buffer.from([2, 32, 0, 0, 254, 4, 253, 1, 0, 0, 0, 0]);
  const o = Buffer.alloc(4);
  o.writeUInt32LE(oif, 0);
  return { type: RTM_NEWROUTE, flags: NLM_F_CREATE | NLM_F_EXCL, payload: Buffer.concat([rtm, attr(1, ipv4(dst)), attr(4, o)]) };
}

/** name and index of an RTM_NEWLINK/DELLINK payload */
function linkOf(m: NlMessage): { index: number; name: string } {
  const index = m.payload.readInt32LE(4);
  for (let off = 16; off + 4 <= m.payload.length; ) {
    const len = m.payload.readUInt16LE(off);
    if (len < 4) break;
    if (m.payload.readUInt16LE(off + 2) === 3) return { index, name: m.payload.toString('utf8', off + 4, off + len - 1) };
    off += (len + 3) & ~3;
  }
  return { index, name: '' };
}

const links = (s: NetlinkSocket) => s.dump(RTM_GETLINK, Buffer.alloc(16), 'link dump').map(linkOf);
const nsInode = () => statSync('/proc/thread-self/ns/net').ino;

describe.skipIf(!canUseNetns || !haveShim)('netlink socket on the real kernel', () => {
  let ns: Netns;
  let s: NetlinkSocket;
  beforeAll(() => {
    ns = createNetns('nl');
    s = NetlinkSocket.open({ netns: ns.path });
  });
  afterAll(() => {
    s?.close();
    cleanupNetns();
  });

  it('a socket opened in a namespace acts there, and the caller stays home', () => {
    const home = nsInode();
    expect(links(s).map((l) => l.name)).toEqual(['lo']);
    expect(nsInode()).toBe(home);
    const byIndex = Buffer.alloc(16);
    byIndex.writeInt32LE(1, 4);
    expect(s.query({ type: RTM_GETLINK, flags: 0, payload: byIndex }, 'link show 1').map(linkOf)).toEqual([{ index: 1, name: 'lo' }]);
    byIndex.writeInt32LE(99999, 4);
    expect(() => s.query({ type: RTM_GETLINK, flags: 0, payload: byIndex }, 'link show 99999')).toThrow('link show 99999: No such device');
  });

  it('requestAll: one result per request, in order; a failure in the middle stops nothing', () => {
    const r = s.requestAll([newLink('nla', 'bridge'), newLink('nla', 'bridge'), newLink('nlx', 'nosuchkind'), newLink('nlb', 'bridge')]);
    expect(r).toEqual([{ errno: 0 }, { errno: 17 }, { errno: 95, extack: 'Unknown device type' }, { errno: 0 }]);
    const byName = new Map(links(s).map((l) => [l.name, l.index]));
    expect([...byName.keys()].sort()).toEqual(['lo', 'nla', 'nlb']);
    const a = byName.get('nla')!;
    const b = byName.get('nlb')!;
    expect(s.requestAll([newAddr(a, '10.77.0.1', 24), newAddr(99999, '10.77.1.1', 24), newAddr(b, '10.77.2.1', 24)])).toEqual([{ errno: 0 }, { errno: 19, extack: 'ipv4: Device not found' }, { errno: 0 }]);
    const addrs = ns.exec(['ip', '-4', '-o', 'addr', 'show']).stdout;
    expect(addrs).toMatch(/nla\s+inet 10\.77\.0\.1\/24/);
    expect(addrs).toMatch(/nlb\s+inet 10\.77\.2\.1\/24/);
    expect(addrs).not.toMatch(/10\.77\.1\.1/);
  });

  it('5000 requests in one requestAll all get their ack (batches sized to the receive buffer)', () => {
    ns.exec(['ip', 'link', 'add', 'nlr', 'type', 'bridge']);
    ns.exec(['ip', 'link', 'set', 'nlr', 'up']);
    const oif = links(s).find((l) => l.name === 'nlr')!.index;
    const reqs = Array.from({ length: 5000 }, (_, i) => newRoute(`10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, oif));
    const r = s.requestAll(reqs);
    expect(r.filter((x) => x.errno !== 0)).toEqual([]);
    expect(ns.exec(['ip', '-4', 'route', 'show', 'dev', 'nlr']).stdout.trim().split('\n')).toHaveLength(5000);
    expect(s.requestAll(reqs.slice(0, 2))).toEqual([{ errno: 17 }, { errno: 17 }]);
  });

  it('withNetns runs f inside and always switches back, also when f throws', () => {
    const home = nsInode();
    const target = statSync(ns.path).ino;
    let inside = 0;
    expect(() =>
      withNetns(ns.path, () => {
        inside = nsInode();
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(inside).toBe(target);
    expect(nsInode()).toBe(home);
    const other = createNetns('nl2');
    const seen = withNetns(ns.path, () => [nsInode(), withNetns(other.path, nsInode), nsInode()]);
    expect(seen).toEqual([target, statSync(other.path).ino, target]); // nested: back to the outer one
    expect(nsInode()).toBe(home);
    expect(() => withNetns('/var/run/netns/ftest-no-such-ns', nsInode)).toThrow(/open netns \/var\/run\/netns\/ftest-no-such-ns: No such file or directory/);
    expect(nsInode()).toBe(home);
  });

  it('openNetnsFd gives an fd of the namespace (for IFLA_NET_NS_FD); closeFd closes it', () => {
    const fd = openNetnsFd(ns.path);
    expect(fstatSync(fd).ino).toBe(statSync(ns.path).ino);
    closeFd(fd);
    expect(() => fstatSync(fd)).toThrow(/EBADF/);
  });
});

describe.skipIf(!canUseNetns || !haveShim)('netlink monitor on the real kernel', () => {
  let ns: Netns;
  let m: Monitor | undefined;
  beforeAll(() => {
    ns = createNetns('nlmon');
  });
  afterAll(() => {
    m?.close();
    cleanupNetns();
  });

  it('sees a link added and deleted with ip in its namespace', async () => {
    const seen: string[] = [];
    m = openMonitor({ netns: ns.path, groups: [RTNLGRP_LINK] }, (msgs) => {
      for (const x of msgs) if (x.type === RTM_NEWLINK || x.type === RTM_DELLINK) seen.push(`${x.type === RTM_NEWLINK ? 'new' : 'del'} ${linkOf(x).name}`);
    }, () => seen.push('overflow'));
    ns.exec(['ip', 'link', 'add', 'mon0', 'type', 'bridge']);
    await until(() => seen.includes('new mon0'), 'RTM_NEWLINK mon0');
    ns.exec(['ip', 'link', 'del', 'mon0']);
    await until(() => seen.includes('del mon0'), 'RTM_DELLINK mon0');
    expect(seen).not.toContain('overflow');
    m.close();
  });

  it('reports an overflow when notifications are dropped (small buffer, flood while not draining)', async () => {
    let overflows = 0;
    let routes = 0;
    m = openMonitor({ netns: ns.path, groups: [RTNLGRP_IPV4_ROUTE], rcvbuf: 4096 }, (msgs) => (routes += msgs.length), () => overflows++);
    ns.exec(['ip', 'link', 'add', 'flood0', 'type', 'bridge']);
    ns.exec(['ip', 'link', 'set', 'flood0', 'up']);
    const s = NetlinkSocket.open({ netns: ns.path });
    try {
      const oif = linkOf(s.dump(RTM_GETLINK, Buffer.alloc(16)).find((x) => linkOf(x).name === 'flood0')!).index;
      // synchronous: the event loop (and so the monitor) does not run until all 2000 are in
      const r = s.requestAll(Array.from({ length: 2000 }, (_, i) => newRoute(`10.200.${i >> 8}.${i & 255}`, oif)));
      expect(r.every((x) => x.errno === 0)).toBe(true);
    } finally {
      s.close();
    }
    await until(() => overflows > 0, 'onOverflow');
    expect(routes).toBeLessThan(2000); // some were dropped: that is what the overflow says
    m.close();
  });
});

describe.skipIf(!haveShim)('the shim, found from source (dist/bin/flannel.node)', () => {
  it('answers syscalls with -errno instead of throwing', () => {
    const a = nativeAddon()!;
    expect(a.open('/nonexistent/x', 0)).toBe(-2);
    expect(a.close(987654)).toBe(-9);
    const fd = a.socket(16, 3, 0);
    expect(fd).toBeGreaterThan(2);
    expect(a.bind(fd, 0)).toBe(0);
    expect(a.portId(fd)).toBeGreaterThan(0);
    expect(a.recv(fd, Buffer.alloc(64), 0x40)).toBe(-11); // nothing queued, MSG_DONTWAIT
    expect(a.close(fd)).toBe(0);
  });
});
