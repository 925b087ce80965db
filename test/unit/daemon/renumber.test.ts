// Renumbering on start (daemon/renumber.ts) on the fake kernel, the state file
// (daemon/subnet/state-file.ts), and regaining an earlier subnet through LocalManager.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeKernel, FakeWorld } from '../../../shared/kernel/fake/fake-kernel.js';
import { formatNet, parseIP, parseNet } from '../../../shared/net/ip.js';
import type { Lease } from '../../../daemon/lease.js';
import { memoryLogger } from '../../../shared/log.js';
import {
  choosePrevious,
  cleanUpRenumbering,
  removeStaleDevices,
  settleNetworkChange,
} from '../../../daemon/renumber.js';
import { parseAndCheckConfig } from '../../../daemon/subnet/config.js';
import { LocalManager } from '../../../daemon/subnet/etcd/local-manager.js';
import { MemoryRegistry } from '../../../daemon/subnet/etcd/memory-registry.js';
import {
  MAX_HISTORY,
  type NetworkState,
  formatState,
  parseState,
  readStateFile,
  remember,
  stateFilePath,
} from '../../../daemon/subnet/state-file.js';

const A = '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","VNI":1}}';
const B = '{"Network":"10.2.0.0/16","Backend":{"Type":"vxlan","VNI":2}}';
const cfgA = parseAndCheckConfig(A);
const cfgB = parseAndCheckConfig(B);

const lease = (sn: string, sn6?: string): Lease => ({
  enableIPv4: true,
  enableIPv6: sn6 !== undefined,
  subnet: parseNet(sn),
  ...(sn6 ? { ipv6Subnet: parseNet(sn6) } : {}),
  attrs: { publicIP: parseIP('10.50.0.2') },
  expiration: 0,
});

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'flanneld-renumber-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function world() {
  const w = new FakeWorld();
  const k = new FakeKernel(w);
  const root = w.namespaces.get('/')!;
  return { w, k, root };
}

async function addrsOf(k: FakeKernel, dev: string): Promise<string[]> {
  return (await k.listAddrs({ dev })).map((a) => a.cidr).sort();
}

async function vxlan(k: FakeKernel, name: string, vni: number, mac: string): Promise<void> {
  await k.ensureVxlan(name, { vni, port: 8472, local: '10.50.0.2', learning: false, mac });
}

describe('cleanUpRenumbering', () => {
  it('renumbered: the old gateway goes from cni0 (so the bridge plugin can add the new one), the old /32 from the vxlan device, one warning says what happens to pods', async () => {
    const { k } = world();
    await k.ensureBridge('cni0');
    await k.ensureAddr('cni0', '10.1.3.1/24');
    await vxlan(k, 'flannel.1', 1, '02:00:00:00:00:01');
    await k.ensureAddr('flannel.1', '10.1.3.0/32');
    await k.ensureAddr('flannel.1', '10.2.5.0/32');
    const log = memoryLogger();
    await cleanUpRenumbering(
      k,
      { previous: { network: parseNet('10.1.0.0/16'), subnet: parseNet('10.1.3.0/24') }, lease: lease('10.2.5.0/24'), bridge: 'cni0', devices: ['flannel.1'] },
      log,
    );
    expect(await addrsOf(k, 'cni0')).toEqual([]);
    expect(await addrsOf(k, 'flannel.1')).toEqual(['10.2.5.0/32']);
    expect(await k.getLink('cni0')).toBeDefined(); // the bridge itself and its ports stay
    const warn = log.lines.find((l) => l.includes('this node was renumbered'));
    expect(warn).toBe(
      'W this node was renumbered: 10.1.3.0/24 -> 10.2.5.0/24. Pods started before keep addresses in 10.1.3.0/24: they lose connectivity (host, other nodes, outside) and must be recreated (delete them or drain this node)',
    );
    expect(log.lines).toContain('W removed the previous subnet\'s gateway 10.1.3.1/24 from cni0, so that the bridge plugin can put 10.2.5.1/24 there');
  });

  it('same subnet: nothing is touched and nothing logged', async () => {
    const { k } = world();
    await k.ensureBridge('cni0');
    await k.ensureAddr('cni0', '10.1.3.1/24');
    const log = memoryLogger();
    await cleanUpRenumbering(k, { previous: { subnet: parseNet('10.1.3.0/24') }, lease: lease('10.1.3.0/24'), bridge: 'cni0', devices: [] }, log);
    expect(await addrsOf(k, 'cni0')).toEqual(['10.1.3.1/24']);
    expect(log.lines).toEqual([]);
  });

  it('only the exact previous gateway goes: another address on the bridge is named (with the fix), a non-bridge cni0 is left alone', async () => {
    const { k } = world();
    await k.ensureBridge('cni0');
    await k.ensureAddr('cni0', '10.1.3.1/24');
    await k.ensureAddr('cni0', '192.168.7.1/24'); // the operator's
    await k.ensureAddr('cni0', '10.1.3.1/16'); // same IP, other prefix: not what the bridge plugin set
    const log = memoryLogger();
    const input = { previous: { subnet: parseNet('10.1.3.0/24') }, lease: lease('10.2.5.0/24'), bridge: 'cni0', devices: [] };
    await cleanUpRenumbering(k, input, log);
    expect(await addrsOf(k, 'cni0')).toEqual(['10.1.3.1/16', '192.168.7.1/24']);
    expect(log.lines.some((l) => l.includes('cni0 also holds 192.168.7.1/24') && l.includes('ip addr del 192.168.7.1/24 dev cni0'))).toBe(true);

    const { k: k2 } = world();
    await k2.ensureVxlan('cni0', { vni: 9, port: 8472, local: '10.50.0.2', learning: false });
    await k2.ensureAddr('cni0', '10.1.3.1/24');
    const log2 = memoryLogger();
    await cleanUpRenumbering(k2, input, log2);
    expect(await addrsOf(k2, 'cni0')).toEqual(['10.1.3.1/24']);
    expect(log2.lines).toContain('W cni0 is not a bridge (kind vxlan): leaving it alone');
  });

  it('bridge "" (--cni-bridge=""): bridges are left alone; no bridge at all: fine', async () => {
    const { k } = world();
    await k.ensureBridge('cni0');
    await k.ensureAddr('cni0', '10.1.3.1/24');
    const input = { previous: { subnet: parseNet('10.1.3.0/24') }, lease: lease('10.2.5.0/24'), devices: [] };
    await cleanUpRenumbering(k, { ...input, bridge: '' }, memoryLogger());
    expect(await addrsOf(k, 'cni0')).toEqual(['10.1.3.1/24']);
    const log = memoryLogger();
    await cleanUpRenumbering(k, { ...input, bridge: 'cbr9' }, log);
    expect(log.lines.filter((l) => l.startsWith('E'))).toEqual([]);
  });

  it('IPv6: the old v6 gateway goes too', async () => {
    const { k } = world();
    await k.ensureBridge('cni0');
    await k.ensureAddr('cni0', '10.1.3.1/24');
    await k.ensureAddr('cni0', 'fd00:1:0:3::1/64');
    await cleanUpRenumbering(
      k,
      {
        previous: { subnet: parseNet('10.1.3.0/24'), ipv6Subnet: parseNet('fd00:1:0:3::/64') },
        lease: lease('10.2.5.0/24', 'fd00:2:0:5::/64'),
        bridge: 'cni0',
        devices: [],
      },
      memoryLogger(),
    );
    expect(await addrsOf(k, 'cni0')).toEqual([]);
  });
});

describe('removeStaleDevices', () => {
  const rec = { type: 'vxlan', devices: [{ name: 'flannel.1', kind: 'vxlan' as const, vni: 1, mac: '02:00:00:00:00:01' }] };

  it('deletes the recorded flannel.1 that the config no longer uses; keeps the current one', async () => {
    const { k } = world();
    await vxlan(k, 'flannel.1', 1, '02:00:00:00:00:01');
    await vxlan(k, 'flannel.2', 2, '02:00:00:00:00:02');
    const log = memoryLogger();
    await removeStaleDevices(k, rec, ['flannel.2'], log);
    expect(await k.getLink('flannel.1')).toBeUndefined();
    expect(await k.getLink('flannel.2')).toBeDefined();
    expect(log.lines).toEqual(['W deleted flannel.1 (vxlan VNI 1) of the previous vxlan backend config: the current config does not use it']);
    // the current device is never deleted, even if recorded
    await removeStaleDevices(k, { type: 'vxlan', devices: [{ ...rec.devices[0]!, name: 'flannel.2', vni: 2, mac: '02:00:00:00:00:02' }] }, ['flannel.2'], log);
    expect(await k.getLink('flannel.2')).toBeDefined();
  });

  it('never deletes what it cannot prove is ours: no record, another MAC, another VNI, another kind', async () => {
    const { k } = world();
    await vxlan(k, 'flannel.1', 1, '02:00:00:00:00:01');
    await removeStaleDevices(k, undefined, [], memoryLogger());
    expect(await k.getLink('flannel.1')).toBeDefined();

    await k.deleteLink('flannel.1');
    await vxlan(k, 'flannel.1', 1, '02:00:00:00:00:99');
    const log = memoryLogger();
    await removeStaleDevices(k, rec, [], log);
    expect(await k.getLink('flannel.1')).toBeDefined();
    expect(log.lines[0]).toMatch(/^W leaving flannel\.1 in place: it is not the device flanneld recorded .*it has MAC 02:00:00:00:00:99/);

    await k.deleteLink('flannel.1');
    await vxlan(k, 'flannel.1', 7, '02:00:00:00:00:01');
    await removeStaleDevices(k, rec, [], memoryLogger());
    expect(await k.getLink('flannel.1')).toBeDefined();

    await k.deleteLink('flannel.1');
    await k.ensureBridge('flannel.1');
    await removeStaleDevices(k, rec, [], memoryLogger());
    expect((await k.getLink('flannel.1'))?.kind).toBe('bridge');
  });
});

describe('state file', () => {
  it('round-trips and keeps at most MAX_HISTORY entries, newest first, no duplicates', () => {
    let h = remember([], parseNet('10.1.0.0/16'), parseNet('10.1.3.0/24'));
    h = remember(h, parseNet('10.2.0.0/16'), parseNet('10.2.5.0/24'));
    h = remember(h, parseNet('10.1.0.0/16'), parseNet('10.1.3.0/24'));
    expect(h.map((e) => formatNet(e.subnet))).toEqual(['10.1.3.0/24', '10.2.5.0/24']);
    for (let i = 0; i < 40; i++) h = remember(h, parseNet(`10.${i + 10}.0.0/16`), parseNet(`10.${i + 10}.1.0/24`));
    expect(h).toHaveLength(MAX_HISTORY);
    const s: NetworkState = { backend: { type: 'vxlan', devices: [{ name: 'flannel.1', kind: 'vxlan', vni: 1, mac: '02:00:00:00:00:01' }] }, history: h };
    expect(parseState(formatState(s))).toEqual(s);
  });

  it('a malformed, foreign or oversized file is logged, moved aside and read as empty; a missing one is empty', async () => {
    const dir = tempDir();
    const log = memoryLogger();
    expect(await readStateFile(dir, log)).toEqual({ history: [] });
    expect(log.lines).toEqual([]);
    for (const bad of ['{', '{"version":2}', '{"version":1,"backend":{"type":"vxlan","devices":[{"name":"eth0","kind":"vxlan","vni":1,"mac":"x"}]}}', ' '.repeat(70_000)]) {
      writeFileSync(stateFilePath(dir), bad);
      const l = memoryLogger();
      expect(await readStateFile(dir, l)).toEqual({ history: [] });
      expect(l.lines).toHaveLength(1);
      expect(l.lines[0]).toMatch(/^W ignoring .*network\.json \(.*\); moved to .*network\.json\.invalid: no stale devices/);
      expect(readFileSync(`${stateFilePath(dir)}.invalid`, 'utf8')).toBe(bad);
      expect(existsSync(stateFilePath(dir))).toBe(false);
    }
  });
});

describe('choosePrevious / regaining a subnet', () => {
  it("subnet.env's subnet when it fits, else the one remembered for this Network, else subnet.env's as is", () => {
    const hist = remember(remember([], parseNet('10.1.0.0/16'), parseNet('10.1.3.0/24')), parseNet('10.2.0.0/16'), parseNet('10.2.5.0/24'));
    const log = memoryLogger();
    expect(formatNet(choosePrevious({ subnet: parseNet('10.1.9.0/24') }, cfgA, hist, log).subnet!)).toBe('10.1.9.0/24');
    expect(formatNet(choosePrevious({ subnet: parseNet('10.2.5.0/24') }, cfgA, hist, log).subnet!)).toBe('10.1.3.0/24');
    expect(log.lines).toEqual([
      'I previous subnet 10.2.5.0/24 (subnet.env) does not fit the network config: asking for 10.1.3.0/24, which this node held in 10.1.0.0/16 before',
    ]);
    expect(formatNet(choosePrevious({}, cfgA, hist, log).subnet!)).toBe('10.1.3.0/24'); // subnet.env gone (reboot)
    const cfgC = parseAndCheckConfig('{"Network":"10.3.0.0/16"}');
    expect(formatNet(choosePrevious({ subnet: parseNet('10.2.5.0/24') }, cfgC, hist, log).subnet!)).toBe('10.2.5.0/24');
    // a remembered subnet that no longer fits (SubnetLen changed) is not asked for
    const cfgA20 = parseAndCheckConfig('{"Network":"10.1.0.0/16","SubnetLen":20}');
    expect(formatNet(choosePrevious({ subnet: parseNet('10.2.5.0/24') }, cfgA20, hist, log).subnet!)).toBe('10.2.5.0/24');
  });

  it('A → B → A through LocalManager: the node gets its A subnet back (random picks would not)', async () => {
    const reg = new MemoryRegistry(A);
    const attrs = { publicIP: parseIP('10.50.0.2') };
    const ac = new AbortController();
    // a "random" that never picks the subnet we want back: the first free one every time
    const first = () => 0;
    const sm1 = new LocalManager({ registry: reg, random: () => 0.5 });
    const a = await sm1.acquireLease(attrs, ac.signal);
    let state: NetworkState = { history: remember([], cfgA.network!, a.subnet) };
    expect(formatNet(a.subnet)).not.toBe('10.1.1.0/24');

    reg.config = B;
    const sm2 = new LocalManager({ registry: reg, previous: { subnet: a.subnet }, random: first });
    sm2.setPrevious(choosePrevious({ subnet: a.subnet }, cfgB, state.history, memoryLogger()));
    const b = await sm2.acquireLease(attrs, ac.signal);
    expect(formatNet(b.subnet)).toBe('10.2.1.0/24');
    state = { history: remember(state.history, cfgB.network!, b.subnet) };

    reg.config = A;
    const sm3 = new LocalManager({ registry: reg, previous: { subnet: b.subnet }, random: first });
    sm3.setPrevious(choosePrevious({ subnet: b.subnet }, cfgA, state.history, memoryLogger()));
    const again = await sm3.acquireLease(attrs, ac.signal);
    expect(formatNet(again.subnet)).toBe(formatNet(a.subnet));

    // without the history (today's behaviour) the revert lands elsewhere: what this test guards
    reg.config = B;
    await new LocalManager({ registry: reg, random: first }).acquireLease(attrs, ac.signal);
    reg.config = A;
    const plain = await new LocalManager({ registry: reg, previous: { subnet: b.subnet }, random: first }).acquireLease(attrs, ac.signal);
    expect(formatNet(plain.subnet)).not.toBe(formatNet(a.subnet));
    ac.abort();
  });
});

describe('settleNetworkChange', () => {
  it('start on B after A: flannel.1 deleted, cni0 cleaned, network.json records flannel.2 and both subnets', async () => {
    const dir = tempDir();
    const { k } = world();
    await vxlan(k, 'flannel.1', 1, '02:00:00:00:00:01');
    await vxlan(k, 'flannel.2', 2, '02:00:00:00:00:02');
    await k.ensureBridge('cni0');
    await k.ensureAddr('cni0', '10.1.3.1/24');
    const prevState: NetworkState = {
      backend: { type: 'vxlan', devices: [{ name: 'flannel.1', kind: 'vxlan', vni: 1, mac: '02:00:00:00:00:01' }] },
      history: remember([], parseNet('10.1.0.0/16'), parseNet('10.1.3.0/24')),
    };
    const log = memoryLogger();
    const next = await settleNetworkChange(
      k,
      { previous: { subnet: parseNet('10.1.3.0/24') }, state: prevState, config: cfgB, lease: lease('10.2.5.0/24'), bridge: 'cni0', dataDir: dir },
      log,
    );
    expect(await k.getLink('flannel.1')).toBeUndefined();
    expect(await addrsOf(k, 'cni0')).toEqual([]);
    const onDisk = parseState(readFileSync(stateFilePath(dir), 'utf8'));
    expect(onDisk).toEqual(next);
    expect(onDisk.backend).toEqual({ type: 'vxlan', devices: [{ name: 'flannel.2', kind: 'vxlan', vni: 2, mac: '02:00:00:00:00:02' }] });
    expect(onDisk.history.map((e) => `${formatNet(e.network)} ${formatNet(e.subnet)}`)).toEqual(['10.2.0.0/16 10.2.5.0/24', '10.1.0.0/16 10.1.3.0/24']);
    expect(log.lines.filter((l) => l.startsWith('E'))).toEqual([]);
  });
});
