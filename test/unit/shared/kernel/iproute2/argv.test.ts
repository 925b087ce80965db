// Ops as iproute2 batch lines and argv (the adapter's own business; callers never see them).
import { describe, expect, it } from 'vitest';
import { opLine, planBatch, sysctlPath } from '../../../../../shared/kernel/iproute2/batch.js';
import { createKernel } from '../../../../../shared/kernel/iproute2/kernel.js';
import type { Exec } from '../../../../../shared/kernel/iproute2/exec.js';

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
