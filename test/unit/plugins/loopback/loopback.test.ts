import { describe, expect, it } from 'vitest';
import { SUPPORTED_VERSIONS } from '../../../../shared/cni/version.js';
import { FakeKernel } from '../../../../shared/kernel/fake/fake-kernel.js';
import { runLoopback } from '../../../../plugins/loopback/world.js';
import { StatfsError } from '../../../../shared/ns/netns.js';

const NS = '/var/run/netns/pod';
const NSFS_MAGIC = 0x6e736673;

function world(o: { addrs?: string[] } = {}) {
  const kernel = new FakeKernel();
  const ns = kernel.world.addNetns(NS);
  for (const cidr of o.addrs ?? ['127.0.0.1/8', '::1/128']) ns.addrs.push({ dev: 'lo', family: cidr.includes(':') ? 6 : 4, cidr, scope: 'host' });
  const statfsType = (path: string): number => {
    if (path === NS) return NSFS_MAGIC;
    if (path === '/tmp') return 0xef53;
    throw new StatfsError(true, 'no such file or directory');
  };
  const run = async (cmd: string, conf: unknown, netns = NS) => {
    let stdout = '';
    const io = {
      env: { CNI_COMMAND: cmd, CNI_CONTAINERID: 'c1', CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' },
      readStdin: () => Buffer.from(typeof conf === 'string' ? conf : JSON.stringify(conf)),
      writeStdout: (t: string) => void (stdout += t),
      writeStderr: () => {},
    };
    const code = await runLoopback(io, { kernel, statfsType });
    return { code, stdout, json: stdout === '' ? undefined : (JSON.parse(stdout) as Record<string, unknown>) };
  };
  return { kernel, ns, run, lo: () => ns.links.get('lo')! };
}

const conf = (cniVersion: string, extra: Record<string, unknown> = {}) => ({ cniVersion, name: 'cni-loopback', type: 'loopback', ...extra });
const LO_IFACE = { name: 'lo', mac: '00:00:00:00:00:00', sandbox: NS };

describe('loopback over every spec version (loopback_test.go)', () => {
  it.each(SUPPORTED_VERSIONS)('ADD brings lo up, DEL brings it down: %s', async (v) => {
    const w = world();
    expect(w.lo().up).toBe(false);
    const add = await w.run('ADD', conf(v));
    expect(add.code).toBe(0);
    expect(w.lo().up).toBe(true);
    // Go prints the 1.0-shaped result with the config's version, unconverted: no ips[].version even at 0.3.x.
    const ips = [
      { interface: 0, address: '127.0.0.1/8' },
      { interface: 0, address: '::1/128' },
    ];
    if (v === '1.1.0') expect(add.json).toEqual({ cniVersion: v, interfaces: [LO_IFACE], ips });
    else expect(add.json).toEqual({ cniVersion: v, interfaces: [LO_IFACE], ips, dns: {} });
    expect(add.stdout).not.toContain('"version"');
    if (v !== '1.1.0') expect(add.stdout.indexOf('"name"')).toBeLessThan(add.stdout.indexOf('"mac"')); // struct field order

    const check = await w.run('CHECK', conf(v));
    expect(check.code).toBe(['0.1.0', '0.2.0', '0.3.0', '0.3.1'].includes(v) ? 1 : 0);

    expect(await w.run('DEL', conf(v))).toMatchObject({ code: 0, stdout: '' });
    expect(w.lo().up).toBe(false);
  });

  it('converts to the 0.1.0 ip4/ip6 shape when cniVersion is absent', async () => {
    const w = world();
    const add = await w.run('ADD', { name: 'lo', type: 'loopback' });
    expect(add.json).toEqual({ cniVersion: '0.1.0', ip4: { ip: '127.0.0.1/8' }, ip6: { ip: '::1/128' }, dns: {} });
  });

  it('omits a family lo has no address of', async () => {
    const w = world({ addrs: ['127.0.0.1/8'] });
    expect((await w.run('ADD', conf('1.0.0'))).json?.ips).toEqual([{ interface: 0, address: '127.0.0.1/8' }]);
  });

  it('passes a prevResult through at the config version', async () => {
    const w = world();
    const prev = { cniVersion: '0.3.0', ips: [{ version: '4', address: '10.0.0.2/24' }] };
    const add = await w.run('ADD', conf('0.3.1', { prevResult: prev }));
    expect(add.json).toEqual({ cniVersion: '0.3.1', ips: [{ version: '4', address: '10.0.0.2/24' }], dns: {} });
    expect(w.lo().up).toBe(true);
  });
});

describe('loopback errors', () => {
  it('refuses a non-loopback address on lo', async () => {
    const w = world({ addrs: ['127.0.0.1/8', '10.9.9.9/32'] });
    expect((await w.run('ADD', conf('0.4.0'))).json).toEqual({ code: 999, msg: 'loopback interface found with non-loopback address "10.9.9.9"' });
  });

  it('CHECK fails when lo is down', async () => {
    const w = world();
    expect((await w.run('CHECK', conf('0.4.0'))).json).toEqual({ code: 999, msg: 'loopback interface is down' });
  });

  it('DEL succeeds with an empty or vanished netns, fails on a non-netns path', async () => {
    const w = world();
    expect((await w.run('DEL', conf('0.4.0'), '')).code).toBe(0);
    expect((await w.run('DEL', conf('0.4.0'), '/var/run/netns/gone')).code).toBe(0);
    expect((await w.run('DEL', conf('0.4.0'), '/tmp')).json).toEqual({ code: 999, msg: 'unknown FS magic on "/tmp": ef53' });
  });

  it.each(['ADD', 'CHECK'])('%s names a missing netns like Go', async (cmd) => {
    const w = world();
    expect((await w.run(cmd, conf('0.4.0'), '/var/run/netns/gone')).json).toEqual({
      code: 999,
      msg: 'failed to Statfs "/var/run/netns/gone": no such file or directory',
    });
    expect(w.kernel.world.calls).toBe(0);
  });

  it('rejects a prevResult that is not an object', async () => {
    const w = world();
    expect((await w.run('ADD', conf('0.4.0', { prevResult: 5 }))).json).toEqual({
      code: 999,
      msg: 'failed to parse network config: json: cannot unmarshal number into Go struct field NetConf.prevResult of type map[string]interface {}',
    });
    expect(w.lo().up).toBe(false);
  });

  it.each([
    ['', 6],
    ['{', 6],
    ['{"cniVersion":"9.9.9","name":"lo"}', 1],
    ['{"cniVersion":"1.0.0"}', 7],
  ])('stdin %j → code %i, lo untouched', async (stdin, code) => {
    const w = world();
    expect((await w.run('ADD', stdin)).json).toMatchObject({ code });
    expect(w.kernel.world.calls).toBe(0);
  });

  it('surfaces a kernel failure as 999', async () => {
    const w = world();
    w.kernel.world.failOn('setLinkUp');
    const r = await w.run('ADD', conf('1.0.0'));
    expect(r.json).toMatchObject({ code: 999 });
    expect(String(r.json?.msg)).toContain('Operation not permitted');
  });
});
