// The rtnetlink codec against iproute2, both ways, without a socket:
// - writes: each message kind encoded for the op the iproute2 adapter would run as `ip …`/`bridge …`
//   equals the bytes iproute2 6.1 sent for that command (`strace -e trace=sendmsg -e write=3 ip …` in a
//   scratch namespace; the 16-byte netlink header, which the socket builds, left out). Where we address
//   a device by name (IFLA_IFNAME, index 0) instead of iproute2's looked-up index, the golden says so.
// - reads: the kernel's replies to our dumps in one namespace (h2x-dump.json: links incl. a vxlan, a
//   bridge port whose veth peer is in another namespace, addresses, routes, neighbours, FDB), decoded,
//   equal what iproute2/parse.ts makes of `ip -d -j …` printed for the same namespace at the same time.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { addrsOf, parseLink, parseRoute, type J } from '../../../../../shared/kernel/iproute2/parse.js';
import { AttrWriter, attrMap, readAttrs } from '../../../../../shared/kernel/netlink/attr.js';
import { addrMsg, decodeAddr, addrIndexOf } from '../../../../../shared/kernel/netlink/addr.js';
import {
  addBridgeMsg,
  addIpipMsg,
  addVethMsg,
  addVxlanMsg,
  addWireguardMsg,
  decodeLink,
  delLinkMsg,
  linkIndexOf,
  linkNameOf,
  resolveLinkNames,
  setBridgePortMsg,
  setLinkMsg,
  vlanMsg,
} from '../../../../../shared/kernel/netlink/link.js';
import { decodeFdb, decodeNeigh, delNeighMsg, fdbMsg, neighIndexOf, replaceNeighMsg } from '../../../../../shared/kernel/netlink/neigh.js';
import type { NlRequest } from '../../../../../shared/kernel/netlink/nlmsg.js';
import { decodeRoute, routeGetMsg, routeHead, routeMsg } from '../../../../../shared/kernel/netlink/route.js';

/** iproute2's flags minus NLM_F_REQUEST|NLM_F_ACK (the socket adds those) */
const flags = (iproute2: number) => iproute2 & ~0x5;

function golden(req: NlRequest, type: number, iproute2Flags: number, hex: string): void {
  expect({ type: req.type, flags: req.flags, payload: Buffer.from(req.payload).toString('hex') }).toEqual({ type, flags: flags(iproute2Flags), payload: hex });
}

/** `name\0` as an IFLA_IFNAME attribute, hex */
const ifname = (name: string) => Buffer.from(new AttrWriter().attrStr(3, name).bytes()).toString('hex');
const ZERO_IFINFO = '00'.repeat(16);

describe('rtnetlink writes: the bytes iproute2 sends', () => {
  it('links: bridge, vxlan (every attribute, IPv4 and IPv6), veth with the peer in a namespace fd, ipip, wireguard', () => {
    golden(addBridgeMsg({ op: 'addBridge', name: 'ctbr3', mtu: 1400, mac: '02:00:00:00:00:01' }), 16, 0x605,
      '0000000000000000000000000000000008000400780500000a00010002000000000100000a0003006374627233000000100012000a0001006272696467650000');
    golden(addBridgeMsg({ op: 'addBridge', name: 'ctbr2', mtu: 1400, mac: '02:00:00:00:00:01', vlanFiltering: true }), 16, 0x605,
      '0000000000000000000000000000000008000400780500000a00010002000000000100000a00030063746272320000001c0012000a00010062726964676500000c0002000500070001000000');
    // ip link add vx0 mtu 1400 address 02:…:02 type vxlan id 7 local 10.0.0.1 dev d0 (index 6) dstport 8472 nolearning gbp
    golden(addVxlanMsg('vx0', { vni: 7, port: 8472, local: '10.0.0.1', dev: 'd0', learning: false, gbp: true, mtu: 1400, mac: '02:00:00:00:00:02' }, 6), 16, 0x605,
      '0000000000000000000000000000000008000400780500000a00010002000000000200000800030076783000400012000900010076786c616e000000300002000800030006000000040017000800010007000000080004000a000001050007000000000006000f0021180000');
    golden(addVxlanMsg('vx1', { vni: 8, port: 4789, local: '', learning: true }), 16, 0x605,
      '0000000000000000000000000000000008000300767831002c0012000900010076786c616e0000001c0002000800010008000000050007000100000006000f0012b50000');
    golden(addVxlanMsg('vx2', { vni: 9, port: 4789, local: 'fd00::1', learning: false }), 16, 0x605,
      '000000000000000000000000000000000800030076783200400012000900010076786c616e00000030000200080001000900000014001100fd000000000000000000000000000001050007000000000006000f0012b50000');
    // ip link add ve0 mtu 1450 address …03 type veth peer name eth0 mtu 1450 address …04 netns <path> (opened as fd 4)
    golden(addVethMsg({ op: 'addVeth', name: 've0', peer: 'eth0', peerNetns: '/x', mtu: 1450, mac: '02:00:00:00:00:03', peerMac: '02:00:00:00:00:04' }, 4), 16, 0x605,
      '0000000000000000000000000000000008000400aa0500000a000100020000000003000008000300766530004c0012000800010076657468400002003c0001000000000000000000000000000000000008000400aa0500000a000100020000000004000008001c0004000000090003006574683000000000');
    golden(addIpipMsg({ op: 'addIpip', name: 'tun0', local: '10.0.0.1', dev: 'd0', ttl: 64 }, 6), 16, 0x605,
      '000000000000000000000000000000000900030074756e30000000006800120008000100697069705c0002000500090000000000080002000a00000105000a0001000000050005000000000005000400400000000800010006000000080014000000000006000f0000000000060010000000000006001100000000000600120000000000');
    golden(addIpipMsg({ op: 'addIpip', name: 'tun1', local: '10.0.0.1', mtu: 1480 }), 16, 0x605,
      '0000000000000000000000000000000008000400c80500000900030074756e31000000006800120008000100697069705c0002000500090000000000080002000a00000105000a0001000000050005000000000005000400000000000800010000000000080014000000000006000f0000000000060010000000000006001100000000000600120000000000');
    golden(addWireguardMsg({ op: 'addWireguard', name: 'wg0' }), 16, 0x605, '000000000000000000000000000000000800030077673000140012000d000100776972656775617264000000');
  });

  it('link changes: set (one message, by name), bridge port flags, delete, bridge vlans', () => {
    // iproute2: index 11 in the header; ours: index 0 and IFLA_IFNAME "ve0" first, then iproute2's attributes
    golden(setLinkMsg('ve0', { mtu: 1400, mac: '02:00:00:00:00:05', promisc: true, masterIndex: 7, up: true }), 16, 0x5,
      '0000000000000000' + '0101000001010000' + ifname('ve0') + '08000400780500000a000100020000000005000008000a0007000000');
    golden(setLinkMsg('ctbr3', { up: true }), 16, 0x5, '0000000000000000' + '0100000001000000' + ifname('ctbr3'));
    golden(setLinkMsg('ctbr3', { up: false }), 16, 0x5, '0000000000000000' + '0000000001000000' + ifname('ctbr3'));
    golden(setBridgePortMsg('ve0', { hairpin: true, isolated: false }), 16, 0x5,
      ZERO_IFINFO + ifname('ve0') + '28001200100001006272696467655f736c6176651400050005000400010000000500210000000000');
    golden(delLinkMsg('vx1'), 17, 0x5, ZERO_IFINFO + ifname('vx1'));
    golden(vlanMsg({ op: 'addVlan', dev: 've0', vid: 10, pvid: true, untagged: true }, 11), 19, 0x5, '070000000b00000000000000000000000c001a000800020006000a00');
    golden(vlanMsg({ op: 'addVlan', dev: 'ctbr3', vid: 20, vidEnd: 30, self: true }, 7), 19, 0x5,
      '070000000700000000000000000000001c001a00060000000200000008000200080014000800020010001e00');
    golden(vlanMsg({ op: 'deleteVlan', dev: 've0', vid: 10 }, 11), 17, 0x5, '070000000b00000000000000000000000c001a000800020000000a00');
  });

  it('addresses: add/replace with the computed broadcast, /31, IPv6, delete', () => {
    golden(addrMsg('replace', 7, '10.1.0.1/24'), 20, 0x505, '0218000007000000080002000a010001080001000a010001080004000a0100ff');
    golden(addrMsg('add', 7, '10.2.0.1/24'), 20, 0x605, '0218000007000000080002000a020001080001000a020001080004000a0200ff');
    golden(addrMsg('add', 7, '10.3.0.1/31'), 20, 0x605, '021f000007000000080002000a030001080001000a030001');
    golden(addrMsg('add', 7, 'fd00:1::1/64'), 20, 0x605, '0a4000000700000014000200fd00000100000000000000000000000114000100fd000001000000000000000000000001');
    golden(addrMsg('del', 7, '10.2.0.1/24'), 21, 0x5, '0218000007000000080002000a020001080001000a020001');
    golden(addrMsg('del', 7, 'fd00:1::1/64'), 21, 0x5, '0a4000000700000014000200fd00000100000000000000000000000114000100fd000001000000000000000000000001');
  });

  it('routes: replace/add/prepend/del, onlink, dev-only, every attribute, big tables, blackhole/unreachable/prohibit, IPv6, get', () => {
    golden(routeMsg('replace', { dst: '10.244.2.0/24', via: '10.244.2.0', dev: 'vx0', onlink: true }, 8), 24, 0x505,
      '02180000fe03000104000000080001000af40200080005000af402000800040008000000');
    golden(routeMsg('add', { dst: '10.5.0.0/16', via: '10.0.0.2', dev: 'd0' }, 6), 24, 0x605, '02100000fe03000100000000080001000a050000080005000a0000020800040006000000');
    golden(routeMsg('add', { dst: '10.6.0.0/16', dev: 'd0' }, 6), 24, 0x605, '02100000fe03fd0100000000080001000a0600000800040006000000');
    golden(routeMsg('prepend', { dst: '10.5.0.0/16', via: '10.0.0.3', dev: 'd0' }, 6), 24, 0x405, '02100000fe03000100000000080001000a050000080005000a0000030800040006000000');
    const full = { dst: '10.7.0.0/16', via: '10.0.0.2', dev: 'd0', src: '10.0.0.1', table: 100, scope: 'global', proto: 'static', metric: 50, mtu: 1400, advmss: 1360 } as const;
    golden(routeMsg('add', full, 6), 24, 0x605,
      '021000006404000100000000080001000a070000080005000a000002080007000a000001080006003200000008000400060000001400080008000200780500000800080050050000');
    golden(routeMsg('add', { dst: '10.7.0.0/16', via: '10.0.0.2', dev: 'd0', table: 1000 }, 6), 24, 0x605,
      '021000000003000100000000080001000a070000080005000a00000208000f00e80300000800040006000000');
    golden(routeMsg('add', { dst: '10.8.0.0/16', type: 'blackhole' }), 24, 0x605, '02100000fe03000600000000080001000a080000');
    golden(routeMsg('add', { dst: '10.9.0.0/16', type: 'unreachable' }), 24, 0x605, '02100000fe03000700000000080001000a090000');
    golden(routeMsg('add', { dst: '10.10.0.0/16', type: 'prohibit' }), 24, 0x605, '02100000fe03000800000000080001000a0a0000');
    golden(routeMsg('add', { dst: 'default', via: '10.0.0.254', dev: 'd0' }, 6), 24, 0x605, '02000000fe03000100000000080005000a0000fe0800040006000000');
    golden(routeMsg('add', { dst: '10.11.0.5', dev: 'd0' }, 6), 24, 0x605, '02200000fe03fd0100000000080001000a0b00050800040006000000');
    golden(routeMsg('add', { dst: 'fd00:5::/64', via: 'fd00:1::2', dev: 'ctbr3', onlink: true }, 7), 24, 0x605,
      '0a400000fe0300010400000014000100fd00000500000000000000000000000014000500fd0000010000000000000000000000020800040007000000');
    golden(routeMsg('del', { dst: '10.5.0.0/16', via: '10.0.0.2', dev: 'd0' }, 6), 25, 0x5, '02100000fe00ff0000000000080001000a050000080005000a0000020800040006000000');
    golden(routeMsg('del', { dst: '10.8.0.0/16', type: 'blackhole' }), 25, 0x5, '02100000fe00ff0600000000080001000a080000');
    golden(routeGetMsg('10.5.1.1'), 26, 0x1, '022000000000000000100000080001000a050101');
  });

  it('neighbours and FDB entries', () => {
    golden(replaceNeighMsg(8, '10.244.2.0', '02:00:00:00:02:01'), 28, 0x505, '020000000800000080000000080001000af402000a0002000200000002010000');
    golden(replaceNeighMsg(8, 'fd00:9::1', '02:00:00:00:02:01'), 28, 0x505, '0a000000080000008000000014000100fd0000090000000000000000000000010a0002000200000002010000');
    golden(delNeighMsg(8, '10.244.2.0'), 29, 0x5, '020000000800000080000000080001000af40200');
    golden(fdbMsg('replace', 8, '02:00:00:00:02:01', '10.0.0.2'), 28, 0x505, '0700000008000000c00002000a0002000200000002010000080001000a000002');
    golden(fdbMsg('append', 8, '00:00:00:00:00:00', '10.0.0.3'), 28, 0xc05, '0700000008000000c00002000a0002000000000000000000080001000a000003');
    golden(fdbMsg('del', 8, '02:00:00:00:02:01', '10.0.0.2'), 29, 0x5, '0700000008000000c00002000a0002000200000002010000080001000a000002');
    golden(fdbMsg('del', 8, '00:00:00:00:00:00'), 29, 0x5, '0700000008000000c00002000a0002000000000000000000');
  });
});

describe('attributes', () => {
  it('round trip: nested, padded, flags, strings, big-endian', () => {
    const w = new AttrWriter(4);
    w.attrU8(1, 7).attrU16(2, 0x1234).attrBe16(3, 8472).attrU32(4, 0xdeadbeef).attrStr(5, 'abc').attr(6);
    w.nest(7, (n) => n.attrU32(1, 1).nest(2, (m) => m.attrStr(1, 'x')));
    const a = attrMap(w.bytes());
    expect([...a.keys()]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(a.get(1)!.readUInt8(0)).toBe(7);
    expect(a.get(2)!.readUInt16LE(0)).toBe(0x1234);
    expect(a.get(3)!.readUInt16BE(0)).toBe(8472);
    expect(a.get(4)!.readUInt32LE(0)).toBe(0xdeadbeef);
    expect(a.get(5)!.toString()).toBe('abc\0');
    expect(a.get(6)!.length).toBe(0);
    const nested = readAttrs(a.get(7)!);
    expect(nested.map((x) => x.type)).toEqual([1, 2]);
    expect(attrMap(nested[1]!.data).get(1)!.toString()).toBe('x\0');
    expect(w.length % 4).toBe(0);
  });

  it('a truncated record ends the walk; NLA_F_NESTED is masked off the type', () => {
    const b = Buffer.from('0800018001000000' + '0c000200', 'hex'); // type 1|NESTED, then a record longer than the buffer
    expect(readAttrs(b)).toEqual([{ type: 1, data: Buffer.from('01000000', 'hex') }]);
  });
});

interface Dump {
  links: string[];
  addrs: string[];
  routes: string[];
  routes6: string[];
  neigh: string[];
  fdb: string[];
  linkJson: J[];
  addrJson: J[];
  routeJson: J[];
  route6Json: J[];
  neighJson: J[];
  fdbJson: J[];
}

const dump = JSON.parse(readFileSync(new URL('./h2x-dump.json', import.meta.url), 'utf8')) as Dump;
const bytes = (hex: string) => Buffer.from(hex, 'hex');

describe('rtnetlink reads: decoded as iproute2/parse.ts reads `ip -j`', () => {
  const names = new Map(dump.links.map((h) => [linkIndexOf(bytes(h)), linkNameOf(bytes(h))!]));
  const nameOf = (i: number) => names.get(i);

  it('links (loopback, bridge, veth pair, a port with its peer in another namespace, vxlan)', () => {
    const ours = dump.links.map((h) => resolveLinkNames(decodeLink(bytes(h)), nameOf));
    expect(ours).toEqual(dump.linkJson.map(parseLink));
    expect(ours.find((l) => l.name === 've0')).toMatchObject({ master: 'ctbr3', port: { hairpin: true, isolated: false }, peerIndex: 2, promisc: true });
    expect(ours.find((l) => l.name === 'vx0')).toMatchObject({ vxlan: { vni: 7, port: 8472, local: '10.0.0.1', dev: 'd0', learning: false, gbp: true } });
  });

  it('addresses', () => {
    const ours = dump.addrs.map((h) => decodeAddr(bytes(h), nameOf(addrIndexOf(bytes(h)))!)).filter((a) => a !== undefined);
    const theirs = dump.addrJson.flatMap(addrsOf);
    expect(new Set(ours.map((a) => JSON.stringify(a)))).toEqual(new Set(theirs.map((a) => JSON.stringify(a))));
    expect(ours).toHaveLength(theirs.length);
  });

  it('routes of the main table, IPv4 and IPv6', () => {
    for (const [hexes, json, family] of [[dump.routes, dump.routeJson, 4], [dump.routes6, dump.route6Json, 6]] as const) {
      const main = hexes.map(bytes).filter((p) => routeHead(p).table === 254 && !routeHead(p).cloned);
      expect(main.map((p) => decodeRoute(p, family, nameOf, { showTable: true }))).toEqual(json.map((j) => parseRoute(j, family)));
    }
  });

  it('neighbours and FDB entries of a vxlan device', () => {
    const vx0 = [...names].find(([, n]) => n === 'vx0')![0];
    const neighs = dump.neigh.map(bytes).filter((p) => neighIndexOf(p) === vx0).map((p) => decodeNeigh(p, 'vx0'));
    expect(neighs).toEqual(dump.neighJson.map((j) => ({ dev: 'vx0', ip: j.dst, mac: j.lladdr, permanent: (j.state as string[]).includes('PERMANENT') })));
    const fdb = dump.fdb.map(bytes).filter((p) => neighIndexOf(p) === vx0).map((p) => decodeFdb(p, 'vx0'));
    expect(fdb).toEqual(
      dump.fdbJson.map((j) => ({ dev: 'vx0', mac: j.mac, self: (j.flags as string[]).includes('self'), permanent: j.state === 'permanent', ...(j.dst !== undefined ? { dst: j.dst } : {}) })),
    );
    expect(fdb).toContainEqual({ dev: 'vx0', mac: '02:00:00:00:02:01', dst: '10.0.0.2', self: true, permanent: true });
  });
});
