// NetlinkSocket's exchange logic against a scripted stand-in for the kernel (the shim is replaced
// through provideNativeAddon): batching and ack matching, send retries, lost replies, dumps and their
// retries, error wording. The real kernel is in test/integration/kernel/netlink-socket.test.ts.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KernelError } from '../../../../../shared/kernel/errors.js';
import {
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  RTM_GETLINK,
  RTM_NEWLINK,
  encodeMessage,
  parseMessages,
  type NlMessage,
} from '../../../../../shared/kernel/netlink/nlmsg.js';
import { NetlinkSocket } from '../../../../../shared/kernel/netlink/socket.js';
import { provideNativeAddon, type Addon } from '../../../../../shared/native/load.js';

/** A stand-in kernel: answers what is sent with what `handle` says; records every datagram. */
class FakeKernel implements Addon {
  sent: NlMessage[][] = [];
  queue: Buffer[] = [];
  closed: number[] = [];
  /** errno to return from the next sends (ENOBUFS = 105) */
  sendFailures: number[] = [];
  /** per request: errno (0 = ack) and optional extack; per dump: the datagrams to answer with */
  handle: (m: NlMessage) => Buffer[] = (m) => (m.flags & NLM_F_ACK ? [ack(m.seq, 0)] : []);

  flock = () => 0;
  socket = () => 7;
  bind = () => 0;
  portId = () => 4242;
  setsockopt = () => 0;
  /** SO_RCVBUF as the kernel reports it (twice what was asked) */
  rcvbuf = 8 * 1024 * 1024;
  getsockopt = () => this.rcvbuf;
  setns = () => 0;
  open = () => 9;
  close = (fd: number) => {
    this.closed.push(fd);
    return 0;
  };
  send = (_fd: number, bytes: Uint8Array, length?: number) => {
    const f = this.sendFailures.shift();
    if (f !== undefined) return -f;
    const msgs = parseMessages(Buffer.from(bytes.subarray(0, length ?? bytes.length)));
    this.sent.push(msgs);
    for (const m of msgs) this.queue.push(...this.handle(m));
    return length ?? bytes.length;
  };
  recv = (_fd: number, into: Uint8Array) => {
    const d = this.queue.shift();
    if (d === undefined) return -11; // EAGAIN: SO_RCVTIMEO expired
    if (typeof d === 'number') return d;
    into.set(d.subarray(0, into.length));
    return d.length;
  };
}

/** An NLMSG_ERROR datagram answering `seq`: capped, with an extack message when given. */
function ack(seq: number, errno: number, extack?: string): Buffer {
  const p = Buffer.alloc(20);
  p.writeInt32LE(-errno, 0);
  p.writeUInt32LE(16, 4);
  p.writeUInt32LE(seq, 12);
  const tlv = extack === undefined ? Buffer.alloc(0) : attr(1, Buffer.from(`${extack}\0`));
  return encodeMessage({ type: NLMSG_ERROR, flags: NLM_F_CAPPED | (extack ? NLM_F_ACK_TLVS : 0), payload: Buffer.concat([p, tlv]) }, seq);
}

function attr(type: number, v: Buffer): Buffer {
  const b = Buffer.alloc((4 + v.length + 3) & ~3);
  b.writeUInt16LE(4 + v.length, 0);
  b.writeUInt16LE(type, 2);
  v.copy(b, 4);
  return b;
}

/** The KernelError `f` throws (fails the test if it throws something else or nothing). */
function thrown(f: () => unknown): KernelError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(KernelError);
    return e as KernelError;
  }
  throw new Error('did not throw');
}

const link = (i: number) => ({ type: RTM_NEWLINK, flags: 0, payload: Buffer.alloc(16, i) });
let k: FakeKernel;

beforeEach(() => {
  k = new FakeKernel();
  provideNativeAddon(k);
});
afterEach(() => {
  delete process.env.FLANNEL_NATIVE;
});

describe('requestAll', () => {
  it('packs the requests in one datagram and returns one result per request in order', () => {
    // as the kernel does: a failure is always answered, a success only when NLM_F_ACK asks
    k.handle = (m) => (m.payload[0] === 2 ? [ack(m.seq, 17, 'already there')] : m.flags & NLM_F_ACK ? [ack(m.seq, 0)] : []);
    const s = NetlinkSocket.open();
    const r = s.requestAll([link(1), link(2), link(3)]);
    expect(r).toEqual([{ errno: 0 }, { errno: 17, extack: 'already there' }, { errno: 0 }]);
    expect(k.sent).toHaveLength(1);
    // only the last asks for an ack: when it comes, every earlier failure has been answered before it
    expect(k.sent[0]!.map((m) => m.flags)).toEqual([NLM_F_REQUEST, NLM_F_REQUEST, NLM_F_REQUEST | NLM_F_ACK]);
  });

  it('a failing last request ends the datagram too', () => {
    k.handle = (m) => (m.payload[0] === 3 ? [ack(m.seq, 19)] : m.flags & NLM_F_ACK ? [ack(m.seq, 0)] : []);
    const s = NetlinkSocket.open();
    expect(s.requestAll([link(1), link(2), link(3)])).toEqual([{ errno: 0 }, { errno: 0 }, { errno: 19 }]);
  });

  it('matches answers by sequence number, ignoring those of other exchanges and repeats', () => {
    k.handle = () => [];
    const s = NetlinkSocket.open();
    k.handle = (m) => (m.payload[0] === 3 ? [ack(m.seq + 1000, 1), ack(m.seq - 2, 22), ack(m.seq - 1, 19), ack(m.seq - 1, 17), ack(m.seq, 0)] : []);
    expect(s.requestAll([link(1), link(2), link(3)])).toEqual([{ errno: 22 }, { errno: 19 }, { errno: 0 }]);
  });

  it('splits a large list into bounded datagrams (their acks must fit the receive buffer)', () => {
    const s = NetlinkSocket.open();
    const reqs = Array.from({ length: 1200 }, (_, i) => link(i));
    const r = s.requestAll(reqs);
    expect(r).toHaveLength(1200);
    expect(r.every((x) => x.errno === 0)).toBe(true);
    expect(k.sent.map((d) => d.length)).toEqual([512, 512, 176]);
    const seqs = k.sent.flat().map((m) => m.seq);
    expect(new Set(seqs).size).toBe(1200); // every request its own sequence number
  });

  it('makes batches smaller when the receive buffer could not be enlarged (rmem_max without CAP_NET_ADMIN)', () => {
    k.rcvbuf = 425984;
    const s = NetlinkSocket.open();
    s.requestAll(Array.from({ length: 500 }, (_, i) => link(i)));
    expect(k.sent.map((d) => d.length)).toEqual([208, 208, 84]);
  });

  it('retries a send the kernel refused for lack of memory (ENOBUFS), and reports any other send error', () => {
    const s = NetlinkSocket.open();
    k.sendFailures = [105, 105];
    expect(s.requestAll([link(1)])).toEqual([{ errno: 0 }]);
    k.sendFailures = [1];
    expect(thrown(() => s.requestAll([link(1)]))).toMatchObject({ code: 'EPERM', message: 'netlink send: Operation not permitted' });
  });

  it('throws when replies do not come (no endless wait) or were dropped by an overflow', () => {
    const s = NetlinkSocket.open({ netns: '/var/run/netns/x' });
    k.handle = () => [];
    expect(() => s.requestAll([link(1)])).toThrow('netlink (netns /var/run/netns/x): no reply from the kernel within 10 s');
    k.handle = () => [-105 as unknown as Buffer];
    expect(thrown(() => s.requestAll([link(1)]))).toMatchObject({ code: 'ENOBUFS', message: 'netlink (netns /var/run/netns/x): the receive buffer overflowed and replies were lost' });
  });

  it('request(): one request, a KernelError naming the object when refused', () => {
    k.handle = (m) => [ack(m.seq, 19, 'no such link')];
    const s = NetlinkSocket.open();
    expect(thrown(() => s.request(link(1), 'link set eth9 up'))).toMatchObject({ code: 'ENODEV', message: 'link set eth9 up: No such device: no such link' });
  });
});

describe('query', () => {
  it('returns the messages answering the request before its ack, and throws a refusal', () => {
    const reply = (seq: number, i: number) => encodeMessage({ type: RTM_NEWLINK, flags: 0, payload: Buffer.alloc(16, i) }, seq);
    k.handle = (m) => [reply(m.seq - 1, 8), reply(m.seq, 5), ack(m.seq, 0)];
    const s = NetlinkSocket.open();
    expect(s.query({ type: RTM_GETLINK, flags: 0, payload: Buffer.alloc(16) }, 'link show eth0').map((m) => m.payload[0])).toEqual([5]);
    k.handle = (m) => [ack(m.seq, 19)];
    expect(thrown(() => s.query({ type: RTM_GETLINK, flags: 0, payload: Buffer.alloc(16) }, 'link show eth0'))).toMatchObject({ code: 'ENODEV', message: 'link show eth0: No such device' });
  });
});

describe('dump', () => {
  const part = (seq: number, i: number, flags = 0) => encodeMessage({ type: RTM_NEWLINK, flags: NLM_F_MULTI | flags, payload: Buffer.alloc(16, i) }, seq);
  const done = (seq: number, errno = 0, flags = 0) => {
    const p = Buffer.alloc(4);
    p.writeInt32LE(-errno, 0);
    return encodeMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI | flags, payload: p }, seq);
  };

  it('collects every message of every datagram until NLMSG_DONE', () => {
    k.handle = (m) => [Buffer.concat([part(m.seq, 1), part(m.seq, 2)]), Buffer.concat([part(m.seq + 5, 9), part(m.seq, 3), done(m.seq)])];
    const s = NetlinkSocket.open();
    const msgs = s.dump(RTM_GETLINK, Buffer.alloc(16));
    expect(msgs.map((m) => m.payload[0])).toEqual([1, 2, 3]);
    expect(k.sent[0]![0]!.flags).toBe(NLM_F_REQUEST | NLM_F_DUMP);
    expect(k.sent[0]![0]!.type).toBe(RTM_GETLINK);
  });

  it('does the dump again when the kernel says it was interrupted (NLM_F_DUMP_INTR)', () => {
    let n = 0;
    k.handle = (m) => (++n === 1 ? [Buffer.concat([part(m.seq, 1), done(m.seq, 0, NLM_F_DUMP_INTR)])] : [Buffer.concat([part(m.seq, 7), done(m.seq)])]);
    const s = NetlinkSocket.open();
    expect(s.dump(RTM_GETLINK, Buffer.alloc(16)).map((m) => m.payload[0])).toEqual([7]);
    expect(k.sent).toHaveLength(2);
  });

  it('throws the error of the dump as a KernelError', () => {
    k.handle = (m) => [ack(m.seq, 22, 'Invalid header for link dump')];
    const s = NetlinkSocket.open();
    expect(thrown(() => s.dump(RTM_GETLINK, Buffer.alloc(1), 'link dump'))).toMatchObject({ code: 'EINVAL', message: 'link dump: Invalid argument: Invalid header for link dump' });
    k.handle = (m) => [done(m.seq, 95)];
    expect(() => s.dump(RTM_GETLINK, Buffer.alloc(16), 'link dump')).toThrow('link dump: Operation not supported');
  });
});

describe('without the shim', () => {
  it('open() says why, with FLANNEL_NATIVE=off', () => {
    process.env.FLANNEL_NATIVE = 'off';
    expect(() => NetlinkSocket.open()).toThrow('netlink: the native shim flannel.node is not available (disabled by FLANNEL_NATIVE=off)');
  });

  it('close() closes the fd once, and a closed socket refuses use', () => {
    const s = NetlinkSocket.open();
    s.close();
    s.close();
    expect(k.closed).toEqual([7]);
    expect(() => s.requestAll([link(1)])).toThrow('socket used after close');
  });
});
