// The active probe of a peer's VXLAN endpoint, without any process of ours on the peer.
//
// 1. Overlay ping: one ICMP echo (the system `ping`) to the peer's VTEP address (its subnet's first
//    address, which flanneld puts on the peer's flannel.<VNI> as a /32). It leaves through our route,
//    neighbour and FDB entry, crosses the underlay as VXLAN on the UDP port, and is answered by the
//    peer's kernel, whose reply comes back the same way: exactly the path pod traffic takes, both
//    directions, and only the two kernels take part.
// 2. When the ping gets no answer, a UDP check tells the likely cause: a few 8-byte datagrams to the
//    peer's UDP port from a connected socket. A kernel with a VXLAN socket on that port drops them
//    silently (not a valid VXLAN header); a kernel without one answers ICMP port unreachable, which a
//    connected socket reports as ECONNREFUSED. So "refused" means the peer has no VXLAN device on that
//    port (flanneld not running there, another Port), and silence means something on the way (or the
//    peer's INPUT rules) drops the traffic. A firewall that rejects with port-unreachable reads as the
//    former: the line names both.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { resolveBin } from '../../shared/kernel/iproute2/exec.js';

export type PingFn = (target: string, timeoutSec: number) => Promise<boolean>;

/** One echo with `ping -c 1 -W <timeout>`; true when answered. */
export const systemPing: PingFn = (target, timeoutSec) =>
  new Promise((resolve) => {
    const p = spawn(resolveBin('ping'), ['-n', '-q', '-c', '1', '-W', String(timeoutSec), target], { stdio: 'ignore' });
    p.on('error', () => resolve(false));
    p.on('exit', (code) => resolve(code === 0));
  });

/** 'refused' (ICMP port unreachable came back), 'silent' (nothing), or an error text. */
export function udpPortCheck(host: string, port: number, timeoutMs: number): Promise<'refused' | 'silent' | string> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (r: string) => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      s.close();
      resolve(r);
    };
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNREFUSED' ? 'refused' : `${e.code ?? e.message}`));
    s.connect(port, host, () => {
      for (let i = 0; i < 3; i++) timers.push(setTimeout(() => !done && s.send(Buffer.alloc(8), () => {}), i * 100));
      timers.push(setTimeout(() => finish('silent'), timeoutMs));
    });
  });
}

export interface ProbeTarget {
  subnet: string;
  publicIP: string;
  /** the peer's VTEP address */
  target: string;
}

export async function probePeer(t: ProbeTarget, port: number, timeoutSec: number, ping: PingFn = systemPing): Promise<{ ok: boolean; detail?: string }> {
  if (await ping(t.target, timeoutSec)) return { ok: true };
  const udp = await udpPortCheck(t.publicIP, port, Math.min(1000, timeoutSec * 1000));
  const detail =
    udp === 'refused'
      ? `no reply to a ping of its VTEP ${t.target}, and ${t.publicIP} answers UDP ${port} with port unreachable (no VXLAN device on that port there, or a firewall rejecting it)`
      : udp === 'silent'
        ? `no reply to a ping of its VTEP ${t.target}; UDP ${port} to ${t.publicIP} is not refused, so it is dropped on the way or by the peer's firewall, or the peer has no route back`
        : `no reply to a ping of its VTEP ${t.target}; the UDP check failed: ${udp}`;
  return { ok: false, detail };
}
