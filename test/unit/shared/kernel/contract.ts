// The Kernel contract, stated once and run against every adapter: the fake (contract.test.ts, here)
// and iproute2 in a scratch network namespace (test/integration/kernel/contract.test.ts). A new adapter
// (e.g. shared/kernel/netlink/) adds one more caller. Only what the seam promises is asserted: state
// read back through the Kernel, and the KernelError's code/op/index, never a message or an argv.
import { describe, expect, it } from 'vitest';
import { isExists, isNotFound, KernelError } from '../../../../shared/kernel/errors.js';
import type { Kernel, KernelOp } from '../../../../shared/kernel/kernel.js';

/** A kernel in a fresh namespace that holds only `lo`; `missingNetns` a path where no namespace is. */
export interface ContractSubject {
  kernel: Kernel;
  missingNetns: string;
  done?(): void;
}

const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

export function describeKernelContract(adapter: string, make: () => ContractSubject): void {
  describe(`Kernel contract: ${adapter}`, () => {
    const withKernel = (f: (k: Kernel, s: ContractSubject) => Promise<void>) => async () => {
      const s = make();
      try {
        await f(s.kernel, s);
      } finally {
        s.done?.();
      }
    };

    it(
      'batch applies ops in order and stops at the first failure, naming its op and index',
      withKernel(async (k) => {
        const bad: KernelOp = { op: 'setLinkUp', dev: 'nope0' };
        const ops: KernelOp[] = [{ op: 'addBridge', name: 'ct0' }, { op: 'replaceAddr', dev: 'ct0', cidr: '10.99.0.1/24' }, bad, { op: 'setLinkUp', dev: 'ct0' }];
        const err = await failure(k.batch(ops));
        expect(err).toBeInstanceOf(KernelError);
        expect(err).toMatchObject({ op: bad, index: 2, code: 'ENODEV' });
        expect(isNotFound(err)).toBe(true);
        const l = await k.getLink('ct0');
        expect(l).toMatchObject({ kind: 'bridge', up: false }); // before the failure: applied; after: not
        expect((await k.listAddrs({ dev: 'ct0', family: 4 })).map((a) => a.cidr)).toEqual(['10.99.0.1/24']);
      }),
    );

    it(
      'strict creates fail with EEXIST; replaces are idempotent',
      withKernel(async (k) => {
        await k.batch([{ op: 'addBridge', name: 'ct0' }, { op: 'setLinkUp', dev: 'ct0' }]);
        expect(isExists(await failure(k.batch([{ op: 'addBridge', name: 'ct0' }])))).toBe(true);
        const addr: KernelOp = { op: 'replaceAddr', dev: 'ct0', cidr: '10.99.0.1/24' };
        await k.batch([addr, addr]);
        expect(await failure(k.batch([{ op: 'addAddr', dev: 'ct0', cidr: '10.99.0.1/24' }]))).toMatchObject({ code: 'EEXIST', index: 0 });
        const route = { dst: '10.98.0.0/16', via: '10.99.0.2', dev: 'ct0' };
        await k.batch([{ op: 'replaceRoute', route }, { op: 'replaceRoute', route }]);
        expect(isExists(await failure(k.batch([{ op: 'addRoute', route }])))).toBe(true);
        expect((await k.listRoutes({ family: 4, dev: 'ct0' })).filter((r) => r.dst === '10.98.0.0/16')).toMatchObject([{ via: '10.99.0.2', dev: 'ct0' }]);
      }),
    );

    it(
      'prependRoute adds beside another route to the same dst; an identical one is EEXIST',
      withKernel(async (k) => {
        await k.batch([{ op: 'addBridge', name: 'ct0' }, { op: 'replaceAddr', dev: 'ct0', cidr: '10.99.0.1/24' }, { op: 'setLinkUp', dev: 'ct0' }]);
        const route = { dst: '10.99.0.0/24', via: '10.99.0.1', dev: 'ct0' }; // the connected subnet, via the gateway
        expect(isExists(await failure(k.batch([{ op: 'addRoute', route }])))).toBe(true);
        await k.batch([{ op: 'prependRoute', route }]);
        expect((await k.listRoutes({ family: 4, dev: 'ct0' })).filter((r) => r.dst === '10.99.0.0/24')).toHaveLength(2);
        expect(isExists(await failure(k.batch([{ op: 'prependRoute', route }])))).toBe(true);
      }),
    );

    it(
      'blackhole routes: typed, listed by type, refused while another route holds the dst',
      withKernel(async (k) => {
        await k.batch([{ op: 'addBridge', name: 'ct0' }, { op: 'replaceAddr', dev: 'ct0', cidr: '10.99.0.1/24' }, { op: 'setLinkUp', dev: 'ct0' }]);
        await k.batch([{ op: 'addRoute', route: { dst: '10.97.0.0/16', type: 'blackhole' } }]);
        expect(isExists(await failure(k.batch([{ op: 'addRoute', route: { dst: '10.99.0.0/24', type: 'blackhole' } }])))).toBe(true);
        expect(await k.listRoutes({ family: 4, type: 'blackhole' })).toEqual([{ family: 4, dst: '10.97.0.0/16', type: 'blackhole' }]);
      }),
    );

    it(
      'addVxlan is a strict create of the device asked for',
      withKernel(async (k) => {
        const spec = { vni: 7, port: 8472, local: '', learning: false, mtu: 1400, mac: '02:00:00:00:07:01' };
        await k.batch([{ op: 'addVxlan', name: 'ctvx0', ...spec }]);
        expect(await k.getLink('ctvx0')).toMatchObject({ kind: 'vxlan', mtu: 1400, mac: '02:00:00:00:07:01', vxlan: { vni: 7, port: 8472, learning: false, gbp: false } });
        expect(isExists(await failure(k.batch([{ op: 'addVxlan', name: 'ctvx0', ...spec }])))).toBe(true);
      }),
    );

    it(
      'missing objects: reads give undefined, deletes fail with a not-found code unless missingOk',
      withKernel(async (k, s) => {
        expect(await k.getLink('nope0')).toBeUndefined();
        expect(isNotFound(await failure(k.deleteLink('nope0')))).toBe(true);
        await k.deleteLink('nope0', { missingOk: true });
        await k.batch([{ op: 'addBridge', name: 'ct0' }]);
        expect(isNotFound(await failure(k.deleteAddr('ct0', '10.99.0.9/24')))).toBe(true);
        expect(isNotFound(await failure(k.batch([{ op: 'deleteRoute', route: { dst: '10.96.0.0/16', dev: 'ct0' } }])))).toBe(true);
        const gone = k.inNetns(s.missingNetns);
        expect(isNotFound(await failure(gone.deleteLink('lo')))).toBe(true);
        expect(await failure(gone.getLink('lo'))).toMatchObject({ code: 'ENOENT' }); // the namespace, not the link, is missing
      }),
    );

    it(
      'an optional sysctl never fails the batch',
      withKernel(async (k) => {
        await k.batch([{ op: 'sysctl', key: 'net/ipv6/conf/nope0/accept_ra', value: '0', optional: true }, { op: 'addBridge', name: 'ct0' }]);
        expect(await k.getLink('ct0')).toMatchObject({ kind: 'bridge' });
      }),
    );
  });
}
