// The Kernel contract (test/unit/shared/kernel/contract.ts) against the netlink adapter, each case in a
// scratch network namespace. Needs the native shim (dist/bin/flannel.node, built by `npm run build`).
import { afterAll, describe } from 'vitest';
import { createNetlinkKernel } from '../../../shared/kernel/netlink/kernel.js';
import { nativeAddon } from '../../../shared/native/load.js';
import { canUseNetns, cleanupNetns, createNetns } from '../../helpers/netns.js';
import { describeKernelContract } from '../../unit/shared/kernel/contract.js';

describe.skipIf(!canUseNetns || nativeAddon() === undefined)('netlink', () => {
  afterAll(cleanupNetns);
  describeKernelContract('netlink', () => {
    const ns = createNetns('nlc');
    return { kernel: createNetlinkKernel().inNetns(ns.path), missingNetns: `/var/run/netns/ftest-${process.pid}-gone`, done: () => ns.delete() };
  });
});
