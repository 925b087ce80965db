// The iproute2 adapter's cost: how many execs a call spends (`stats.execs`), with an injected Exec that
// records argv and stdin and runs nothing.
import { describe, expect, it } from 'vitest';
import type { Exec } from '../../../../../shared/kernel/iproute2/exec.js';
import { createKernel } from '../../../../../shared/kernel/iproute2/kernel.js';
import type { KernelOp } from '../../../../../shared/kernel/kernel.js';

function recorder(out: (argv: readonly string[]) => string = () => '') {
  const calls: Array<{ argv: readonly string[]; input?: string }> = [];
  const exec: Exec = async (argv, input) => {
    calls.push({ argv, ...(input !== undefined ? { input } : {}) });
    return out(argv);
  };
  return { calls, exec };
}

const ipOps: KernelOp[] = [
  { op: 'addBridge', name: 'cni0', mtu: 1450 },
  { op: 'addVeth', name: 'veth1', peer: 'eth0', peerNetns: '/proc/1/ns/net', mtu: 1450 },
  { op: 'setLink', dev: 'veth1', master: 'cni0', up: true },
  { op: 'replaceRoute', route: { dst: '10.244.0.0/16', via: '10.244.1.1', dev: 'cni0' } },
];

describe('iproute2 batch: execs per call', () => {
  it('a batch of ip ops is one `ip -batch -` exec', async () => {
    const r = recorder();
    const k = createKernel({ exec: r.exec });
    await k.batch(ipOps);
    expect(k.stats.execs).toBe(1);
    expect(r.calls[0]!.argv.slice(1)).toEqual(['-batch', '-']);
    expect(r.calls[0]!.input!.split('\n')).toHaveLength(ipOps.length + 1);
  });

  it('ip, bridge and sysctl ops mixed are one `sh -s` exec; in a netns too (nsenter around it)', async () => {
    const r = recorder();
    const k = createKernel({ exec: r.exec });
    const pod = k.inNetns('/proc/42/ns/net');
    await pod.batch([...ipOps, { op: 'appendFdb', dev: 'vx', mac: '00:00:00:00:00:00', dst: '1.2.3.4' }, { op: 'sysctl', key: 'net/ipv4/conf/eth0/arp_notify', value: '1' }]);
    expect(k.stats.execs).toBe(1); // the netns view shares its parent's stats
    expect(r.calls[0]!.argv.slice(-2)).toEqual([expect.stringMatching(/sh$/), '-s']);
    expect(r.calls[0]!.argv[1]).toBe('--net=/proc/42/ns/net');
  });

  it('sysctls in the own namespace are file writes: no exec (an optional one may fail)', async () => {
    const r = recorder();
    const k = createKernel({ exec: r.exec });
    await k.batch([{ op: 'sysctl', key: 'net/ipv6/conf/ftest-none-0/accept_ra', value: '0', optional: true }]);
    expect(k.stats.execs).toBe(0);
  });

  it('inspect with ip ops writes and reads in one exec; an empty batch costs nothing', async () => {
    const r = recorder(() => '[]\n');
    const k = createKernel({ exec: r.exec });
    await k.inspect(['cni0', 'veth1'], ipOps);
    expect(k.stats.execs).toBe(1);
    await k.batch([]);
    expect(k.stats.execs).toBe(1);
  });

  it('a failed batch names the op and its index from "Command failed -:N"', async () => {
    const exec: Exec = async (argv, input) => {
      const { kernelErrorFrom } = await import('../../../../../shared/kernel/iproute2/exec.js');
      throw kernelErrorFrom(argv, 1, 'RTNETLINK answers: File exists\nCommand failed -:3\n', { ...(input !== undefined ? { input } : {}) });
    };
    const err = await createKernel({ exec }).batch(ipOps).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EEXIST', index: 2, op: ipOps[2], line: 'link set dev veth1 master cni0 up' });
  });
});
