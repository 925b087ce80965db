// createKernel's choice of adapter: netlink when the shim loads, else iproute2; FLANNEL_KERNEL forces
// one, and forcing netlink without the shim is an error, never a silent fallback.
import { afterEach, describe, expect, it } from 'vitest';
import { createKernel, kernelBackend } from '../../../../shared/kernel/create.js';

const saved = { native: process.env.FLANNEL_NATIVE, kernel: process.env.FLANNEL_KERNEL };
afterEach(() => {
  for (const [k, v] of [['FLANNEL_NATIVE', saved.native], ['FLANNEL_KERNEL', saved.kernel]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('kernelBackend', () => {
  it('FLANNEL_KERNEL=iproute2 forces iproute2', () => {
    expect(kernelBackend({ FLANNEL_KERNEL: 'iproute2' })).toEqual({ name: 'iproute2', reason: 'FLANNEL_KERNEL=iproute2' });
  });

  it('refuses an unknown FLANNEL_KERNEL', () => {
    expect(() => kernelBackend({ FLANNEL_KERNEL: 'ebpf' })).toThrow('FLANNEL_KERNEL=ebpf: expected "netlink" or "iproute2"');
  });

  it('without the shim: iproute2, saying why; netlink forced is an error', () => {
    process.env.FLANNEL_NATIVE = 'off';
    expect(kernelBackend({})).toEqual({ name: 'iproute2', reason: 'native shim not available (disabled by FLANNEL_NATIVE=off)' });
    expect(() => kernelBackend({ FLANNEL_KERNEL: 'netlink' })).toThrow(/FLANNEL_KERNEL=netlink, but the native shim flannel.node is not available: disabled by FLANNEL_NATIVE=off/);
    expect(createKernel()).toHaveProperty('stats'); // the iproute2 handle (it counts its execs)
  });
});
