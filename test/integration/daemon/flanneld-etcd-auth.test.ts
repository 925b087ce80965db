// The built flanneld on an etcd with TLS client certificates and on one with TLS plus user/password
// auth, configured through the flags (--etcd-certfile/--etcd-keyfile/--etcd-cafile/--etcd-username/
// --etcd-password) and through FLANNELD_* variables (Go's flagNameToEnvName). The password never reaches the
// log, and a wrong one is reported and retried until an operator fixes it, without a crash.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasEtcd, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { canUseNetns, cleanupNetns, type Netns } from '../../helpers/netns.js';
import { EXT_IP, SEED_ALLOC, buildFlanneld, createDaemonNetns, daemonRunner, until, within } from './daemon-harness.js';

const OUR_VALUE = `{"PublicIP":"${EXT_IP}","PublicIPv6":null}`;

/** The `CLI flags config: {...}` line, parsed. */
function flagsLine(stderr: string): Record<string, unknown> {
  const m = /CLI flags config: (\{.*\})$/m.exec(stderr);
  if (!m) throw new Error(`no CLI flags line in ${stderr}`);
  return JSON.parse(m[1]!) as Record<string, unknown>;
}

describe.skipIf(!hasEtcd || !canUseNetns)('flanneld (built) on etcd with TLS and user auth', () => {
  let ns: Netns;
  let tlsEtcd: TestEtcd; // client certificates only
  let authEtcd: TestEtcd; // client certificates and user/password (user "flannel", a role on "/")
  let dir: string;
  const daemons = daemonRunner(() => ns);

  /** waits for subnet.env and returns our lease key's value in `etcd` under `prefix` */
  const leaseValue = async (etcd: TestEtcd, prefix: string, file: string, d: { stderr: () => string }) => {
    await until(() => existsSync(file) || (d.stderr().includes('Exiting') && 'exited'), 'subnet.env');
    expect(existsSync(file)).toBe(true);
    const sn = /FLANNEL_SUBNET=(10\.\d+\.\d+)\.1\/20/.exec(readFileSync(file, 'utf8'))![1]!;
    return etcd.ctl(['get', '--print-value-only', `${prefix}/subnets/${sn}.0-20`]).trim();
  };

  beforeAll(async () => {
    buildFlanneld();
    ns = createDaemonNetns('tls');
    [tlsEtcd, authEtcd] = await Promise.all([
      startEtcd({ netns: ns.name, tls: true }),
      startEtcd({ netns: ns.name, tls: true, auth: { user: 'flannel', password: 's3cret' } }),
    ]);
    for (const p of ['/f', '/e']) tlsEtcd.ctl(['put', `${p}/config`, SEED_ALLOC]);
    // (each etcdctl call with a password costs etcd a bcrypt: ~0.1 s)
    for (const p of ['/up', '/upenv', '/wrong']) authEtcd.ctl(['put', `${p}/config`, SEED_ALLOC]);
    dir = mkdtempSync(join(tmpdir(), `flanneld-tls-${process.pid}-`));
  });
  afterEach(() => daemons.killAll());
  afterAll(async () => {
    await Promise.all([tlsEtcd?.stop(), authEtcd?.stop()]);
    ns?.delete();
    cleanupNetns();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('TLS client certificate through --etcd-certfile/--etcd-keyfile/--etcd-cafile', async () => {
    const t = tlsEtcd.tls!;
    const file = join(dir, 'f.env');
    const d = daemons.run([
      '--etcd-endpoints', tlsEtcd.endpoint, '--etcd-prefix', '/f', '--iface', 'ext0', '--subnet-file', file,
      '--etcd-certfile', t.clientCert, '--etcd-keyfile', t.clientKey, '--etcd-cafile', t.ca,
    ]);
    expect(await leaseValue(tlsEtcd, '/f', file, d)).toBe(OUR_VALUE);
    expect(d.stderr()).not.toContain('This is insecure');
    expect(flagsLine(d.stderr())).toMatchObject({ etcdCertfile: t.clientCert, etcdKeyfile: t.clientKey, etcdCafile: t.ca });
    expect(await daemons.stop(d)).toBe(0);
  });

  it('TLS client certificate through FLANNELD_ETCD_CERTFILE/_KEYFILE/_CAFILE (and _ENDPOINTS)', async () => {
    const t = tlsEtcd.tls!;
    const file = join(dir, 'e.env');
    const d = daemons.run(['--etcd-prefix', '/e', '--iface', 'ext0', '--subnet-file', file], {
      FLANNELD_ETCD_ENDPOINTS: tlsEtcd.endpoint,
      FLANNELD_ETCD_CERTFILE: t.clientCert,
      FLANNELD_ETCD_KEYFILE: t.clientKey,
      FLANNELD_ETCD_CAFILE: t.ca,
    });
    expect(await leaseValue(tlsEtcd, '/e', file, d)).toBe(OUR_VALUE);
    expect(flagsLine(d.stderr())).toMatchObject({ etcdEndpoints: tlsEtcd.endpoint, etcdCertfile: t.clientCert });
    expect(await daemons.stop(d)).toBe(0);
  });

  it('a missing --etcd-keyfile: exit 1 with one clear line naming the flag and the path, no stack trace', async () => {
    const t = tlsEtcd.tls!;
    const missing = join(dir, 'missing.key');
    const d = daemons.run([
      '--etcd-endpoints', tlsEtcd.endpoint, '--iface', 'ext0', '--subnet-file', join(dir, 'never.env'),
      '--etcd-certfile', t.clientCert, '--etcd-keyfile', missing,
    ]);
    expect(await within(d.exit, 10_000, 'the exit')).toBe(1);
    const line = d.stderr().split('\n').find((l) => l.includes('Failed to create SubnetManager'));
    expect(line).toMatch(/^E\d{4} .*\] Failed to create SubnetManager: /);
    expect(line).toContain(`failed to read --etcd-keyfile "${missing}": ENOENT: no such file or directory`);
    expect(d.stderr()).not.toMatch(/^\s+at /m);
    expect(existsSync(join(dir, 'never.env'))).toBe(false);
  });

  it('TLS + --etcd-username/--etcd-password: acquires; the flags line says <redacted>, the password appears nowhere', async () => {
    const t = authEtcd.tls!;
    const file = join(dir, 'up.env');
    const d = daemons.run([
      '--etcd-endpoints', authEtcd.endpoint, '--etcd-prefix', '/up', '--iface', 'ext0', '--subnet-file', file,
      '--etcd-certfile', t.clientCert, '--etcd-keyfile', t.clientKey, '--etcd-cafile', t.ca,
      '--etcd-username', 'flannel', '--etcd-password', 's3cret',
    ]);
    expect(await leaseValue(authEtcd, '/up', file, d)).toBe(OUR_VALUE);
    expect(flagsLine(d.stderr())).toMatchObject({ etcdUsername: 'flannel', etcdPassword: '<redacted>' });
    expect(d.stderr()).not.toContain('s3cret');
    expect(await daemons.stop(d)).toBe(0);
  });

  it('TLS + FLANNELD_ETCD_USERNAME/_PASSWORD: acquires; the password appears nowhere', async () => {
    const t = authEtcd.tls!;
    const file = join(dir, 'upenv.env');
    const d = daemons.run(['--etcd-prefix', '/upenv', '--iface', 'ext0', '--subnet-file', file], {
      FLANNELD_ETCD_ENDPOINTS: authEtcd.endpoint,
      FLANNELD_ETCD_CERTFILE: t.clientCert,
      FLANNELD_ETCD_KEYFILE: t.clientKey,
      FLANNELD_ETCD_CAFILE: t.ca,
      FLANNELD_ETCD_USERNAME: 'flannel',
      FLANNELD_ETCD_PASSWORD: 's3cret',
    });
    expect(await leaseValue(authEtcd, '/upenv', file, d)).toBe(OUR_VALUE);
    expect(flagsLine(d.stderr())).toMatchObject({ etcdUsername: 'flannel', etcdPassword: '<redacted>' });
    expect(d.stderr()).not.toContain('s3cret');
    expect(await daemons.stop(d)).toBe(0);
  });

  it('a wrong password: a clear error, retried every second (no crash) until the operator sets it', async () => {
    const t = authEtcd.tls!;
    const file = join(dir, 'wrong.env');
    const d = daemons.run([
      '--etcd-endpoints', authEtcd.endpoint, '--etcd-prefix', '/wrong', '--iface', 'ext0', '--subnet-file', file,
      '--etcd-certfile', t.clientCert, '--etcd-keyfile', t.clientKey, '--etcd-cafile', t.ca,
      '--etcd-username', 'flannel', '--etcd-password', 'not-the-password',
    ]);
    const failure = "Couldn't fetch network config: etcdserver: authentication failed, invalid user ID or password";
    await until(() => d.stderr().includes(failure), 'a failed attempt');
    expect(d.running()).toBe(true);
    expect(existsSync(file)).toBe(false);
    expect(d.stderr()).toMatch(new RegExp(`^E\\d{4} .* ${failure}$`, 'm'));
    // the operator gives the user the password the daemon has: a later attempt of the same process
    // gets through
    authEtcd.setPassword('flannel', 'not-the-password');
    expect(await leaseValue(authEtcd, '/wrong', file, d)).toBe(OUR_VALUE);
    expect(d.stderr()).not.toMatch(/flanneld: |Error registering network/);
    expect(d.stderr()).not.toContain('not-the-password');
    expect(await daemons.stop(d)).toBe(0);
  });
});
