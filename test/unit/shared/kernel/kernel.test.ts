import { describe, expect, it } from 'vitest';
import { isExists, isNotFound, KernelError } from '../../../../shared/kernel/errors.js';
import { codeFromStderr } from '../../../../shared/kernel/iproute2/errno.js';
import { kernelErrorFrom } from '../../../../shared/kernel/iproute2/exec.js';
import { failedBatchLine } from '../../../../shared/kernel/iproute2/batch.js';
import { FakeKernel, FakeWorld } from '../../../../shared/kernel/fake/fake-kernel.js';
import { opLine, planBatch, sysctlPath } from '../../../../shared/kernel/iproute2/batch.js';
import { createKernel } from '../../../../shared/kernel/iproute2/kernel.js';
import type { Exec } from '../../../../shared/kernel/iproute2/exec.js';
import { FakeIptables } from '../../../../shared/kernel/fake/fake-iptables.js';

describe('KernelError classification', () => {
  it.each([
    ['Cannot find device "eth0"', 'ENODEV'],
    ['Device "nope" does not exist.', 'ENODEV'],
    ['RTNETLINK answers: No such process', 'ESRCH'],
    ['Error: ipv4: Address not found.', 'EADDRNOTAVAIL'],
    ['Error: ipv6: address not found.', 'EADDRNOTAVAIL'],
    ['RTNETLINK answers: File exists', 'EEXIST'],
    ['Error: ipv4: Address already assigned.', 'EEXIST'],
    ['iptables: Chain already exists.', 'EEXIST'],
    ['iptables: Bad rule (does a matching rule exist in that chain?).', 'ENOENT'],
    ["iptables v1.8.9 (nf_tables): Chain 'CNI-x' does not exist", 'ENOENT'],
    ['iptables: No chain/target/match by that name.', 'ENOENT'],
    ['nsenter: cannot open /var/run/netns/x: No such file or directory', 'ENOENT'],
    ['Error: No such file or directory\nlist table bridge nat', 'ENOENT'],
    ['RTNETLINK answers: Operation not permitted', 'EPERM'],
    ['Error: Nexthop has invalid gateway.\nCommand failed -:1', 'EINVAL'],
    ['internal:0:0-0: Error: Could not process rule: Device or resource busy', 'EBUSY'],
    ['RTNETLINK answers: Operation not supported', 'EOPNOTSUPP'],
    ['RTNETLINK answers: Network is unreachable', 'ENETUNREACH'],
    ['something new', 'UNKNOWN'],
  ] as const)('%s → %s', (stderr, code) => {
    expect(codeFromStderr(stderr)).toBe(code);
    const e = kernelErrorFrom(['ip'], 2, stderr);
    expect(e.code).toBe(code);
    expect(isNotFound(e)).toBe(['ENODEV', 'ESRCH', 'ENOENT', 'EADDRNOTAVAIL'].includes(code));
    expect(isExists(e)).toBe(code === 'EEXIST');
  });

  it('callers decide on the code, not on the words', () => {
    expect(isNotFound(new KernelError('gone', { code: 'ENODEV' }))).toBe(true);
    expect(isExists(new KernelError('Cannot find device', { code: 'EEXIST' }))).toBe(true);
    expect(isNotFound(new KernelError('File exists', { code: 'EPERM' }))).toBe(false);
  });

  it('non-kernel errors are neither', () => {
    expect(isNotFound(new Error('Cannot find device'))).toBe(false);
    expect(isExists('File exists')).toBe(false);
  });

  it('names the failed batch line', () => {
    const e = kernelErrorFrom(['ip', '-batch', '-'], 1, 'RTNETLINK answers: File exists\nCommand failed -:2\n', { input: 'link set lo up\nroute add 10.0.0.0/8 dev lo\n' });
    expect(e.line).toBe('route add 10.0.0.0/8 dev lo');
    expect(e.message).toBe('"route add 10.0.0.0/8 dev lo": File exists');
    expect(failedBatchLine('@@kernel-run 0\n@@kernel-run 1\nCommand failed -:1', [['a'], ['b', 'c']])).toBe('b');
    expect(failedBatchLine('@@kernel-run 0\nsh: 1: cannot create', [['sysctl x']])).toBe('sysctl x');
  });
});

describe('argv building', () => {
  it('veth peer goes straight into the netns path', () => {
    expect(opLine({ op: 'addVeth', name: 'veth1', peer: 'eth0', peerNetns: '/proc/1/ns/net', mtu: 1450, peerMac: '02:00:00:00:00:01' }).args.join(' ')).toBe(
      'link add veth1 mtu 1450 type veth peer name eth0 mtu 1450 address 02:00:00:00:00:01 netns /proc/1/ns/net',
    );
  });
  it('v6 default route is spelled ::/0; onlink and metrics', () => {
    expect(opLine({ op: 'replaceRoute', route: { dst: 'default', via: 'fd00::1', dev: 'eth0' } }).args.join(' ')).toBe('route replace ::/0 via fd00::1 dev eth0');
    expect(opLine({ op: 'replaceRoute', route: { dst: '10.1.0.0/16', via: '10.1.0.0', dev: 'flannel.1', onlink: true } }).args.join(' ')).toBe(
      'route replace 10.1.0.0/16 via 10.1.0.0 dev flannel.1 onlink',
    );
  });
  it('route types, prepend and vxlan creation are ip lines', () => {
    expect(opLine({ op: 'addRoute', route: { dst: '10.244.0.0/16', type: 'blackhole' } }).args.join(' ')).toBe('route add blackhole 10.244.0.0/16');
    expect(opLine({ op: 'prependRoute', route: { dst: '10.244.1.0/24', via: '10.244.1.1', dev: 'eth0' } }).args.join(' ')).toBe('route prepend 10.244.1.0/24 via 10.244.1.1 dev eth0');
    expect(opLine({ op: 'addVxlan', name: 'flannel.1', vni: 1, port: 8472, local: '10.0.0.1', dev: 'eth0', learning: false, mtu: 1450, mac: '02:00:00:00:00:01' }).args.join(' ')).toBe(
      'link add flannel.1 mtu 1450 address 02:00:00:00:00:01 type vxlan id 1 local 10.0.0.1 dev eth0 dstport 8472 nolearning',
    );
  });
  it('listRoutes({type}) filters by type and names it in what it returns', async () => {
    const calls: string[] = [];
    const exec: Exec = async (argv) => {
      calls.push(argv.slice(1).join(' '));
      return argv.includes('-4') ? '[{"dst":"10.244.0.0/16","flags":[]}]' : '[]';
    };
    expect(await createKernel({ exec }).listRoutes({ type: 'blackhole' })).toEqual([{ family: 4, dst: '10.244.0.0/16', type: 'blackhole' }]);
    expect(calls).toEqual(['-json -4 route show type blackhole', '-json -6 route show type blackhole']);
  });
  it('groups ops into runs by tool, keeping order', () => {
    const runs = planBatch([
      { op: 'sysctl', key: 'net/ipv4/conf/eth0/arp_notify', value: '1' },
      { op: 'addAddr', dev: 'eth0', cidr: '10.0.0.2/24' },
      { op: 'setLinkUp', dev: 'eth0' },
      { op: 'appendFdb', dev: 'vx', mac: '00:00:00:00:00:00', dst: '1.2.3.4' },
      { op: 'replaceNeigh', dev: 'vx', ip: '10.0.0.9', mac: '02:00:00:00:00:09' },
    ]);
    expect(runs.map((r) => [r.tool, r.lines.length])).toEqual([['sysctl', 1], ['ip', 2], ['bridge', 1], ['ip', 1]]);
  });
  it('rejects arguments that would break a batch line', () => {
    expect(() => planBatch([{ op: 'setLinkUp', dev: 'eth0\nlink del lo' }])).toThrow(TypeError);
    expect(() => sysctlPath('net/ipv4/../../etc')).toThrow(TypeError);
    expect(sysctlPath('net.ipv4.ip_forward')).toBe('/proc/sys/net/ipv4/ip_forward');
    expect(sysctlPath('net/ipv6/conf/cni0.100/accept_ra')).toBe('/proc/sys/net/ipv6/conf/cni0.100/accept_ra');
  });
  it('a batch is one exec; in a netns it runs under nsenter; mixed tools go through one sh', async () => {
    const calls: Array<{ argv: readonly string[]; input?: string }> = [];
    const exec: Exec = async (argv, input) => {
      calls.push({ argv, ...(input !== undefined ? { input } : {}) });
      return '';
    };
    const k = createKernel({ exec }).inNetns('/proc/42/ns/net');
    await k.batch([{ op: 'addAddr', dev: 'eth0', cidr: '10.0.0.2/24' }, { op: 'setLinkUp', dev: 'eth0' }]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.argv.slice(0, 2)).toEqual([expect.stringMatching(/nsenter$/), '--net=/proc/42/ns/net']);
    expect(calls[0]!.argv.slice(3)).toEqual(['-batch', '-']);
    expect(calls[0]!.input).toBe('addr add 10.0.0.2/24 brd + dev eth0\nlink set dev eth0 up\n');
    await k.batch([{ op: 'sysctl', key: 'net/ipv6/conf/eth0/accept_dad', value: '0' }, { op: 'addAddr', dev: 'eth0', cidr: 'fd00::2/64' }, { op: 'appendFdb', dev: 'vx', mac: '00:00:00:00:00:00', dst: '1.2.3.4' }]);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.argv.at(-2)).toMatch(/sh$/);
    expect(calls[1]!.input).toContain("printf '%s' '0' > '/proc/sys/net/ipv6/conf/eth0/accept_dad'");
    expect(calls[1]!.input).toContain('addr add fd00::2/64 dev eth0');
    expect(calls[1]!.input).toContain('fdb append 00:00:00:00:00:00 dev vx dst 1.2.3.4 self permanent');
  });
});

describe('FakeKernel', () => {
  it('models a bridge ADD: veth into a pod netns, master, addresses, routes, sysctls', async () => {
    const world = new FakeWorld();
    world.addNetns('/pod');
    const k = new FakeKernel(world);
    const br = await k.ensureBridge('cni0', { mtu: 1450 });
    expect(br).toMatchObject({ kind: 'bridge', up: true, mtu: 1450 });
    await k.batch([{ op: 'addVeth', name: 'veth1', peer: 'eth0', peerNetns: '/pod' }, { op: 'setLink', dev: 'veth1', master: 'cni0', up: true }, { op: 'sysctl', key: 'net/ipv6/conf/veth1/accept_ra', value: '0' }]);
    const pod = k.inNetns('/pod');
    await pod.batch([{ op: 'addAddr', dev: 'eth0', cidr: '10.244.1.2/24' }, { op: 'setLinkUp', dev: 'eth0' }, { op: 'addRoute', route: { dst: 'default', via: '10.244.1.1', dev: 'eth0' } }]);
    expect((await k.getLink('veth1'))?.operstate).toBe('UP');
    expect(await pod.listAddrs({ dev: 'eth0' })).toEqual([{ dev: 'eth0', family: 4, cidr: '10.244.1.2/24', scope: 'global' }]);
    expect((await pod.listRoutes()).map((r) => r.dst)).toEqual(['10.244.1.0/24', 'default']);
    expect(await pod.routeGet('8.8.8.8')).toMatchObject({ via: '10.244.1.1', dev: 'eth0', prefsrc: '10.244.1.2' });
    expect(isExists(await pod.addRoute({ dst: 'default', via: '10.244.1.1', dev: 'eth0' }).catch((e: unknown) => e))).toBe(true);
    expect(await k.readSysctl('net.ipv6.conf.veth1.accept_ra')).toBe('0');
    await pod.deleteLink('eth0');
    expect(await k.getLink('veth1')).toBeUndefined();
    world.deleteNetns('/pod');
    expect(isNotFound(await pod.deleteLink('eth0').catch((e: unknown) => e))).toBe(true);
  });

  it('injected failures and exec counting', async () => {
    const k = new FakeKernel();
    k.world.failOn('ensureAddr');
    await expect(k.ensureAddr('lo', '10.0.0.1/8')).rejects.toBeInstanceOf(KernelError);
    const before = k.world.execs;
    await k.ensureAddr('lo', '10.0.0.1/8');
    await k.ensureAddr('lo', '10.0.0.1/8');
    expect(k.world.execs - before).toBe(2);
  });

  it('blackhole routes: strict add is refused while another route holds the dst; listRoutes({type})', async () => {
    const k = new FakeKernel();
    await k.batch([{ op: 'addBridge', name: 'cni0' }, { op: 'addAddr', dev: 'cni0', cidr: '10.244.1.1/24' }]);
    const err = await k.batch([{ op: 'addRoute', route: { dst: '10.244.1.0/24', type: 'blackhole' } }]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EEXIST', index: 0, op: { op: 'addRoute' } });
    await k.batch([{ op: 'addRoute', route: { dst: '10.244.2.0/24', type: 'blackhole' } }]);
    expect(await k.listRoutes({ type: 'blackhole' })).toEqual([{ family: 4, dst: '10.244.2.0/24', type: 'blackhole' }]);
  });

  it('prependRoute adds beside another route to the same dst; an identical one is EEXIST', async () => {
    const k = new FakeKernel();
    await k.batch([{ op: 'addBridge', name: 'cni0' }, { op: 'addAddr', dev: 'cni0', cidr: '10.244.1.1/24' }]);
    const route = { dst: '10.244.1.0/24', via: '10.244.1.1', dev: 'cni0' };
    expect(await k.batch([{ op: 'addRoute', route }]).catch((e: unknown) => e)).toMatchObject({ code: 'EEXIST' });
    await k.batch([{ op: 'prependRoute', route }]);
    expect((await k.listRoutes({ dev: 'cni0' })).filter((r) => r.dst === '10.244.1.0/24')).toHaveLength(2);
    expect(await k.batch([{ op: 'prependRoute', route }]).catch((e: unknown) => e)).toMatchObject({ code: 'EEXIST' });
  });

  it('addVxlan creates strictly', async () => {
    const k = new FakeKernel();
    const spec = { vni: 1, port: 8472, local: '10.0.0.1', learning: false, mac: '02:AA:00:00:00:01' };
    await k.batch([{ op: 'addVxlan', name: 'flannel.1', ...spec }]);
    expect(await k.getLink('flannel.1')).toMatchObject({ kind: 'vxlan', mac: '02:aa:00:00:00:01', vxlan: { vni: 1, port: 8472, local: '10.0.0.1', learning: false, gbp: false } });
    expect(await k.batch([{ op: 'addVxlan', name: 'flannel.1', ...spec }]).catch((e: unknown) => e)).toMatchObject({ code: 'EEXIST' });
  });

  it('fdb append twice does not duplicate; neigh replace overwrites', async () => {
    const k = new FakeKernel();
    await k.ensureVxlan('vx0', { vni: 1, port: 8472, local: '10.0.0.1', learning: false });
    const ops = [
      { op: 'appendFdb' as const, dev: 'vx0', mac: 'AA:bb:cc:dd:ee:ff', dst: '10.0.0.2' },
      { op: 'replaceNeigh' as const, dev: 'vx0', ip: '10.1.0.0', mac: 'aa:bb:cc:dd:ee:ff' },
    ];
    await k.batch(ops);
    await k.batch(ops);
    expect(await k.listFdb('vx0')).toHaveLength(1);
    expect(await k.listNeighs('vx0')).toEqual([{ dev: 'vx0', ip: '10.1.0.0', mac: 'aa:bb:cc:dd:ee:ff', permanent: true }]);
  });
});

describe('FakeIptables', () => {
  it('ensureRule is unique, deletes tolerate missing with missingOk', async () => {
    const ipt = new FakeIptables();
    await ipt.ensureChain('nat', 'CNI-x');
    await ipt.ensureRule('nat', 'CNI-x', ['-j', 'ACCEPT']);
    await ipt.ensureRule('nat', 'CNI-x', ['-j', 'ACCEPT']);
    expect(await ipt.listRules('nat', 'CNI-x')).toEqual(['-N CNI-x', '-A CNI-x -j ACCEPT']);
    await ipt.deleteChain('nat', 'CNI-x');
    await ipt.deleteChain('nat', 'CNI-x', { missingOk: true });
    const err = await ipt.deleteRule('nat', 'CNI-x', ['-j', 'ACCEPT']).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ENOENT' });
    expect(isNotFound(err)).toBe(true);
    ipt.failNextRestore('line 2 failed', 'EPERM');
    expect(await ipt.restore('nat', [{ action: '-A', chain: 'POSTROUTING', rule: ['-j', 'ACCEPT'] }]).catch((e: unknown) => e)).toMatchObject({ code: 'EPERM' });
  });
});
