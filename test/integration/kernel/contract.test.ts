// The Kernel contract (test/unit/shared/kernel/contract.ts) against the iproute2 adapter, each case in
// a scratch network namespace.
import { afterAll, describe } from 'vitest';
import { createKernel } from '../../../shared/kernel/iproute2/kernel.js';
import { canUseNetns, cleanupNetns, createNetns } from '../../helpers/netns.js';
import { describeKernelContract } from '../../unit/shared/kernel/contract.js';

describe.skipIf(!canUseNetns)('iproute2', () => {
  afterAll(cleanupNetns);
  describeKernelContract('iproute2', () => {
    const ns = createNetns('kc');
    return { kernel: createKernel().inNetns(ns.path), missingNetns: `/var/run/netns/ftest-${process.pid}-gone`, done: () => ns.delete() };
  });
});
