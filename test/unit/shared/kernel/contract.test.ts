import { FakeKernel, FakeWorld } from '../../../../shared/kernel/fake/fake-kernel.js';
import { describeKernelContract } from './contract.js';

describeKernelContract('fake', () => {
  const world = new FakeWorld();
  world.addNetns('/scratch');
  return { kernel: new FakeKernel(world).inNetns('/scratch'), missingNetns: '/nowhere' };
});
