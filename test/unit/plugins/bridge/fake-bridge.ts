// The bridge plugin's world for unit tests: a FakeKernel with one pod netns, fake iptables/nftables,
// a recording IPAM that returns `ipamResult`, deterministic randomness, and an args() builder whose
// config starts from `base`.
import type { BridgeDeps } from '../../../../plugins/bridge/bridge.js';
import { NetnsNotExistError } from '../../../../shared/ns/netns.js';
import type { CmdArgs, Result } from '../../../../shared/cni/types.js';
import { FakeKernel, FakeWorld } from '../../../../shared/kernel/fake/fake-kernel.js';
import { FakeIptables } from '../../../../shared/kernel/fake/fake-iptables.js';
import { FakeNft } from '../../../../shared/kernel/fake/fake-nft.js';

export const POD = '/var/run/netns/pod1';

export function fakeBridge(
  ipamResult: Partial<Result> = { ips: [{ address: '10.1.2.2/24', gateway: '10.1.2.1' }] },
  base: Record<string, unknown> = {},
) {
  const world = new FakeWorld();
  world.addNetns(POD);
  const kernel = new FakeKernel(world);
  const ipt4 = new FakeIptables(4);
  const ipt6 = new FakeIptables(6);
  const nft = new FakeNft();
  const calls: string[] = [];
  const logs: string[] = [];
  let seq = 0;
  const deps: BridgeDeps = {
    kernel,
    iptables: (f) => (f === 4 ? ipt4 : ipt6),
    nft,
    ipam: {
      add: async (type) => {
        calls.push(`add ${type}`);
        return { cniVersion: '1.0.0', ...structuredClone(ipamResult) };
      },
      del: async (type) => void calls.push(`del ${type}`),
      check: async (type) => {
        calls.push(`check ${type}`);
        if (type === '') throw new Error('no plugin name provided');
      },
      status: async (type) => void calls.push(`status ${type}`),
      gc: async (type) => void calls.push(`gc ${type}`),
    },
    openNetns: (p) => {
      if (!world.namespaces.has(p)) throw new NetnsNotExistError(`failed to Statfs "${p}": no such file or directory`);
    },
    sleep: async () => {},
    random: (n) => Buffer.alloc(n, ++seq),
    log: (m) => void logs.push(m),
  };
  const args = (conf: Record<string, unknown>, o: Partial<CmdArgs> = {}): CmdArgs => ({
    containerId: 'c1',
    netns: POD,
    ifName: 'eth0',
    args: '',
    path: '/opt/cni/bin',
    netnsOverride: '',
    stdinData: Buffer.from(JSON.stringify({ cniVersion: '1.0.0', name: 'net', type: 'bridge', ...base, ...conf })),
    ...o,
  });
  return { world, kernel, deps, calls, logs, args, ipt4, ipt6, nft };
}
