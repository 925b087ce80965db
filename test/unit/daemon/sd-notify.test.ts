import { afterEach, describe, expect, it } from 'vitest';
import { sdNotifyReady } from '../../../daemon/sd-notify.js';
import { memoryLogger } from '../../../shared/log.js';
import { listenNotifySocket, type NotifySocket } from '../../helpers/notify-socket.js';
import { until } from '../../helpers/until.js';

let sock: NotifySocket | undefined;
afterEach(() => {
  sock?.close();
  sock = undefined;
});

describe('sd_notify', () => {
  it('sends READY=1 to $NOTIFY_SOCKET as this process (the pid systemd checks)', async () => {
    sock = await listenNotifySocket();
    const log = memoryLogger();
    expect(await sdNotifyReady({ NOTIFY_SOCKET: sock.path, PATH: process.env.PATH }, log)).toBe(true);
    const ready = await until(() => sock!.messages().find((m) => m.message === 'READY=1'), 'READY=1', { ms: 4000 });
    expect(ready.pid).toBe(process.pid);
    // systemd-notify also syncs with a BARRIER=1 (its own pid), so READY=1 is read before it exits
    expect(sock.messages().filter((m) => m.message !== 'BARRIER=1')).toEqual([{ pid: process.pid, message: 'READY=1' }]);
    expect(log.lines).toEqual([`I Notified systemd (READY=1) on ${sock.path}`]);
  });

  it('does nothing without NOTIFY_SOCKET, and a failure is a warning, not a crash', async () => {
    const log = memoryLogger();
    expect(await sdNotifyReady({}, log)).toBe(false);
    expect(log.lines).toEqual([]);
    expect(await sdNotifyReady({ NOTIFY_SOCKET: '/nonexistent/notify.sock' }, log)).toBe(false);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatch(/^W Failed to notify systemd that flanneld is ready \(NOTIFY_SOCKET=\/nonexistent\/notify\.sock\): .*systemd-notify exited 1/);
  });
});
