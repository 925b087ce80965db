// The built flanneld when etcd is rebuilt empty under it (issue 9, item 1): kill -9 etcd, delete its
// data dir, start it empty on the same URLs and put the config back. The daemon notices (the
// revision went back), re-creates its lease with the same subnet within seconds, keeps the peer that
// vanished with the store for the grace period (no removal at once), and sees a peer put afterwards.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasEtcd } from '../../helpers/etcd.js';
import { startWipeableEtcd, type WipeableEtcd } from '../../helpers/etcd-wipeable.js';
import { canUseNetns, cleanupNetns, type Netns } from '../../helpers/netns.js';
import { EXT_IP, SEED_ALLOC, buildFlanneld, createDaemonNetns, daemonRunner, until } from './daemon-harness.js';

describe.skipIf(!hasEtcd || !canUseNetns)('flanneld (built): etcd rebuilt empty', () => {
  let ns: Netns;
  let etcd: WipeableEtcd;
  let dir: string;
  const daemons = daemonRunner(() => ns);

  beforeAll(async () => {
    buildFlanneld();
    ns = createDaemonNetns('wipe');
    etcd = await startWipeableEtcd({ netns: ns.name });
    dir = mkdtempSync(join(tmpdir(), `flanneld-wipe-${process.pid}-`));
  });
  afterEach(() => daemons.killAll());
  afterAll(async () => {
    await etcd?.stop();
    ns?.delete();
    cleanupNetns();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('re-creates its lease with the same subnet within seconds, keeps the vanished peer for the grace, sees a new peer', async () => {
    etcd.ctl(['put', '/coreos.com/network/config', SEED_ALLOC]);
    const peer = '{"PublicIP":"10.50.0.9","PublicIPv6":null}';
    etcd.ctl(['put', '/coreos.com/network/subnets/10.20.0.0-20', peer]);
    // some history, so that the rebuilt store starts well below our revision
    for (let i = 0; i < 5; i++) etcd.ctl(['put', '/coreos.com/network/other', String(i)]);
    const file = join(dir, 'subnet.env');
    const d = daemons.run(['--etcd-endpoints', etcd.endpoint, '--iface', 'ext0', '--subnet-file', file, '--data-dir', join(dir, 'data')]);
    await until(() => d.stderr().includes('to renew lease') && d.stderr().includes('Subnet added: 10.20.0.0/20'), 'daemon up');
    const m = /FLANNEL_SUBNET=(10\.\d+\.\d+)\.1\/20/.exec(readFileSync(file, 'utf8'))!;
    const key = `/coreos.com/network/subnets/${m[1]}.0-20`;
    const ours = `{"PublicIP":"${EXT_IP}","PublicIPv6":null}\n`;
    expect(etcd.ctl(['get', '--print-value-only', key])).toBe(ours);

    await etcd.wipe();
    etcd.ctl(['put', '/coreos.com/network/config', SEED_ALLOC]);
    // within seconds (the watch reconnects with a back-off of at most 5 s), not at the next renewal
    await until(() => etcd.ctl(['get', '--print-value-only', key]) === ours, 'our lease re-created', 12_000, 100);
    // (the pipe's data arrives once the event loop runs: spawnSync above blocks it)
    await until(() => d.stderr().includes(`Re-acquired lease ${m[1]}.0/20`), 'the log of the re-creation');
    const log = d.stderr();
    expect(log).toMatch(/W.* etcd store reset detected: the etcd revision went back from \d+ to \d+/);
    expect(log).toContain(`Our lease ${m[1]}.0/20 is missing after the etcd reset: re-creating it with the same subnet`);
    expect(log).toContain(`Re-acquired lease ${m[1]}.0/20`);
    // with a fresh 24 h etcd lease
    const leaseId = BigInt(/"lease":(\d+)/.exec(etcd.ctl(['get', '-w', 'json', key]))![1]!).toString(16);
    expect(Number(/remaining\((\d+)s\)/.exec(etcd.ctl(['lease', 'timetolive', leaseId]))![1])).toBeGreaterThan(86_300);

    // a host that joins after the wipe is seen by the old one
    etcd.ctl(['put', '/coreos.com/network/subnets/10.21.0.0-20', '{"PublicIP":"10.50.0.10","PublicIPv6":null}']);
    await until(() => d.stderr().includes('Subnet added: 10.21.0.0/20'), 'a peer put after the wipe');
    // the peer that vanished with the store is kept for the grace period (15 s), not removed at once
    expect(d.stderr()).toMatch(/1 peer lease\(s\) missing from etcd after the reset, keeping their routes for up to \d+s/);
    expect(d.stderr()).not.toContain('Subnet removed: 10.20.0.0/20');
    // its owner comes back: no removal at all
    etcd.ctl(['put', '/coreos.com/network/subnets/10.20.0.0-20', peer]);
    await until(() => d.stderr().split('Subnet added: 10.20.0.0/20').length === 3, 'the peer re-created');
    expect(d.running()).toBe(true);
    expect(d.stderr()).not.toContain('Subnet removed');
    expect(await daemons.stop(d)).toBe(0);
  });
});
