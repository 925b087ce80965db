// The built flanneld when its own lease key is removed behind its back (Go: pkg/subnet/etcd/local_manager.go, the own-lease watch), and SIGINT.
// Go logs "Lease has been revoked. Shutting down daemon." and exits 0. Ours re-creates the same key
// in place (LocalManager.reclaim, a Version==0 txn that never steals a subnet) and keeps running. If
// another node holds the subnet by then, it exits 1 and says who holds it.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasEtcd, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { canUseNetns, cleanupNetns, type Netns } from '../../helpers/netns.js';
import { EXT_IP, SEED_ALLOC, buildFlanneld, createDaemonNetns, daemonRunner, until, within } from './daemon-harness.js';

/** `10.a.b.1/20` in subnet.env → `10.a.b.0-20`, the key suffix */
function ownKey(prefix: string, subnetEnv: string): { key: string; subnet: string } {
  const m = /FLANNEL_SUBNET=(10\.\d+\.\d+)\.1\/20/.exec(subnetEnv);
  if (!m) throw new Error(`no FLANNEL_SUBNET in ${JSON.stringify(subnetEnv)}`);
  return { key: `${prefix}/subnets/${m[1]}.0-20`, subnet: `${m[1]}.0/20` };
}

describe.skipIf(!hasEtcd || !canUseNetns)('flanneld (built): own lease removed, SIGINT', () => {
  let ns: Netns;
  let etcd: TestEtcd;
  let dir: string;
  const daemons = daemonRunner(() => ns);

  /** starts a daemon on `prefix` and returns it once it waits to renew (its own-key watch runs) */
  const start = async (prefix: string) => {
    etcd.ctl(['put', `${prefix}/config`, SEED_ALLOC]);
    const file = join(dir, `${prefix.slice(1)}.env`);
    const d = daemons.run(['--etcd-endpoints', etcd.endpoint, '--etcd-prefix', prefix, '--iface', 'ext0', '--subnet-file', file]);
    await until(() => d.stderr().includes('to renew lease'), 'the renew loop');
    const env = readFileSync(file, 'utf8');
    return { d, file, env, ...ownKey(prefix, env) };
  };

  beforeAll(async () => {
    buildFlanneld();
    ns = createDaemonNetns('own');
    etcd = await startEtcd({ netns: ns.name });
    dir = mkdtempSync(join(tmpdir(), `flanneld-own-${process.pid}-`));
  });
  afterEach(() => daemons.killAll());
  afterAll(async () => {
    await etcd?.stop();
    ns?.delete();
    cleanupNetns();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('own key deleted (etcdctl del): the same subnet is re-created in place, subnet.env untouched, still running', async () => {
    const { d, file, env, key, subnet } = await start('/own1');
    const before = statSync(file);
    const ourValue = `{"PublicIP":"${EXT_IP}","PublicIPv6":null}\n`;
    expect(etcd.ctl(['get', '--print-value-only', key])).toBe(ourValue);

    expect(etcd.ctl(['del', key]).trim()).toBe('1');
    await until(() => d.stderr().includes(`Re-acquired lease ${subnet}`), 'the re-acquire');
    expect(d.stderr()).toContain(`Lease has been revoked: re-acquiring ${subnet}`);
    expect(etcd.ctl(['get', '--print-value-only', key])).toBe(ourValue);
    // with a fresh 24 h etcd lease, as a create does
    const leaseId = BigInt(/"lease":(\d+)/.exec(etcd.ctl(['get', '-w', 'json', key]))![1]!).toString(16);
    const remaining = Number(/remaining\((\d+)s\)/.exec(etcd.ctl(['lease', 'timetolive', leaseId]))![1]);
    expect(remaining).toBeGreaterThan(86_300);
    // subnet.env was not rewritten: same bytes, same inode, same mtime
    const after = statSync(file);
    expect(readFileSync(file, 'utf8')).toBe(env);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);

    // still serving: a peer put now is picked up, and nothing else went to other subnets
    etcd.ctl(['put', '/own1/subnets/10.20.0.0-20', '{"PublicIP":"10.50.0.9","PublicIPv6":null}']);
    await until(() => d.stderr().includes('Subnet added: 10.20.0.0/20'), 'a peer after the re-acquire');
    expect(d.running()).toBe(true);
    expect(etcd.ctl(['get', '--prefix', '--keys-only', '/own1/subnets/']).trim().split(/\n+/).sort()).toEqual(
      [key, '/own1/subnets/10.20.0.0-20'].sort(),
    );
    expect(await daemons.stop(d)).toBe(0);
  });

  it('own key deleted and at once put by another node (other PublicIP): exits 1 naming the holder, never overwrites it', async () => {
    const { d, key, subnet } = await start('/own2');
    const theirs = '{"PublicIP":"10.50.0.77","PublicIPv6":null}';
    etcd.ctl(['del', key]);
    etcd.ctl(['put', key, theirs]);
    expect(await within(d.exit, 15_000, 'the exit')).toBe(1);
    const line = d.stderr().split('\n').find((l) => l.includes('was revoked'));
    expect(line).toMatch(new RegExp(`^E\\d{4} .* lease ${subnet.replace(/\./g, '\\.')} was revoked and is now held by 10\\.50\\.0\\.77: shutting down$`));
    expect(etcd.ctl(['get', '--print-value-only', key])).toBe(`${theirs}\n`);
  });

  it('SIGINT exits 0 like SIGTERM, leaving the lease', async () => {
    const { d, key } = await start('/own3');
    expect(await daemons.stop(d, 'SIGINT')).toBe(0);
    expect(d.stderr()).toContain('shutdownHandler sent cancel signal... (SIGINT)');
    expect(d.stderr()).toContain('Exiting cleanly...');
    expect(etcd.ctl(['get', '--print-value-only', key])).toBe(`{"PublicIP":"${EXT_IP}","PublicIPv6":null}\n`);
  });
});
