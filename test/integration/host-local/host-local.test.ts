// The built host-local against the Go reference (/usr/lib/cni/host-local, plugins 1.1.1): same results,
// same store bytes, one shared store without duplicates, the same errors for garbage input.
// No kernel state is touched: host-local only writes under the private dataDirs made here.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tmp from 'tmp';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DiskStore } from '../../../plugins/host-local/disk-store.js';
import { utilFlock } from '../../../shared/fs/flock.js';
import { GO, OURS, buildPlugins, ipamEnv, runPlugin, runPluginSync, snapshot } from './exec-plugin.js';

const haveGo = existsSync(GO.hostLocal);
const GO_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'];

let tmpDir: tmp.DirResult;
let dirA: string;
let dirB: string;
beforeAll(buildPlugins);
beforeEach(() => {
  tmpDir = tmp.dirSync({ unsafeCleanup: true });
  dirA = join(tmpDir.name, 'a');
  dirB = join(tmpDir.name, 'b');
});
afterEach(() => tmpDir.removeCallback());

const resolvConf = (): string => {
  const p = join(tmpDir.name, 'resolv.conf');
  writeFileSync(p, 'nameserver 1.1.1.1\n# c\nnameserver 8.8.8.8\ndomain example.com\nsearch a.example b.example\noptions ndots:5\n');
  return p;
};

const goTestConf = (cniVersion: string, dataDir: string) => ({
  cniVersion,
  name: 'mynet',
  type: 'ipvlan',
  master: 'foo0',
  ipam: {
    type: 'host-local',
    dataDir,
    resolvConf: resolvConf(),
    ranges: [[{ subnet: '10.1.2.0/24' }, { subnet: '10.2.2.0/24' }], [{ subnet: '2001:db8:1::/64' }]],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }, { dst: '192.168.0.0/16', gw: '1.1.1.1' }, { dst: '2001:db8:2::0/64', gw: '2001:db8:3::1' }],
  },
});

const legacyConf = (cniVersion: string, dataDir: string, extra: Record<string, unknown> = {}) => ({
  cniVersion,
  name: 'legacy',
  ipam: { type: 'host-local', dataDir, subnet: '10.9.0.0/16', rangeStart: '10.9.1.10', rangeEnd: '10.9.1.20', gateway: '10.9.1.1' },
  ...extra,
});

/** Runs the same steps on ours (store A) and Go (store B); every output and the stores must be equal. */
function lockstep(steps: Array<{ cmd: string; id?: string; ifName?: string; args?: string; conf: (dataDir: string) => unknown }>): void {
  for (const s of steps) {
    const env = ipamEnv(s.cmd, s.id ?? 'dummy', s.ifName ?? 'eth0', s.args);
    const ours = runPluginSync(OURS.hostLocal, env, s.conf(dirA));
    const go = runPluginSync(GO.hostLocal, env, s.conf(dirB));
    expect({ step: s.cmd, id: s.id, code: ours.code, stdout: ours.stdout }).toEqual({ step: s.cmd, id: s.id, code: go.code, stdout: go.stdout });
    expect(snapshot(dirA)).toEqual(snapshot(dirB));
  }
}

describe.skipIf(!haveGo)('host-local: identical to the Go reference', () => {
  it.each(GO_VERSIONS)('ADD/CHECK/DEL with two range sets, routes and resolvConf at %s', (v) => {
    const steps = [
      { cmd: 'ADD', conf: (d: string) => goTestConf(v, d) },
      { cmd: 'ADD', id: 'other', conf: (d: string) => goTestConf(v, d) },
      { cmd: 'ADD', conf: (d: string) => goTestConf(v, d) }, // duplicate: error
      ...(v === '0.4.0' || v === '1.0.0' ? [{ cmd: 'CHECK', conf: (d: string) => goTestConf(v, d) }] : []),
      { cmd: 'DEL', conf: (d: string) => goTestConf(v, d) },
      { cmd: 'DEL', conf: (d: string) => goTestConf(v, d) },
      ...(v === '0.4.0' || v === '1.0.0' ? [{ cmd: 'CHECK', conf: (d: string) => goTestConf(v, d) }] : []),
      { cmd: 'ADD', id: 'third', conf: (d: string) => goTestConf(v, d) },
    ];
    lockstep(steps);
    expect(snapshot(join(dirA, 'mynet'))).toMatchObject({ '10.1.2.3': 'other\r\neth0', 'last_reserved_ip.0': '10.1.2.4', lock: '' });
  });

  it('legacy range with start/end/gateway, requested IPs, exhaustion and wrap-around', () => {
    const conf = (extra: Record<string, unknown> = {}) => (d: string) => legacyConf('0.3.1', d, extra);
    const steps = [
      { cmd: 'ADD', id: 'a', conf: conf() },
      { cmd: 'ADD', id: 'b', args: 'IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.9.1.15', conf: conf() },
      { cmd: 'ADD', id: 'c', conf: conf({ runtimeConfig: { ips: ['10.9.1.18/16'] } }) },
      { cmd: 'ADD', id: 'd', conf: conf({ args: { cni: { ips: ['10.9.1.15'] } } }) }, // taken
      { cmd: 'ADD', id: 'e', conf: conf({ args: { cni: { ips: ['10.9.1.1'] } } }) }, // gateway
      { cmd: 'ADD', id: 'f', conf: conf({ args: { cni: { ips: ['10.9.1.30'] } } }) }, // not in any set
      { cmd: 'ADD', id: 'g', args: 'IP=10.9.1.300', conf: conf() },
      { cmd: 'ADD', id: 'h', args: 'K8S_POD_NAME=x', conf: conf() },
      ...'ijklmnopqrst'.split('').map((id) => ({ cmd: 'ADD', id, conf: conf() })), // runs out after 11 addresses
      { cmd: 'DEL', id: 'a', conf: conf() },
      { cmd: 'ADD', id: 'u', conf: conf() }, // wraps to the freed .10
      { cmd: 'DEL', id: 'nobody', conf: conf() },
    ];
    lockstep(steps);
    const store = snapshot(join(dirA, 'legacy'));
    expect(store['10.9.1.10']).toBe('u\r\neth0');
    expect(Object.keys(store).filter((k) => k.startsWith('10.'))).toHaveLength(11);
  });

  it('same config errors as Go', () => {
    const bad = [
      { subnet: '10.0.0.1/24' },
      { subnet: '10.0.0.0/31' },
      { subnet: '10.0.0.0/24', rangeStart: '10.0.1.1' },
      { ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: '10.0.0.0/25' }]] },
      { ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: '10.0.0.128/25' }]] },
      { ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: 'fd00::/64' }]] },
      { ranges: [[]] },
      { subnet: 5 },
      { ranges: [[{ subnet: '10.0.0.0/24', gateway: 5 }]] },
      { subnet: '10.0.0.0/24', routes: [{ dst: 'x' }] },
      { subnet: '10.0.0.0/24', resolvConf: '/nonexistent/resolv.conf' },
      {},
    ];
    for (const ipam of bad) {
      lockstep([{ cmd: 'ADD', conf: (d) => ({ cniVersion: '0.3.1', name: 'bad', ipam: { type: 'host-local', dataDir: d, ...ipam } }) }]);
    }
    lockstep([{ cmd: 'ADD', conf: () => ({ cniVersion: '0.3.1', name: 'bad' }) }]);
  });
});

describe.skipIf(!haveGo)('host-local: one store shared with the Go plugin', () => {
  const conf = (cniVersion = '0.3.1') => ({ cniVersion, name: 'shared', ipam: { type: 'host-local', dataDir: dirA, subnet: '10.5.0.0/24' } });
  const ips = (r: { json?: Record<string, unknown> }) => (r.json?.ips as Array<{ address: string }> | undefined)?.map((i) => i.address);
  const storeIPs = () => readdirSync(join(dirA, 'shared')).filter((n) => n.startsWith('10.')).sort();

  it('ours then Go allocate in sequence; each releases the other', () => {
    expect(ips(runPluginSync(OURS.hostLocal, ipamEnv('ADD', 'ours'), conf()))).toEqual(['10.5.0.2/24']);
    expect(ips(runPluginSync(GO.hostLocal, ipamEnv('ADD', 'go'), conf()))).toEqual(['10.5.0.3/24']);
    expect(runPluginSync(GO.hostLocal, ipamEnv('CHECK', 'ours'), conf('0.4.0')).code).toBe(0);
    expect(runPluginSync(OURS.hostLocal, ipamEnv('CHECK', 'go'), conf('0.4.0')).code).toBe(0);
    expect(runPluginSync(GO.hostLocal, ipamEnv('DEL', 'ours'), conf()).code).toBe(0);
    expect(storeIPs()).toEqual(['10.5.0.3']);
    expect(runPluginSync(OURS.hostLocal, ipamEnv('DEL', 'go'), conf()).code).toBe(0);
    expect(storeIPs()).toEqual([]);
  });

  it('Go then ours; ours continues Go round-robin and refuses Go-held duplicates', () => {
    expect(ips(runPluginSync(GO.hostLocal, ipamEnv('ADD', 'go'), conf()))).toEqual(['10.5.0.2/24']);
    expect(runPluginSync(OURS.hostLocal, ipamEnv('ADD', 'go'), conf()).json).toEqual({
      code: 999,
      msg: 'failed to allocate for range 0: 10.5.0.2 has been allocated to go, duplicate allocation is not allowed',
    });
    expect(ips(runPluginSync(OURS.hostLocal, ipamEnv('ADD', 'ours'), conf()))).toEqual(['10.5.0.3/24']);
    expect(runPluginSync(OURS.hostLocal, ipamEnv('DEL', 'go'), conf()).code).toBe(0);
    expect(ips(runPluginSync(GO.hostLocal, ipamEnv('ADD', 'go2'), conf()))).toEqual(['10.5.0.4/24']);
    expect(runPluginSync(GO.hostLocal, ipamEnv('DEL', 'ours'), conf()).code).toBe(0);
    expect(storeIPs()).toEqual(['10.5.0.4']);
  });
});

describe('host-local: GC (spec 1.1) through the executable', () => {
  it('releases every reservation the runtime no longer lists, keeps lock and last_reserved_ip', () => {
    const conf = (valid?: unknown) => ({
      cniVersion: '1.1.0',
      name: 'gcnet',
      ipam: { type: 'host-local', dataDir: dirA, subnet: '10.6.0.0/24' },
      ...(valid === undefined ? {} : { 'cni.dev/valid-attachments': valid }),
    });
    for (const id of ['keep', 'stale1', 'stale2']) expect(runPluginSync(OURS.hostLocal, ipamEnv('ADD', id), conf()).code).toBe(0);
    const gc = runPluginSync(OURS.hostLocal, { command: 'GC', path: '/opt/cni/bin' }, conf([{ containerID: 'keep', ifname: 'eth0' }]));
    expect(gc).toMatchObject({ code: 0, stdout: '' });
    expect(snapshot(join(dirA, 'gcnet'))).toEqual({ '10.6.0.2': 'keep\r\neth0', 'last_reserved_ip.0': '10.6.0.4', lock: '' });
    const old = runPluginSync(OURS.hostLocal, { command: 'GC', path: '/opt/cni/bin' }, { ...conf([]), cniVersion: '1.0.0' });
    expect(old.json).toEqual({ code: 1, msg: 'config version does not allow GC' });
    expect(Object.keys(snapshot(join(dirA, 'gcnet')))).toContain('10.6.0.2');
  });
});

describe('host-local: concurrency', () => {
  const conf = { cniVersion: '1.0.0', name: 'busy', ipam: { type: 'host-local', subnet: '10.7.0.0/24' } };
  const withDir = () => ({ ...conf, ipam: { ...conf.ipam, dataDir: dirA } });
  const storeFiles = () => readdirSync(join(dirA, 'busy')).sort();

  async function addAll(bins: string[]): Promise<string[]> {
    const runs = await Promise.all(bins.map((bin, i) => runPlugin(bin, ipamEnv('ADD', `c${i}`), withDir())));
    for (const r of runs) expect(r, r.stdout + r.stderr).toMatchObject({ code: 0 });
    return runs.map((r) => (r.json?.ips as Array<{ address: string }>)[0]!.address);
  }

  async function delAll(bins: string[]): Promise<void> {
    const runs = await Promise.all(bins.map((bin, i) => runPlugin(bin, ipamEnv('DEL', `c${i}`), withDir())));
    for (const r of runs) expect(r, r.stdout + r.stderr).toMatchObject({ code: 0, stdout: '' });
  }

  it('100 concurrent ADDs get 100 distinct addresses; 100 DELs empty the store', async () => {
    const bins = Array.from({ length: 100 }, () => OURS.hostLocal);
    const addrs = await addAll(bins);
    expect(new Set(addrs).size).toBe(100);
    expect(storeFiles().filter((n) => n.startsWith('10.'))).toHaveLength(100);
    await delAll(bins);
    expect(storeFiles()).toEqual(['last_reserved_ip.0', 'lock']);
  }, 120_000);

  it.skipIf(!haveGo)('50 of ours and 50 Go ADDs interleaved on one store: 100 distinct addresses', async () => {
    const bins = Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? OURS.hostLocal : GO.hostLocal));
    const addrs = await addAll(bins);
    expect(new Set(addrs).size).toBe(100);
    const files = storeFiles().filter((n) => n.startsWith('10.'));
    expect(files).toHaveLength(100);
    // the opposite plugin releases each container
    await delAll(bins.map((b) => (b === GO.hostLocal ? OURS.hostLocal : GO.hostLocal)));
    expect(storeFiles()).toEqual(['last_reserved_ip.0', 'lock']);
  }, 120_000);
});

/** Polls `cond` until true or the deadline passes. */
async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** True when some process is blocked in flock(2) on the file with inode `ino` (a `->` line in /proc/locks). */
const hasWaiter = (ino: number): boolean =>
  readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .some((l) => l.includes('->') && l.includes('FLOCK') && l.split(/\s+/).some((f) => f.endsWith(`:${ino}`)));

describe('host-local: the lock is a real flock(2) on <dataDir>/<net>/lock', () => {
  const conf = () => ({ cniVersion: '1.0.0', name: 'locked', ipam: { type: 'host-local', dataDir: dirA, subnet: '10.8.0.0/24' } });

  it('our ADD waits while another process (flock(1), as Go) holds the lock', async () => {
    const store = DiskStore.open('locked', dirA, utilFlock()); // creates dir + lock file
    store.close();
    const lock = join(dirA, 'locked', 'lock');
    const holder = spawn('flock', ['-x', lock, 'cat'], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      await waitFor('the holder to take the lock', () => spawnFlockN(lock) === 1);
      let done = false;
      const add = runPlugin(OURS.hostLocal, ipamEnv('ADD', 'waiter'), conf()).then((r) => ((done = true), r));
      await waitFor('our ADD to block on the lock', () => hasWaiter(statSync(lock).ino));
      expect(done).toBe(false);
      holder.stdin.end();
      const r = await add;
      expect(r.json?.ips).toEqual([{ address: '10.8.0.2/24', gateway: '10.8.0.1' }]);
    } finally {
      holder.kill();
    }
  });

  it.skipIf(!haveGo)('the Go ADD waits while our store holds the lock', async () => {
    const store = DiskStore.open('locked', dirA, utilFlock());
    const lock = join(dirA, 'locked', 'lock');
    store.lock();
    let released = false;
    try {
      expect(spawnFlockN(lock)).toBe(1);
      let done = false;
      const add = runPlugin(GO.hostLocal, ipamEnv('ADD', 'go-waiter'), conf()).then((r) => ((done = true), r));
      await waitFor('the Go ADD to block on the lock', () => hasWaiter(statSync(lock).ino));
      expect(done).toBe(false);
      store.unlock();
      released = true;
      const r = await add;
      expect(r.json?.ips).toEqual([{ address: '10.8.0.2/24', gateway: '10.8.0.1' }]);
    } finally {
      if (!released) store.unlock();
      store.close();
    }
  });
});

/** `flock -n <file> true`: 0 when free, 1 when another open file description holds it. */
function spawnFlockN(file: string): number {
  return spawnSync('flock', ['-n', file, 'true']).status ?? -1;
}
