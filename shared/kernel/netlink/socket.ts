// A NETLINK_ROUTE socket driven synchronously: rtnetlink answers within the sendmsg that carries the
// request (the kernel runs the handler in our syscall and queues the reply before returning), so a
// synchronous send-then-receive costs two syscalls and never waits on anything but the kernel. Being
// synchronous is also what makes namespaces safe (netns.ts): no other JS runs in between.
//
// Requests go out many per datagram (the kernel processes every message of a datagram in order and
// acks each one on its own, whatever happened to the previous ones); the batch is bounded so that its
// acks fit the receive buffer: the kernel drops an ack that does not fit (and reports ENOBUFS).
// Framing lives in nlmsg.ts, the syscalls in the native shim (shared/native).
import { KernelError } from '../errors.js';
import type { Addon } from '../../native/load.js';
import {
  NETLINK_ADD_MEMBERSHIP,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_GET_STRICT_CHK,
  NETLINK_ROUTE,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_OVERRUN,
  SOL_NETLINK,
  packRequests,
  parseDone,
  parseError,
  parseMessages,
  writeHeader,
  type NlMessage,
  type NlRequest,
} from './nlmsg.js';
import { errnoError, requireAddon, withNetns } from './netns.js';

export type { NlMessage, NlRequest } from './nlmsg.js';

/** The outcome of one request: errno 0 = acked OK, else the positive errno, with the kernel's message. */
export interface NlResult {
  errno: number;
  extack?: string;
}

// socket(7) / errno values of Linux (x86-64 and the generic ABI agree on these)
export const AF_NETLINK = 16;
const SOCK_RAW = 3;
export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_RCVBUFFORCE = 33;
export const SO_RCVTIMEO = 20;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const EAGAIN = 11;
export const ENOBUFS = 105;

/** Receive buffer: the kernel sizes a dump datagram to at most 32 KiB, notifications are smaller. */
const RECV_BYTES = 64 * 1024;
/** Send buffer: requests packed per sendmsg (well under the 212 KiB default SO_SNDBUF). */
const SEND_BYTES = 64 * 1024;
/** Requests per sendmsg, at most: a datagram's acks are all queued before we read the first. */
const MAX_BATCH = 512;
/** Receive buffer reserved per ack in a batch: an ack's skb truesize is ~0.8 KiB, more with a message. */
const BYTES_PER_ACK = 2048;
/** Receive buffer of a request socket, large enough for MAX_BATCH acks with a wide margin. */
const REQUEST_RCVBUF = 4 * 1024 * 1024;
/** A reply is queued before sendmsg returns: not having one after this long is a bug, not a wait. */
const RECV_TIMEOUT_MS = 10_000;
const SEND_RETRIES = 10;
const DUMP_RETRIES = 10;

/** An open netlink socket: the shim, the fd, and the buffer used to receive. */
export interface RawSocket {
  addon: Addon;
  fd: number;
}

/**
 * A NETLINK_ROUTE socket, created in the namespace at `netns` when given (it stays there), bound with a
 * kernel-chosen port id, with extended acks on. Throws a KernelError (and leaks no fd) on failure.
 */
export function openRaw(o: { netns?: string; groups?: readonly number[]; rcvbuf?: number; strictCheck?: boolean }): RawSocket {
  const addon = requireAddon();
  const make = (): number => addon.socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  const fd = o.netns !== undefined ? withNetns(o.netns, make) : make();
  if (fd < 0) throw errnoError(`netlink socket${o.netns !== undefined ? ` in ${o.netns}` : ''}`, -fd);
  try {
    // best effort: an older kernel without them still works, only with plainer errors / bigger acks
    addon.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
    addon.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
    if (o.strictCheck) check(addon.setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1), 'setsockopt NETLINK_GET_STRICT_CHK');
    if (o.rcvbuf !== undefined) {
      // FORCE goes past net.core.rmem_max (root); without CAP_NET_ADMIN the capped size still works
      if (addon.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, o.rcvbuf) < 0) check(addon.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, o.rcvbuf), 'setsockopt SO_RCVBUF');
    }
    check(addon.bind(fd, 0), 'bind netlink socket');
    for (const g of o.groups ?? []) check(addon.setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g), `join netlink group ${g}`);
  } catch (err) {
    addon.close(fd);
    throw err;
  }
  return { addon, fd };
}

function check(rc: number, what: string): void {
  if (rc < 0) throw errnoError(what, -rc);
}

export class NetlinkSocket {
  private readonly recvBuf = Buffer.allocUnsafe(RECV_BYTES);
  private readonly sendBuf = Buffer.allocUnsafe(SEND_BYTES);
  private seq = 1;
  private closed = false;

  private constructor(
    private readonly addon: Addon,
    private readonly fd: number,
    /** where it lives, for error messages */
    readonly netns: string | undefined,
    /** requests per datagram: their acks must fit the receive buffer we actually got */
    private readonly batch: number,
  ) {}

  /**
   * A NETLINK_ROUTE socket; with `netns` (a file path such as /var/run/netns/x) it is created inside
   * that namespace (setns there and back, synchronously, always restored) and every request acts
   * there. `strictCheck`: NETLINK_GET_STRICT_CHK (dump requests then carry a full header and may
   * filter). Throws a KernelError if the shim is unavailable or the namespace cannot be entered.
   */
  static open(o: { netns?: string; strictCheck?: boolean } = {}): NetlinkSocket {
    const { addon, fd } = openRaw({ ...o, rcvbuf: REQUEST_RCVBUF });
    addon.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, RECV_TIMEOUT_MS);
    // without CAP_NET_ADMIN in the initial namespace, SO_RCVBUFFORCE fails and rmem_max caps the buffer
    const rcvbuf = addon.getsockopt(fd, SOL_SOCKET, SO_RCVBUF);
    const batch = rcvbuf > 0 ? Math.max(16, Math.min(MAX_BATCH, Math.floor(rcvbuf / BYTES_PER_ACK))) : 16;
    return new NetlinkSocket(addon, fd, o.netns, batch);
  }

  /**
   * Sends the requests (NLM_F_REQUEST added, and NLM_F_ACK as exchange() explains), packed many per
   * sendmsg, and returns one result per request, in order. The kernel processes each regardless of earlier failures. Only a
   * failure of the socket itself throws (no reply within 10 s: ETIMEDOUT; acks lost: ENOBUFS, after
   * which what the kernel did is unknown and the caller should re-read the state).
   */
  requestAll(reqs: readonly NlRequest[]): NlResult[] {
    return this.exchange(reqs);
  }

  /** One request; a KernelError `<what>: <strerror>[: <kernel's message>]` when the kernel refuses it. */
  request(req: NlRequest, what: string): void {
    const [r] = this.exchange([req]);
    if (r !== undefined && r.errno !== 0) throw errnoError(what, r.errno, r.extack);
  }

  /**
   * One request whose answer carries messages before its ack: a GET of one object (RTM_GETLINK by
   * name), or a NEW with NLM_F_ECHO. Returns them; a refusal is thrown as for request().
   */
  query(req: NlRequest, what: string): NlMessage[] {
    const replies: NlMessage[] = [];
    const [r] = this.exchange([req], replies);
    if (r !== undefined && r.errno !== 0) throw errnoError(what, r.errno, r.extack);
    return replies;
  }

  /**
   * Only the last request of a datagram asks for an ack: the kernel answers every request that fails
   * anyway (NLMSG_ERROR whatever the flags), and handles a datagram's requests in order within our
   * sendmsg, so when the last one's ack arrives every earlier failure has been queued before it and a
   * request without an answer succeeded. One recv per datagram instead of one per request (5000 routes:
   * ~3x less transport time). An error ack the kernel could not queue surfaces as ENOBUFS on the next
   * recv (sk_err), never as a silent success.
   */
  private exchange(reqs: readonly NlRequest[], replies?: NlMessage[]): NlResult[] {
    this.assertOpen();
    const results: NlResult[] = new Array<NlResult>(reqs.length);
    for (let i = 0; i < reqs.length; ) {
      const seq0 = this.seq;
      const { count, bytes, last } = packRequests(reqs, i, this.sendBuf, seq0, NLM_F_REQUEST, this.batch);
      this.sendBuf.writeUInt16LE(this.sendBuf.readUInt16LE(last + 6) | NLM_F_ACK, last + 6);
      this.seq = nextSeq(seq0, count);
      this.send(bytes);
      for (let acked = false; !acked; ) {
        for (const m of this.receive()) {
          const k = (m.seq - seq0) >>> 0;
          if (k >= count || results[i + k] !== undefined) continue; // from an earlier, abandoned exchange
          if (m.type !== NLMSG_ERROR) {
            replies?.push(m); // the answer to a GET or NLM_F_ECHO, before its ack
            continue;
          }
          const e = parseError(m);
          results[i + k] = e.extack !== undefined ? { errno: e.errno, extack: e.extack } : { errno: e.errno };
          if (k === count - 1) acked = true;
        }
      }
      for (let k = i; k < i + count; k++) results[k] ??= { errno: 0 };
      i += count;
    }
    return results;
  }

  /**
   * One NLM_F_DUMP request: every reply message until NLMSG_DONE. When the object set changed during
   * the dump (NLM_F_DUMP_INTR), the whole dump is done again. Errors are thrown as KernelError,
   * worded `<what>: <strerror>`.
   */
  dump(type: number, payload: Uint8Array, what = `netlink dump (type ${type})`): NlMessage[] {
    this.assertOpen();
    for (let attempt = 0; attempt < DUMP_RETRIES; attempt++) {
      const seq = this.seq;
      this.seq = nextSeq(seq, 1);
      const len = NLMSG_HDRLEN + payload.length;
      if (len > this.sendBuf.length) throw new RangeError(`${what}: request of ${len} bytes is too big`);
      writeHeader(this.sendBuf, 0, len, type, NLM_F_REQUEST | NLM_F_DUMP, seq);
      this.sendBuf.set(payload, NLMSG_HDRLEN);
      this.send((len + 3) & ~3);
      const out: NlMessage[] = [];
      let interrupted = false;
      for (let done = false; !done; ) {
        for (const m of this.receive()) {
          if (m.seq !== seq) continue; // left over from an earlier exchange
          if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
          if (m.type === NLMSG_DONE) {
            const e = parseDone(m);
            if (e.errno !== 0) throw errnoError(what, e.errno, e.extack);
            done = true;
            break;
          }
          if (m.type === NLMSG_ERROR) {
            const e = parseError(m);
            if (e.errno !== 0) throw errnoError(what, e.errno, e.extack);
            done = true;
            break;
          }
          if (m.type === NLMSG_OVERRUN) throw errnoError(what, ENOBUFS);
          out.push(m);
        }
      }
      if (!interrupted) return out;
    }
    throw new KernelError(`${what}: the kernel kept changing the objects during ${DUMP_RETRIES} dumps in a row`, { code: 'EBUSY' });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.close(this.fd);
  }

  private assertOpen(): void {
    if (this.closed) throw new KernelError('netlink: socket used after close', { code: 'EBADF' });
  }

  /** One sendmsg of sendBuf[0, bytes); ENOBUFS (the kernel could not allocate) is retried. */
  private send(bytes: number): void {
    for (let attempt = 0; ; attempt++) {
      const rc = this.addon.send(this.fd, this.sendBuf, bytes);
      if (rc >= 0) return;
      if (-rc !== ENOBUFS || attempt >= SEND_RETRIES) throw errnoError(`netlink send${this.where()}`, -rc);
      Atomics.wait(SLEEPER, 0, 0, 1 << attempt); // back off 1, 2, 4 ... ms: memory pressure, not a race
    }
  }

  /** One datagram, split into messages (a private copy: the receive buffer is reused). */
  private receive(): NlMessage[] {
    const n = this.addon.recv(this.fd, this.recvBuf, MSG_TRUNC);
    if (n < 0) {
      if (-n === EAGAIN) throw new KernelError(`netlink${this.where()}: no reply from the kernel within ${RECV_TIMEOUT_MS / 1000} s`, { code: 'ETIMEDOUT' });
      if (-n === ENOBUFS) throw new KernelError(`netlink${this.where()}: the receive buffer overflowed and replies were lost`, { code: 'ENOBUFS' });
      throw errnoError(`netlink recv${this.where()}`, -n);
    }
    if (n > this.recvBuf.length) throw new KernelError(`netlink${this.where()}: a ${n}-byte reply did not fit the ${this.recvBuf.length}-byte buffer`, { code: 'EMSGSIZE' });
    return parseMessages(Buffer.from(this.recvBuf.subarray(0, n)));
  }

  private where(): string {
    return this.netns !== undefined ? ` (netns ${this.netns})` : '';
  }
}

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/** Sequence numbers wrap at 2^32 and skip 0 (the number of kernel notifications). */
function nextSeq(seq: number, n: number): number {
  const s = (seq + n) >>> 0;
  return s < n ? s + 1 : s;
}
