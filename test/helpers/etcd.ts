// A real etcd (Debian etcd-server's `etcd` binary) for integration tests: random loopback ports, a
// private temp data dir, stopped by PID. Optional TLS with client certificates (a CA, a server and a
// client certificate made with openssl here) and optional user/password auth (root enabled).
//
//   const etcd = await startEtcd({ tls: true, auth: { user: 'root', password: 'pw' } });
//   etcd.endpoint            // https://127.0.0.1:<port>
//   etcd.ctl(['put', k, v])  // etcdctl with the right endpoint, certs and user
//   await etcd.stop();
//
// startTcpProxy(etcd.clientPort) puts a loopback TCP proxy in front of it whose cut() drops every
// connection and refuses new ones until heal(): a network partition between one client and etcd,
// while etcdctl (direct) keeps working.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EtcdTlsFiles {
  ca: string;
  cert: string;
  key: string;
  /** a client certificate signed by the same CA */
  clientCert: string;
  clientKey: string;
}

export interface StartEtcdOptions {
  tls?: boolean;
  auth?: { user: string; password: string };
  /** run etcd (and etcdctl) inside this network namespace (a name from test/helpers/netns.ts) */
  netns?: string;
}

export interface TestEtcd {
  endpoint: string;
  clientPort: number;
  pid: number;
  dir: string;
  tls?: EtcdTlsFiles;
  auth?: { user: string; password: string };
  /** runs etcdctl (API v3) against this etcd; throws on failure; returns stdout */
  ctl(args: readonly string[], input?: string): string;
  /** changes a user's password as root (etcdctl here then uses the new one if it is its user) */
  setPassword(user: string, password: string): void;
  /** a gauge or counter from etcd's /metrics (plain http in this namespace only), 0 if absent */
  metric(name: string): Promise<number>;
  /** sends SIGSTOP / SIGCONT (an outage without losing data) */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export const hasEtcd: boolean = spawnSync('etcd', ['--version']).status === 0;

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/**
 * A CA, a server certificate for 127.0.0.1/localhost and a client certificate (CN = clientCN, or no
 * CN when clientCN is ''; etcd refuses JSON-gateway requests from a certificate with a CN once auth
 * is enabled).
 */
export function makeCerts(dir: string, clientCN = 'root'): EtcdTlsFiles {
  const ext = join(dir, 'ext.cnf');
  writeFileSync(
    ext,
    [
      '[server]',
      'subjectAltName = IP:127.0.0.1, DNS:localhost',
      'extendedKeyUsage = serverAuth, clientAuth',
      'keyUsage = digitalSignature',
      '[client]',
      'extendedKeyUsage = clientAuth',
      'keyUsage = digitalSignature',
      '',
    ].join('\n'),
  );
  // P-256 keys: an EC key is generated ~100x faster than an RSA-2048 one
  const newkey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  openssl(['req', '-x509', ...newkey, '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test-ca'], dir);
  // The server certificate has no CommonName (SANs only): etcd's JSON gateway dials etcd with the
  // server certificate, and with auth enabled etcd refuses gateway requests whose certificate has a
  // CN ("CommonName of client sending a request against gateway will be ignored ...").
  for (const [name, subj, section] of [
    ['server', '/O=etcd-test-server', 'server'],
    ['client', clientCN ? `/CN=${clientCN}` : '/O=etcd-test-client', 'client'],
  ] as const) {
    openssl(['req', ...newkey, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj], dir);
    openssl(
      ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', ext, '-extensions', section],
      dir,
    );
  }
  return {
    ca: join(dir, 'ca.crt'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function startEtcd(o: StartEtcdOptions = {}): Promise<TestEtcd> {
  const dir = mkdtempSync(join(tmpdir(), `etcd-test-${process.pid}-`));
  const tls = o.tls ? makeCerts(dir, o.auth ? '' : 'root') : undefined;
  for (let attempt = 0; ; attempt++) {
    // in a fresh netns nothing else listens: any port will do
    const clientPort = o.netns ? 20000 + Math.floor(Math.random() * 20000) : await freePort();
    const peerPort = o.netns ? clientPort + 1 : await freePort();
    const scheme = tls ? 'https' : 'http';
    const endpoint = `${scheme}://127.0.0.1:${clientPort}`;
    const args = [
      '--name', 'test',
      '--data-dir', join(dir, `data-${attempt}`),
      '--listen-client-urls', endpoint,
      '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `test=http://127.0.0.1:${peerPort}`,
      '--log-outputs', 'stderr',
    ];
    if (tls) args.push('--cert-file', tls.cert, '--key-file', tls.key, '--trusted-ca-file', tls.ca, '--client-cert-auth');
    const logFd = openSync(join(dir, `etcd-${attempt}.log`), 'w');
    // `ip netns exec` execs etcd in place, so the PID is etcd's own.
    const [cmd, argv] = o.netns ? ['ip', ['netns', 'exec', o.netns, 'etcd', ...args]] : ['etcd', args];
    const child = spawn(cmd, argv, { stdio: ['ignore', logFd, logFd], env: { ...process.env, ETCDCTL_API: undefined } });
    closeSync(logFd);
    running.add(child);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let dead = false;
    child.once('exit', () => {
      dead = true;
      running.delete(child);
    });

    const baseArgs = ['--endpoints', endpoint, '--dial-timeout', '2s', '--command-timeout', '5s'];
    if (tls) baseArgs.push('--cacert', tls.ca, '--cert', tls.clientCert, '--key', tls.clientKey);
    let authArgs: string[] = [];
    const ctlCmd = (a: readonly string[]): [string, string[]] =>
      o.netns ? ['ip', ['netns', 'exec', o.netns, 'etcdctl', ...a]] : ['etcdctl', [...a]];
    const ctl = (a: readonly string[], input?: string): string => {
      const [c, cargs] = ctlCmd([...baseArgs, ...authArgs, ...a]);
      const r = spawnSync(c, cargs, {
        encoding: 'utf8',
        input,
        env: { ...process.env, ETCDCTL_API: '3' },
      });
      if (r.status !== 0) throw new Error(`etcdctl ${a.join(' ')}: ${r.stderr.trim()}`);
      return r.stdout;
    };
    const healthy = () => {
      if (dead) return true;
      const [c, cargs] = ctlCmd([...baseArgs, 'endpoint', 'health']);
      return spawnSync(c, cargs, { env: { ...process.env, ETCDCTL_API: '3' } }).status === 0;
    };
    await waitFor(healthy, 'etcd to start');
    if (dead) {
      if (attempt < 3) continue; // port taken between freePort() and etcd's bind
      throw new Error(`etcd did not start; see ${dir}`);
    }
    let rootPassword = o.auth?.user === 'root' ? o.auth.password : `${o.auth?.password}-root`;
    if (o.auth) {
      ctl(['user', 'add', `${o.auth.user}:${o.auth.password}`]);
      if (o.auth.user !== 'root') {
        ctl(['user', 'add', `root:${rootPassword}`]);
        ctl(['role', 'add', 'flannel']);
        ctl(['role', 'grant-permission', '--prefix=true', 'flannel', 'readwrite', '/']);
        ctl(['user', 'grant-role', o.auth.user, 'flannel']);
      }
      ctl(['auth', 'enable']);
      authArgs = ['--user', `${o.auth.user}:${o.auth.password}`];
    }
    const pid = child.pid!;
    return {
      endpoint,
      clientPort,
      pid,
      dir,
      tls,
      auth: o.auth,
      ctl,
      setPassword(user, password) {
        if (!o.auth) throw new TypeError('etcd was started without auth');
        const [c, cargs] = ctlCmd([...baseArgs, '--user', `root:${rootPassword}`, 'user', 'passwd', user, '--interactive=false']);
        const r = spawnSync(c, cargs, { encoding: 'utf8', input: `${password}\n`, env: { ...process.env, ETCDCTL_API: '3' } });
        if (r.status !== 0) throw new Error(`etcdctl user passwd ${user}: ${r.stderr.trim()}`);
        if (user === 'root') rootPassword = password;
        if (user === o.auth.user) authArgs = ['--user', `${user}:${password}`];
      },
      async metric(name) {
        if (tls || o.netns) throw new TypeError('metric() reads plain http in this namespace only');
        const text = await (await fetch(`${endpoint}/metrics`)).text();
        const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
        return m ? Number(m[1]) : 0;
      },
      pause: () => process.kill(pid, 'SIGSTOP'),
      resume: () => process.kill(pid, 'SIGCONT'),
      async stop() {
        if (!dead) {
          try {
            process.kill(pid, 'SIGCONT');
            process.kill(pid, 'SIGTERM');
          } catch {
            /* gone */
          }
          const t = setTimeout(() => {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              /* gone */
            }
          }, 5000);
          await exited;
          clearTimeout(t);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

export interface TcpProxy {
  /** http://127.0.0.1:<port>, to give a client instead of etcd's endpoint */
  endpoint: string;
  /** resets every proxied connection and refuses new ones until heal() (a partition) */
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

/** A loopback TCP proxy to 127.0.0.1:targetPort (see the top of this file). */
export async function startTcpProxy(targetPort: number, scheme = 'http'): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let blocked = false;
  const server = net.createServer((client) => {
    if (blocked) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', drop);
      s.on('close', drop);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  const resetAll = () => {
    for (const s of sockets) s.resetAndDestroy();
    sockets.clear();
  };
  return {
    endpoint: `${scheme}://127.0.0.1:${port}`,
    cut() {
      blocked = true;
      resetAll();
    },
    heal() {
      blocked = false;
    },
    async close() {
      resetAll();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
