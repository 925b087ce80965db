// A NOTIFY_SOCKET the test owns: an AF_UNIX datagram socket (Node has none, so a few lines of the
// system's Python bind it) that prints each message it receives with the sender's pid from
// SCM_CREDENTIALS, as systemd would see it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './until.js';

const RECEIVER = `
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print("bound", flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = 0
    for lvl, typ, data in anc:
        if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    print("%d %s" % (pid, msg.decode().replace("\\n", "\\\\n")), flush=True)
`;

export interface NotifySocket {
  path: string;
  /** `{pid, message}` of each datagram received so far */
  messages(): Array<{ pid: number; message: string }>;
  close(): void;
}

export async function listenNotifySocket(): Promise<NotifySocket> {
  const dir = mkdtempSync(join(tmpdir(), 'notify-'));
  const path = join(dir, 'notify.sock');
  const proc: ChildProcess = spawn('/usr/bin/python3', ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const close = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until(() => out.startsWith('bound\n'), 'the notify socket bound', { ms: 5000, every: 10 });
  } catch (err) {
    close();
    throw err;
  }
  return {
    path,
    messages: () =>
      out
        .split('\n')
        .slice(1)
        .filter((l) => l !== '')
        .map((l) => {
          const sp = l.indexOf(' ');
          return { pid: Number(l.slice(0, sp)), message: l.slice(sp + 1) };
        }),
    close,
  };
}
