import { describe, expect, it } from 'vitest';
import { SUPPORTED_VERSIONS } from '../../../../shared/cni/version.js';
import { type HostLocalDeps, parseResolvConf, parseValidAttachments } from '../../../../plugins/host-local/host-local.js';
import { runHostLocal } from '../../../../plugins/host-local/world.js';
import { MemoryStore } from '../../../../plugins/host-local/memory-store.js';

const RESOLV = `# comment
; other comment
nameserver 1.1.1.1
nameserver 8.8.8.8
domain example.com
search example.com example.net
options ndots:5 timeout:2
garbage
`;

function world() {
  const stores = new Map<string, MemoryStore>();
  const logs: string[] = [];
  const deps: HostLocalDeps = {
    openStore: (network, dataDir) => {
      const key = `${dataDir}/${network}`;
      let s = stores.get(key);
      if (!s) stores.set(key, (s = new MemoryStore()));
      return s;
    },
    readFile: (path) => {
      if (path === '/etc/fake-resolv.conf') return RESOLV;
      throw new Error(`open ${path}: no such file or directory`);
    },
    log: (m) => logs.push(m),
  };
  const run = async (cmd: string, conf: unknown, o: { id?: string; ifname?: string; args?: string } = {}) => {
    let stdout = '';
    const io = {
      env: {
        CNI_COMMAND: cmd,
        CNI_CONTAINERID: o.id ?? 'dummy',
        CNI_NETNS: '/var/run/netns/x',
        CNI_IFNAME: o.ifname ?? 'eth0',
        CNI_PATH: '/opt/cni/bin',
        CNI_ARGS: o.args ?? '',
      },
      readStdin: () => Buffer.from(typeof conf === 'string' ? conf : JSON.stringify(conf)),
      writeStdout: (t: string) => void (stdout += t),
      writeStderr: () => {},
    };
    const code = await runHostLocal(io, deps);
    return { code, stdout, json: stdout === '' ? undefined : (JSON.parse(stdout) as Record<string, unknown>) };
  };
  return { stores, logs, run, store: (net = 'mynet', dir = '/d') => stores.get(`${dir}/${net}`) };
}

// host_local_test.go's main case: two range sets (v4 with two subnets, v6), four routes, a resolv.conf.
const goConf = (cniVersion: string) => ({
  cniVersion,
  name: 'mynet',
  type: 'ipvlan',
  master: 'foo0',
  ipam: {
    type: 'host-local',
    dataDir: '/d',
    resolvConf: '/etc/fake-resolv.conf',
    ranges: [[{ subnet: '10.1.2.0/24' }, { subnet: '10.2.2.0/24' }], [{ subnet: '2001:db8:1::/64' }]],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }, { dst: '192.168.0.0/16', gw: '1.1.1.1' }, { dst: '2001:db8:2::0/64', gw: '2001:db8:3::1' }],
  },
});

describe('host-local ADD/CHECK/DEL over every spec version', () => {
  it.each(SUPPORTED_VERSIONS)('version %s', async (v) => {
    const w = world();
    const add = await w.run('ADD', goConf(v));
    expect(add.code).toBe(0);
    const out = add.json!;
    expect(out.cniVersion).toBe(v);
    if (v === '0.1.0' || v === '0.2.0') {
      expect(out.ip4).toEqual({
        ip: '10.1.2.2/24',
        gateway: '10.1.2.1',
        routes: [{ dst: '0.0.0.0/0' }, { dst: '192.168.0.0/16', gw: '1.1.1.1' }],
      });
      expect(out.ip6).toEqual({
        ip: '2001:db8:1::2/64',
        gateway: '2001:db8:1::1',
        routes: [{ dst: '::/0' }, { dst: '2001:db8:2::/64', gw: '2001:db8:3::1' }],
      });
    } else {
      const withVersion = v.startsWith('0.');
      expect(out.ips).toEqual([
        { ...(withVersion ? { version: '4' } : {}), address: '10.1.2.2/24', gateway: '10.1.2.1' },
        { ...(withVersion ? { version: '6' } : {}), address: '2001:db8:1::2/64', gateway: '2001:db8:1::1' },
      ]);
      expect(add.stdout.includes('"version":')).toBe(withVersion);
      expect(out.routes).toHaveLength(4);
      expect(out.interfaces).toBeUndefined();
    }
    expect(out.dns).toEqual({
      nameservers: ['1.1.1.1', '8.8.8.8'],
      domain: 'example.com',
      search: ['example.com', 'example.net'],
      options: ['ndots:5', 'timeout:2'],
    });
    const store = w.store()!;
    expect(Object.fromEntries(store.ipMap)).toEqual({ '10.1.2.2': 'dummy\r\neth0', '2001:db8:1::2': 'dummy\r\neth0' });
    expect([...store.lastReserved.keys()]).toEqual(['0', '1']);

    const check = await w.run('CHECK', goConf(v));
    if (v === '0.1.0' || v === '0.2.0' || v === '0.3.0' || v === '0.3.1') {
      expect(check.json).toEqual({ code: 1, msg: 'config version does not allow CHECK' });
    } else {
      expect(check).toMatchObject({ code: 0, stdout: '' });
    }

    expect(await w.run('DEL', goConf(v))).toMatchObject({ code: 0, stdout: '' });
    expect(store.ipMap.size).toBe(0);
    // DEL again, and DEL of an unknown container, still succeed
    expect((await w.run('DEL', goConf(v))).code).toBe(0);
    expect((await w.run('DEL', goConf(v), { id: 'never-seen' })).code).toBe(0);
    expect(w.logs).toEqual([]);
  });
});

describe('host-local commands', () => {
  const simple = (extra: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) => ({
    cniVersion: '1.0.0',
    name: 'mynet',
    ipam: { type: 'host-local', dataDir: '/d', subnet: '10.1.2.0/24', ...ipam },
    ...extra,
  });

  it('refuses a repeated ADD of one attachment; another container gets the next address', async () => {
    const w = world();
    expect((await w.run('ADD', simple())).json?.ips).toEqual([{ address: '10.1.2.2/24', gateway: '10.1.2.1' }]);
    expect((await w.run('ADD', simple())).json).toEqual({
      code: 999,
      msg: 'failed to allocate for range 0: 10.1.2.2 has been allocated to dummy, duplicate allocation is not allowed',
    });
    expect((await w.run('ADD', simple(), { id: 'other' })).json?.ips).toEqual([{ address: '10.1.2.3/24', gateway: '10.1.2.1' }]);
  });

  it('keeps one interface when the other of the same container is deleted', async () => {
    const w = world();
    await w.run('ADD', simple(), { ifname: 'eth0' });
    await w.run('ADD', simple(), { ifname: 'eth1' });
    await w.run('DEL', simple(), { ifname: 'eth0' });
    expect(Object.fromEntries(w.store()!.ipMap)).toEqual({ '10.1.2.3': 'dummy\r\neth1' });
  });

  it('releases a legacy id-only reservation on DEL and finds it on CHECK', async () => {
    const w = world();
    await w.run('ADD', simple(), { id: 'other' });
    w.store()!.ipMap.set('10.1.2.9', 'dummy');
    expect((await w.run('CHECK', simple())).code).toBe(0);
    await w.run('DEL', simple());
    expect([...w.store()!.ipMap.keys()]).toEqual(['10.1.2.2']);
  });

  it('CHECK fails for a container holding nothing', async () => {
    const w = world();
    expect((await w.run('CHECK', simple(), { id: 'ghost' })).json).toEqual({
      code: 999,
      msg: 'host-local: Failed to find address added by container ghost',
    });
  });

  it('gives requested IPs from args, CNI_ARGS and runtimeConfig', async () => {
    const w = world();
    expect((await w.run('ADD', simple({ args: { cni: { ips: ['10.1.2.88'] } } }))).json?.ips).toEqual([{ address: '10.1.2.88/24', gateway: '10.1.2.1' }]);
    expect((await w.run('ADD', simple(), { id: 'b', args: 'IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.1.2.77' })).json?.ips).toEqual([
      { address: '10.1.2.77/24', gateway: '10.1.2.1' },
    ]);
    expect((await w.run('ADD', simple({ runtimeConfig: { ips: ['10.1.2.66/24'] } }), { id: 'c' })).json?.ips).toEqual([
      { address: '10.1.2.66/24', gateway: '10.1.2.1' },
    ]);
  });

  it('serves several requested IPs in range-set order and fails when some are left over', async () => {
    const w = world();
    const two = { ranges: [[{ subnet: '10.1.2.0/24' }], [{ subnet: '10.1.3.0/24' }]], subnet: undefined };
    const ok = await w.run('ADD', simple({ args: { cni: { ips: ['10.1.3.77', '10.1.2.88'] } } }, two));
    expect(ok.json?.ips).toEqual([
      { address: '10.1.2.88/24', gateway: '10.1.2.1' },
      { address: '10.1.3.77/24', gateway: '10.1.3.1' },
    ]);
    const bad = await w.run('ADD', simple({ args: { cni: { ips: ['10.1.2.50', '10.1.2.51'] } } }, two), { id: 'x' });
    expect(bad.json).toEqual({ code: 999, msg: 'failed to allocate all requested IPs: 10.1.2.51' });
    // everything taken for x was released again
    expect([...w.store()!.ipMap.values()].filter((v) => v.startsWith('x'))).toEqual([]);
  });

  it('releases earlier range sets when a later one is exhausted', async () => {
    const w = world();
    const ipam = { subnet: undefined, ranges: [[{ subnet: '10.1.2.0/24' }], [{ subnet: '10.9.0.0/30' }]] };
    expect((await w.run('ADD', simple({}, ipam), { id: 'a' })).code).toBe(0);
    const r = await w.run('ADD', simple({}, ipam), { id: 'b' });
    expect(r.json).toEqual({ code: 999, msg: 'failed to allocate for range 1: no IP addresses available in range set: 10.9.0.1-10.9.0.2' });
    expect(Object.fromEntries(w.store()!.ipMap)).toEqual({ '10.1.2.2': 'a\r\neth0', '10.9.0.2': 'a\r\neth0' });
  });

  it('reports a missing resolvConf like Go', async () => {
    const w = world();
    expect((await w.run('ADD', simple({}, { resolvConf: '/nonexist' }))).json).toEqual({ code: 999, msg: 'open /nonexist: no such file or directory' });
    expect(w.store()).toBeUndefined();
  });

  it('GC (1.1.0) releases attachments the runtime no longer lists, legacy entries by id', async () => {
    const w = world();
    const conf = (valid: unknown) => ({ ...simple(), cniVersion: '1.1.0', 'cni.dev/valid-attachments': valid });
    for (const id of ['keep', 'gone']) await w.run('ADD', conf([]), { id });
    await w.run('ADD', conf([]), { id: 'keep', ifname: 'eth1' });
    w.store()!.ipMap.set('10.1.2.50', 'legacy');
    w.store()!.ipMap.set('10.1.2.51', 'legacy-gone');
    expect((await w.run('GC', conf([{ containerID: 'keep', ifname: 'eth0' }, { containerID: 'legacy', ifname: 'eth0' }]))).code).toBe(0);
    expect(Object.fromEntries(w.store()!.ipMap)).toEqual({ '10.1.2.2': 'keep\r\neth0', '10.1.2.50': 'legacy' });
    expect((await w.run('GC', { ...simple(), cniVersion: '1.0.0' })).json).toEqual({ code: 1, msg: 'config version does not allow GC' });
  });

  it('parses valid attachments case-insensitively and rejects a wrong type', () => {
    expect(parseValidAttachments({ 'cni.dev/valid-attachments': [{ ContainerID: 'a', IFNAME: 'eth0' }] })).toEqual([{ containerId: 'a', ifname: 'eth0' }]);
    expect(parseValidAttachments({})).toEqual([]);
    expect(() => parseValidAttachments({ 'cni.dev/valid-attachments': 5 })).toThrow(/cannot unmarshal number/);
  });

  it('parses resolv.conf like dns.go', () => {
    expect(parseResolvConf('nameserver 9.9.9.9\n  # x\nsearch a\nsearch b c\ndomain d\n')).toEqual({ nameservers: ['9.9.9.9'], search: ['a', 'b', 'c'], domain: 'd' });
  });
});

describe('host-local garbage input (skel + config)', () => {
  it.each([
    ['', 6, 'error unmarshall network config: unexpected end of JSON input'],
    ['{"name":', 6, 'error unmarshall network config: unexpected end of JSON input'],
    ['{"cniVersion":"9.9.9","name":"n","ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}', 1, 'incompatible CNI versions'],
    ['{"cniVersion":"1.0.0","ipam":{}}', 7, 'missing network name'],
    ['{"cniVersion":"1.0.0","name":"../../etc","ipam":{}}', 7, 'invalid characters found in network name'],
  ])('%j → code %i', async (stdin, code, msg) => {
    const w = world();
    const r = await w.run('ADD', stdin);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code, msg });
    expect(w.stores.size).toBe(0);
  });

  it.each([
    [{ id: '../../etc' }, 4, 'invalid characters in containerID'],
    [{ id: 'a\0b' }, 4, 'invalid characters in containerID'],
    [{ ifname: 'x'.repeat(16) }, 4, 'interface name is too long'],
    [{ ifname: '..' }, 4, 'interface name is . or ..'],
    [{ ifname: 'a/b' }, 4, 'interface name contains / or : or whitespace characters'],
  ])('env %j → code %i', async (env, code, msg) => {
    const w = world();
    const r = await w.run('ADD', { cniVersion: '1.0.0', name: 'mynet', ipam: { type: 'host-local', subnet: '10.0.0.0/24', dataDir: '/d' } }, env);
    expect(r.json).toMatchObject({ code, msg });
    expect(w.stores.size).toBe(0);
  });
});
