// Netlink framing against bytes the kernel (6.18) really sent and that iproute2 sends: headers,
// packing many requests per datagram, splitting replies, acks with extended-ack messages, errno names.
import { describe, expect, it } from 'vitest';
import { codeFromErrno, errnoText } from '../../../../../shared/kernel/errors.js';
import {
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  RTM_NEWLINK,
  encodeMessage,
  packRequests,
  parseDone,
  parseError,
  parseMessages,
} from '../../../../../shared/kernel/netlink/nlmsg.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** `ip link add x1 type nosuchkind` as a request: ifinfomsg + IFLA_IFNAME "x1" + IFLA_LINKINFO{IFLA_INFO_KIND "nosuchkind"} */
const NEWLINK_PAYLOAD = hex('00000000 00000000 00000000 00000000  0700 0300 78310000  1400 1200 0f00 0100 6e6f737563686b696e640000');
const NEWLINK_MSG = hex('3c000000 1000 0506 07000000 00000000');

/** The kernel's answer: EOPNOTSUPP, capped (header only), with the extended ack "Unknown device type". */
const REPLY_EXTACK = hex(
  '3c000000 0200 0003 07000000 6d510000  a1ffffff  3c000000 1000 0506 07000000 00000000  1800 0100 556e6b6e6f776e20646576696365207479706500',
);
/** `ip link add lo type dummy` with NLM_F_EXCL: EEXIST, capped, no TLVs. */
const REPLY_EEXIST = hex('24000000 0200 0001 08000000 6d510000  efffffff  38000000 1000 0506 08000000 00000000');

describe('header', () => {
  it('encodes len/type/flags/seq/pid little-endian, payload padded to 4', () => {
    const m = encodeMessage({ type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, payload: NEWLINK_PAYLOAD }, 7);
    expect(m.toString('hex')).toBe(Buffer.concat([NEWLINK_MSG, NEWLINK_PAYLOAD]).toString('hex'));
    const odd = encodeMessage({ type: 3, flags: 1, payload: Uint8Array.of(0xaa) }, 0xfffffffe, 42);
    expect(odd.toString('hex')).toBe('11000000' + '0300' + '0100' + 'feffffff' + '2a000000' + 'aa000000');
  });

  it('splits a datagram into messages, honouring padding, and rejects a length past the end', () => {
    const two = Buffer.concat([encodeMessage({ type: 16, flags: 2, payload: Uint8Array.of(1, 2, 3, 4, 5) }, 9), encodeMessage({ type: NLMSG_DONE, flags: 2, payload: Buffer.alloc(4) }, 9)]);
    const msgs = parseMessages(two);
    expect(msgs.map((m) => [m.type, m.flags, m.seq, m.payload.toString('hex')])).toEqual([
      [16, 2, 9, '0102030405'],
      [NLMSG_DONE, 2, 9, '00000000'],
    ]);
    expect(parseDone(msgs[1]!)).toEqual({ errno: 0 });
    const bad = Buffer.from(two);
    bad.writeUInt32LE(200, 0);
    expect(() => parseMessages(bad)).toThrow('malformed message at byte 0');
  });
});

describe('packRequests', () => {
  const req = (n: number) => ({ type: RTM_NEWLINK, flags: NLM_F_CREATE, payload: Buffer.alloc(n, n) });

  it('packs consecutive requests with consecutive sequence numbers and the extra flags', () => {
    const buf = Buffer.alloc(1024);
    const reqs = [req(1), req(4), req(6)];
    const p = packRequests(reqs, 0, buf, 100, NLM_F_REQUEST | NLM_F_ACK, 512);
    expect(p).toEqual({ count: 3, bytes: 20 + 20 + 24, last: 40 });
    const msgs = parseMessages(buf.subarray(0, p.bytes));
    expect(msgs.map((m) => [m.seq, m.flags, m.payload.length])).toEqual([
      [100, NLM_F_CREATE | NLM_F_REQUEST | NLM_F_ACK, 1],
      [101, NLM_F_CREATE | NLM_F_REQUEST | NLM_F_ACK, 4],
      [102, NLM_F_CREATE | NLM_F_REQUEST | NLM_F_ACK, 6],
    ]);
    expect(buf.subarray(17, 20).toString('hex')).toBe('000000'); // padding zeroed even in a dirty buffer
  });

  it('stops at the buffer size and at maxCount, resuming from `start`', () => {
    const reqs = Array.from({ length: 10 }, () => req(16)); // 32 bytes each
    const buf = Buffer.alloc(100);
    expect(packRequests(reqs, 0, buf, 1, 0, 512)).toEqual({ count: 3, bytes: 96, last: 64 });
    expect(packRequests(reqs, 8, buf, 1, 0, 512)).toEqual({ count: 2, bytes: 64, last: 32 });
    expect(packRequests(reqs, 0, buf, 1, 0, 2)).toEqual({ count: 2, bytes: 64, last: 32 });
    expect(() => packRequests([req(200)], 0, buf, 1, 0, 512)).toThrow('does not fit');
  });
});

describe('NLMSG_ERROR', () => {
  it('reads errno and the extended-ack message of a capped ack (kernel bytes)', () => {
    const [m] = parseMessages(REPLY_EXTACK);
    expect(m!.type).toBe(NLMSG_ERROR);
    expect(m!.flags).toBe(NLM_F_CAPPED | NLM_F_ACK_TLVS);
    expect(parseError(m!)).toEqual({ errno: 95, seq: 7, extack: 'Unknown device type' });
  });

  it('reads a plain capped error and an ack', () => {
    const [m] = parseMessages(REPLY_EEXIST);
    expect(parseError(m!)).toEqual({ errno: 17, seq: 8 });
    const ack = hex('24000000 0200 0001 09000000 00000000  00000000  20000000 1000 0506 09000000 00000000');
    expect(parseError(parseMessages(ack)[0]!)).toEqual({ errno: 0, seq: 9 });
  });

  it('skips the echoed request of an uncapped error to find the TLVs (offset included)', () => {
    // error -22 echoing a 24-byte request (16 header + 8 payload), then MSG "bad" and OFFS 20
    const p = hex('eaffffff  18000000 1000 0500 05000000 00000000 0102030405060708  0800 0100 62616400  0800 0200 14000000');
    const msg = { type: NLMSG_ERROR, flags: NLM_F_ACK_TLVS, seq: 5, payload: p };
    expect(parseError(msg)).toEqual({ errno: 22, seq: 5, extack: 'bad', offset: 20 });
  });

  it('reads the error of an NLMSG_DONE that ends a failed dump', () => {
    const text = Buffer.from('Invalid header for link dump\0'); // 29 bytes: attribute of 33, padded to 36
    const p = Buffer.concat([hex('eaffffff 2100 0100'), text, Buffer.alloc(3)]);
    expect(parseDone({ type: NLMSG_DONE, flags: 2 | NLM_F_ACK_TLVS, seq: 3, payload: p })).toEqual({ errno: 22, extack: 'Invalid header for link dump' });
  });
});

describe('errno names', () => {
  it('maps the numbers netlink answers with to KernelError codes and strerror texts', () => {
    expect([17, 19, 1, 16, 105, 3, 99, 95, 2, 22].map((n) => codeFromErrno(-n))).toEqual([
      'EEXIST', 'ENODEV', 'EPERM', 'EBUSY', 'ENOBUFS', 'ESRCH', 'EADDRNOTAVAIL', 'EOPNOTSUPP', 'ENOENT', 'EINVAL',
    ]);
    expect(errnoText(105)).toBe('No buffer space available');
    expect(codeFromErrno(4095)).toBe('UNKNOWN');
    expect(errnoText(4095)).toBe('errno 4095');
  });
});
