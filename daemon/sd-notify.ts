// sd_notify(READY=1) once subnet.env is written (Go: daemon.SdNotify(false, "READY=1") in main.go), so
// that a systemd unit of Type=notify orders the container runtime after flanneld.
//
// The protocol is one datagram on the AF_UNIX socket named by $NOTIFY_SOCKET, and Node has no unix
// datagram sockets. So we exec systemd-notify(1), which ships with systemd wherever NOTIFY_SOCKET can
// be set at all. Run as root (flanneld always is), systemd-notify sends with its *parent's* pid in
// SCM_CREDENTIALS (sd_pid_notify(getppid())), so systemd attributes READY=1 to flanneld itself: the
// unit needs no NotifyAccess=all, and the message cannot race systemd-notify's exit. One exec, once
// per daemon start. Without NOTIFY_SOCKET (not under systemd, or in a pod) nothing happens, as Go.
import { spawn } from 'node:child_process';
import { type Logger, errorMessage } from '../shared/log.js';

export const SYSTEMD_NOTIFY = '/usr/bin/systemd-notify';

/** Sends READY=1 when $NOTIFY_SOCKET is set; true when sent. Never throws (a failure is logged). */
export async function sdNotifyReady(env: NodeJS.ProcessEnv, log: Logger, bin = SYSTEMD_NOTIFY): Promise<boolean> {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return false;
  try {
    const { code, stderr } = await run(bin, ['--ready'], { NOTIFY_SOCKET: socket, PATH: env.PATH ?? '/usr/bin:/bin' });
    if (code !== 0) throw new Error(`${bin} exited ${code}: ${stderr.trim()}`);
    log.info(`Notified systemd (READY=1) on ${socket}`);
    return true;
  } catch (err) {
    log.warn(`Failed to notify systemd that flanneld is ready (NOTIFY_SOCKET=${socket}): ${errorMessage(err)}`);
    return false;
  }
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => {
      if (stderr.length < 4096) stderr += b.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}
