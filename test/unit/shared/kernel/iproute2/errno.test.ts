// The iproute2 adapter's reading of stderr: each wording → the errno code callers decide on.
import { describe, expect, it } from 'vitest';
import { isExists, isNotFound } from '../../../../../shared/kernel/errors.js';
import { codeFromStderr } from '../../../../../shared/kernel/iproute2/errno.js';
import { kernelErrorFrom } from '../../../../../shared/kernel/iproute2/exec.js';
import { failedBatchLine } from '../../../../../shared/kernel/iproute2/batch.js';

describe('stderr → code', () => {
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

  it('names the failed batch line', () => {
    const e = kernelErrorFrom(['ip', '-batch', '-'], 1, 'RTNETLINK answers: File exists\nCommand failed -:2\n', { input: 'link set lo up\nroute add 10.0.0.0/8 dev lo\n' });
    expect(e.line).toBe('route add 10.0.0.0/8 dev lo');
    expect(e.message).toBe('"route add 10.0.0.0/8 dev lo": File exists');
    expect(failedBatchLine('@@kernel-run 0\n@@kernel-run 1\nCommand failed -:1', [['a'], ['b', 'c']])).toBe('b');
    expect(failedBatchLine('@@kernel-run 0\nsh: 1: cannot create', [['sysctl x']])).toBe('sysctl x');
  });
});
