// Configuring a WireGuard device: what wgctrl's ConfigureDevice does for Go flannel, through one of
//   - UapiControl: the userspace implementation's (wireguard-go) UAPI socket, /var/run/wireguard/<dev>.sock,
//     spoken directly (the cross-platform text protocol: `set=1`, key=value lines, a blank line; the
//     answer `errno=N`); needs no `wg` tool;
//   - WgToolControl: `wg set` (wireguard-tools), for a kernel device (we have no generic netlink here).
// Keys go over the socket or on the tool's stdin, never in an argv or a log line.
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import type { WgKey } from './keys.js';

export interface PeerConfig {
  publicKey: WgKey;
  /** remove this peer (nothing else is sent) */
  remove?: boolean;
  presharedKey?: WgKey;
  /** `ip:port`, `[ip6]:port` */
  endpoint?: string;
  /** seconds */
  keepalive?: number;
  /** CIDRs; the peer's allowed IPs are replaced by these */
  allowedIPs?: string[];
}

export interface DeviceConfig {
  privateKey?: WgKey;
  listenPort?: number;
  replacePeers?: boolean;
  peers?: PeerConfig[];
}

export interface WgControl {
  /** how this control reaches the device, for the start-up log line */
  readonly kind: string;
  configure(dev: string, cfg: DeviceConfig): Promise<void>;
  /** The public keys (base64) of the device's peers, with their endpoints and allowed IPs. */
  peers(dev: string): Promise<Array<{ publicKey: string; endpoint?: string; allowedIPs: string[] }>>;
}

/** wireguard-go's socket directory (ipc.socketDirectory: fixed at build time, not configurable). */
export const UAPI_SOCKET_DIR = '/var/run/wireguard';

export function uapiSocketPath(dev: string, dir = UAPI_SOCKET_DIR): string {
  return join(dir, `${dev}.sock`);
}

/** The UAPI `set` request of a device config (the same lines wgctrl's userspace client writes). */
export function uapiSetRequest(cfg: DeviceConfig): string {
  const l = ['set=1'];
  if (cfg.privateKey) l.push(`private_key=${cfg.privateKey.hex()}`);
  if (cfg.listenPort !== undefined) l.push(`listen_port=${cfg.listenPort}`);
  if (cfg.replacePeers) l.push('replace_peers=true');
  for (const p of cfg.peers ?? []) {
    l.push(`public_key=${p.publicKey.hex()}`);
    if (p.remove) {
      l.push('remove=true');
      continue;
    }
    if (p.presharedKey) l.push(`preshared_key=${p.presharedKey.hex()}`);
    if (p.endpoint !== undefined) l.push(`endpoint=${p.endpoint}`);
    if (p.keepalive !== undefined) l.push(`persistent_keepalive_interval=${p.keepalive}`);
    if (p.allowedIPs) {
      l.push('replace_allowed_ips=true');
      for (const a of p.allowedIPs) l.push(`allowed_ip=${a}`);
    }
  }
  return `${l.join('\n')}\n\n`;
}

export class UapiError extends Error {
  constructor(
    message: string,
    readonly errno?: number,
  ) {
    super(message);
  }
}

/** One UAPI exchange: writes `request`, reads until the blank line that ends the answer. */
export function uapiExchange(socketPath: string, request: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new UapiError(`no answer from ${socketPath} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(buf);
    };
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(request));
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n\n') || buf === '\n') done();
    });
    sock.on('end', () => done());
    sock.on('error', (e: NodeJS.ErrnoException) => done(new UapiError(`cannot reach the WireGuard UAPI socket ${socketPath}: ${e.code ?? e.message}`)));
  });
}

function checkErrno(answer: string, what: string): void {
  const m = /(?:^|\n)errno=(-?\d+)\n/.exec(answer);
  if (!m) throw new UapiError(`${what}: unexpected answer ${JSON.stringify(answer.slice(0, 80))}`);
  const errno = Number(m[1]);
  if (errno !== 0) throw new UapiError(`${what}: errno=${errno}`, errno);
}

export class UapiControl implements WgControl {
  readonly kind: string;
  constructor(private readonly dir = UAPI_SOCKET_DIR) {
    this.kind = `the UAPI socket ${join(dir, '<dev>.sock')}`;
  }

  async configure(dev: string, cfg: DeviceConfig): Promise<void> {
    const answer = await uapiExchange(uapiSocketPath(dev, this.dir), uapiSetRequest(cfg));
    checkErrno(answer, `failed to configure device ${dev}`);
  }

  async peers(dev: string): Promise<Array<{ publicKey: string; endpoint?: string; allowedIPs: string[] }>> {
    const answer = await uapiExchange(uapiSocketPath(dev, this.dir), 'get=1\n\n');
    checkErrno(answer, `failed to read device ${dev}`);
    const out: Array<{ publicKey: string; endpoint?: string; allowedIPs: string[] }> = [];
    for (const line of answer.split('\n')) {
      const i = line.indexOf('=');
      if (i < 0) continue;
      const k = line.slice(0, i);
      const v = line.slice(i + 1);
      if (k === 'public_key') out.push({ publicKey: Buffer.from(v, 'hex').toString('base64'), allowedIPs: [] });
      else if (k === 'endpoint' && out.length > 0) out[out.length - 1]!.endpoint = v;
      else if (k === 'allowed_ip' && out.length > 0) out[out.length - 1]!.allowedIPs.push(v);
    }
    return out;
  }
}

/** Runs `wg` with argv and stdin; resolves stdout. */
export type WgExec = (argv: string[], stdin: string) => Promise<string>;

export const execWg: WgExec = (argv, stdin) =>
  new Promise((resolve, reject) => {
    const p = spawn('wg', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`wg ${argv[0]} ${argv[1] ?? ''}: ${err.trim() || `exit ${code}`}`))));
    p.stdin.end(stdin);
  });

/**
 * `wg set` for a kernel device. `wg set` reads a key from a file, so each key goes through
 * /dev/stdin, one `wg set` per key-bearing item (the private key, each peer with a PSK), the rest in one.
 */
export class WgToolControl implements WgControl {
  readonly kind = 'wg (wireguard-tools)';
  constructor(private readonly exec: WgExec = execWg) {}

  async configure(dev: string, cfg: DeviceConfig): Promise<void> {
    if (cfg.privateKey || cfg.listenPort !== undefined) {
      const argv = ['set', dev];
      if (cfg.listenPort !== undefined) argv.push('listen-port', String(cfg.listenPort));
      if (cfg.privateKey) argv.push('private-key', '/dev/stdin');
      await this.exec(argv, cfg.privateKey ? `${cfg.privateKey.toString()}\n` : '');
    }
    if (cfg.replacePeers) {
      const keep = new Set((cfg.peers ?? []).map((p) => p.publicKey.toString()));
      const stale = (await this.peers(dev)).filter((p) => !keep.has(p.publicKey));
      if (stale.length > 0) await this.exec(['set', dev, ...stale.flatMap((p) => ['peer', p.publicKey, 'remove'])], '');
    }
    const plain: string[] = [];
    for (const p of cfg.peers ?? []) {
      const args = ['peer', p.publicKey.toString()];
      if (p.remove) args.push('remove');
      else {
        if (p.endpoint !== undefined) args.push('endpoint', p.endpoint);
        if (p.keepalive !== undefined) args.push('persistent-keepalive', p.keepalive === 0 ? 'off' : String(p.keepalive));
        if (p.allowedIPs) args.push('allowed-ips', p.allowedIPs.join(','));
      }
      if (p.presharedKey && !p.remove) await this.exec(['set', dev, ...args, 'preshared-key', '/dev/stdin'], `${p.presharedKey.toString()}\n`);
      else plain.push(...args);
    }
    if (plain.length > 0) await this.exec(['set', dev, ...plain], '');
  }

  async peers(dev: string): Promise<Array<{ publicKey: string; endpoint?: string; allowedIPs: string[] }>> {
    // `wg show <dev> dump`: first line the interface, then one tab-separated line per peer:
    // public-key preshared-key endpoint allowed-ips latest-handshake rx tx keepalive
    const out = await this.exec(['show', dev, 'dump'], '');
    return out
      .split('\n')
      .slice(1)
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const f = l.split('\t');
        const allowed = f[3] && f[3] !== '(none)' ? f[3].split(',') : [];
        return { publicKey: f[0]!, ...(f[2] && f[2] !== '(none)' ? { endpoint: f[2] } : {}), allowedIPs: allowed };
      });
  }
}
