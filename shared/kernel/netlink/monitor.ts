// Kernel change notifications (rtnetlink multicast) delivered to a callback without blocking the event
// loop: a non-blocking socket drained on a timer.
//
// Why a timer and not a readiness callback: Node has no way to poll an arbitrary fd from JS (net and
// dgram do not take netlink sockets), and a native poller would need libuv (uv_poll through
// napi_get_uv_event_loop), which bun's N-API does not provide, so it would break the compiled
// executable. A blocking read in libuv's threadpool (fs.read + SO_RCVTIMEO) was the other candidate:
// it holds one of the 4 shared threadpool threads for the life of the monitor, its pending request
// keeps the process alive and cannot be cancelled (close() does not wake a thread blocked in recv on
// Linux, so close() would wait for the timeout), and bun's fs differs. The drain is one recv with
// MSG_DONTWAIT per datagram; an idle monitor wakes every 10 ms, backing off to every 100 ms while
// nothing happens (one syscall per wake: no measurable CPU), and drains up to a bounded number of
// datagrams per turn so a flood never starves the loop. The timer is unref'd: the monitor never keeps a
// process alive on its own, and close() stops it at once.
//
// Lost events are never silent: when the receive buffer overflows, the kernel drops notifications and
// the next recv fails with ENOBUFS, upon which `onOverflow` tells the owner to resync in full (upstream
// flannel#958 lost FDB entries by missing this). The buffer is made large (8 MiB, SO_RCVBUFFORCE) so
// that this is rare.
import { parseMessages, type NlMessage } from './nlmsg.js';
import { EAGAIN, ENOBUFS, MSG_DONTWAIT, MSG_TRUNC, openRaw } from './socket.js';

export interface MonitorOptions {
  /** namespace file to watch (the socket is created there); the caller's namespace when absent */
  netns?: string;
  /** RTNLGRP_* groups to join (nlmsg.ts) */
  groups: readonly number[];
  /** receive buffer in bytes (default 8 MiB); tests make it small to provoke an overflow */
  rcvbuf?: number;
  /** fastest poll, while events arrive (default 10 ms) */
  minPollMs?: number;
  /** slowest poll, when idle (default 100 ms): the worst-case delay of a first event */
  maxPollMs?: number;
}

export interface Monitor {
  close(): void;
}

const RECV_BYTES = 64 * 1024;
/** datagrams per turn of the event loop before yielding */
const MAX_PER_TURN = 1024;

/**
 * Subscribes to `groups` and calls `onMessages` with the notifications received since the last call
 * (in kernel order), and `onOverflow` after the kernel dropped some (resync everything). Throws a
 * KernelError if the socket cannot be made (no shim, no namespace).
 */
export function openMonitor(o: MonitorOptions, onMessages: (msgs: NlMessage[]) => void, onOverflow: () => void): Monitor {
  const { addon, fd } = openRaw({ groups: o.groups, rcvbuf: o.rcvbuf ?? 8 * 1024 * 1024, ...(o.netns !== undefined ? { netns: o.netns } : {}) });
  const minPoll = o.minPollMs ?? 10;
  const maxPoll = o.maxPollMs ?? 100;
  const buf = Buffer.allocUnsafe(RECV_BYTES);
  let closed = false;
  let delay = minPoll;
  let timer: NodeJS.Timeout | undefined;

  const schedule = (ms: number): void => {
    timer = setTimeout(turn, ms);
    timer.unref();
  };

  function turn(): void {
    timer = undefined;
    if (closed) return;
    const msgs: NlMessage[] = [];
    let overflow = false;
    let more = false;
    for (let i = 0; ; i++) {
      if (i === MAX_PER_TURN) {
        more = true;
        break;
      }
      const n = addon.recv(fd, buf, MSG_DONTWAIT | MSG_TRUNC);
      if (n === -EAGAIN) break;
      if (n === -ENOBUFS) {
        overflow = true; // the socket stays usable: keep draining what is queued after the loss
        continue;
      }
      if (n < 0) {
        // not expected on a bound netlink socket; report it as a loss so the owner resyncs
        process.emitWarning(`netlink monitor: recv failed (errno ${-n}); resyncing`);
        overflow = true;
        break;
      }
      // a notification bigger than the buffer is lost in part: as good as an overflow
      if (n > buf.length) overflow = true;
      else msgs.push(...parseMessages(Buffer.from(buf.subarray(0, n))));
    }
    delay = msgs.length > 0 || overflow ? minPoll : Math.min(delay * 2, maxPoll);
    schedule(more ? 0 : delay);
    if (msgs.length > 0) onMessages(msgs);
    if (overflow && !closed) onOverflow();
  }

  schedule(minPoll);
  return {
    close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      addon.close(fd);
    },
  };
}
