// openMonitor against a scripted socket (the shim replaced through provideNativeAddon): delivery in
// kernel order, overflow → onOverflow, close() stops everything and the monitor never holds the
// process open. The real kernel: test/integration/kernel/netlink-socket.test.ts.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IN_PROCESS, until } from '../../../../helpers/until.js';
import { RTM_NEWLINK, RTNLGRP_LINK, RTNLGRP_NEIGH, encodeMessage, type NlMessage } from '../../../../../shared/kernel/netlink/nlmsg.js';
import { openMonitor, type Monitor } from '../../../../../shared/kernel/netlink/monitor.js';
import { provideNativeAddon, type Addon } from '../../../../../shared/native/load.js';

const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
const MSG_DONTWAIT = 0x40;

class FakeSocket implements Addon {
  queue: (Buffer | number)[] = [];
  joined: number[] = [];
  closed: number[] = [];
  recvFlags = new Set<number>();
  recvCalls = 0;
  flock = () => 0;
  socket = () => 5;
  bind = () => 0;
  portId = () => 1;
  getsockopt = () => 0;
  setns = () => 0;
  open = () => 9;
  send = () => 0;
  setsockopt = (_fd: number, level: number, opt: number, value: number) => {
    if (level === SOL_NETLINK && opt === NETLINK_ADD_MEMBERSHIP) this.joined.push(value);
    return 0;
  };
  close = (fd: number) => {
    this.closed.push(fd);
    return 0;
  };
  recv = (_fd: number, into: Uint8Array, flags: number) => {
    this.recvCalls++;
    this.recvFlags.add(flags);
    const d = this.queue.shift();
    if (d === undefined) return -11; // EAGAIN: nothing queued (non-blocking)
    if (typeof d === 'number') return d;
    into.set(d);
    return d.length;
  };
}

const note = (i: number) => encodeMessage({ type: RTM_NEWLINK, flags: 0, payload: Buffer.of(i) }, 0);
let s: FakeSocket;
let m: Monitor | undefined;

beforeEach(() => {
  s = new FakeSocket();
  provideNativeAddon(s);
});
afterEach(() => m?.close());

describe('openMonitor', () => {
  it('joins the groups and delivers queued notifications in order, without blocking (MSG_DONTWAIT)', async () => {
    const got: number[] = [];
    s.queue.push(note(1), Buffer.concat([note(2), note(3)]));
    m = openMonitor({ groups: [RTNLGRP_LINK, RTNLGRP_NEIGH], minPollMs: 1 }, (msgs: NlMessage[]) => got.push(...msgs.map((x) => x.payload[0]!)), () => {});
    expect(s.joined).toEqual([RTNLGRP_LINK, RTNLGRP_NEIGH]);
    await until(() => got.length === 3, 'three notifications', IN_PROCESS);
    s.queue.push(note(4));
    await until(() => got.length === 4, 'a later notification', IN_PROCESS);
    expect(got).toEqual([1, 2, 3, 4]);
    expect([...s.recvFlags].every((f) => (f & MSG_DONTWAIT) !== 0)).toBe(true);
  });

  it('calls onOverflow when the kernel dropped notifications (ENOBUFS), after delivering what arrived', async () => {
    const log: string[] = [];
    s.queue.push(note(1), -105, note(2));
    m = openMonitor({ groups: [RTNLGRP_LINK], minPollMs: 1 }, (msgs) => log.push(`msgs ${msgs.length}`), () => log.push('overflow'));
    await until(() => log.includes('overflow'), 'the overflow', IN_PROCESS);
    expect(log).toEqual(['msgs 2', 'overflow']);
  });

  it('close() stops receiving and closes the socket; the idle monitor backs off and holds no ref on the loop', async () => {
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    m = openMonitor({ groups: [RTNLGRP_LINK], minPollMs: 1, maxPollMs: 50 }, () => {}, () => {});
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(timersBefore);
    await new Promise((r) => setTimeout(r, 300));
    // 1, 2, 4, ... 50, 50: a handful of polls in 300 ms, not a spin
    expect(s.recvCalls).toBeGreaterThanOrEqual(2);
    expect(s.recvCalls).toBeLessThan(20);
    m.close();
    m.close();
    expect(s.closed).toEqual([5]);
    const calls = s.recvCalls;
    await new Promise((r) => setTimeout(r, 120));
    expect(s.recvCalls).toBe(calls);
  });
});
