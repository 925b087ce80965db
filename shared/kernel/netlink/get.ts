// Single GET requests answered with one object (RTM_GETLINK of one link, RTM_GETROUTE for `ip route
// get`): socket.ts's NetlinkSocket sends requests that are acked and dumps, and drops any other reply,
// so a get that returns an object goes through this small synchronous exchange on its own socket.
import { KernelError } from '../errors.js';
import { errnoError } from './netns.js';
import { NLM_F_REQUEST, NLMSG_ERROR, NLMSG_HDRLEN, nlmsgAlign, parseError, parseMessages, writeHeader, type NlMessage, type NlRequest } from './nlmsg.js';
import { EAGAIN, MSG_TRUNC, openRaw, SO_RCVTIMEO, SOL_SOCKET, type RawSocket } from './socket.js';

const RECV_BYTES = 64 * 1024;
/** the reply is queued before sendmsg returns; not having one after this long is a bug, not a wait */
const RECV_TIMEOUT_MS = 10_000;

export class NlGetter {
  private readonly buf = Buffer.allocUnsafe(RECV_BYTES);
  private seq = 1;
  private closed = false;

  private constructor(private readonly raw: RawSocket) {}

  /** A socket for gets, created in the namespace at `netns` when given. Throws a KernelError. */
  static open(netns?: string): NlGetter {
    const raw = openRaw(netns !== undefined ? { netns } : {});
    raw.addon.setsockopt(raw.fd, SOL_SOCKET, SO_RCVTIMEO, RECV_TIMEOUT_MS);
    return new NlGetter(raw);
  }

  /** The one reply to `req`; the kernel's refusal is a KernelError `<what>: <strerror>[: <extack>]`. */
  get(req: NlRequest, what: string): NlMessage {
    const { addon, fd } = this.raw;
    const seq = this.seq;
    this.seq = (this.seq + 1) >>> 0 || 1;
    const len = NLMSG_HDRLEN + req.payload.length;
    const out = Buffer.alloc(nlmsgAlign(len));
    writeHeader(out, 0, len, req.type, req.flags | NLM_F_REQUEST, seq);
    out.set(req.payload, NLMSG_HDRLEN);
    const sent = addon.send(fd, out);
    if (sent < 0) throw errnoError(`${what}: netlink send`, -sent);
    for (;;) {
      const n = addon.recv(fd, this.buf, MSG_TRUNC);
      if (n === -EAGAIN) throw new KernelError(`${what}: no reply from the kernel within ${RECV_TIMEOUT_MS / 1000} s`, { code: 'ETIMEDOUT' });
      if (n < 0) throw errnoError(`${what}: netlink recv`, -n);
      if (n > this.buf.length) throw new KernelError(`${what}: a ${n}-byte reply did not fit the ${this.buf.length}-byte buffer`, { code: 'EMSGSIZE' });
      for (const m of parseMessages(Buffer.from(this.buf.subarray(0, n)))) {
        if (m.seq !== seq) continue; // left over from an abandoned exchange
        if (m.type === NLMSG_ERROR) {
          const e = parseError(m);
          throw errnoError(what, e.errno === 0 ? 5 : e.errno, e.extack);
        }
        return m;
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.raw.addon.close(this.raw.fd);
  }
}
