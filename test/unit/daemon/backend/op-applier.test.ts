// The resumable op applier: every op tried, failures reported per op, one more batch per failure.
import { describe, expect, it } from 'vitest';
import type { KernelOp } from '../../../../shared/kernel/kernel.js';
import { KernelError } from '../../../../shared/kernel/errors.js';
import { applyResumable, removeBestEffort } from '../../../../daemon/backend/op-applier.js';

const route = (dst: string): KernelOp => ({ op: 'replaceRoute', route: { dst, via: '192.168.0.1' } });
const del = (dst: string): KernelOp => ({ op: 'deleteRoute', route: { dst } });

/** A kernel.batch that stops at the first op in `bad`, naming it as the adapters do. */
function kernel(bad: Set<KernelOp>, o: { nameOp?: boolean; code?: 'EPERM' | 'ESRCH'; once?: boolean } = {}) {
  const batches: KernelOp[][] = [];
  const done: KernelOp[] = [];
  return {
    batches,
    done,
    async batch(ops: readonly KernelOp[]): Promise<void> {
      batches.push([...ops]);
      for (const op of ops) {
        if (bad.has(op)) {
          if (o.once) bad.delete(op);
          const e = new KernelError('refused', { code: o.code ?? 'EPERM' });
          throw o.nameOp === false ? e : e.withOp(op);
        }
        done.push(op);
      }
    },
  };
}

describe('applyResumable', () => {
  it('resumes after the failed op: one batch more per failure, every other op done', async () => {
    const ops = ['10.1.0.0/24', '10.2.0.0/24', '10.3.0.0/24', '10.4.0.0/24'].map(route);
    const k = kernel(new Set([ops[1]!, ops[2]!]));
    const failed = await applyResumable(k, ops);
    expect([...failed.keys()]).toEqual([ops[1], ops[2]]);
    expect(k.done).toEqual([ops[0], ops[3]]);
    expect(k.batches.map((b) => b.length)).toEqual([4, 2, 1]);
  });

  it('skips the ops onFailure names (the rest of a failed peer)', async () => {
    const ops = ['10.1.0.0/24', '10.2.0.0/24', '10.3.0.0/24'].map(route);
    const k = kernel(new Set([ops[0]!]));
    const failed = await applyResumable(k, ops, () => [ops[2]!]);
    expect([...failed.keys()]).toEqual([ops[0]]);
    expect(k.done).toEqual([ops[1]]);
  });

  it('goes op by op when the failed op cannot be told', async () => {
    const ops = ['10.1.0.0/24', '10.2.0.0/24', '10.3.0.0/24'].map(route);
    const k = kernel(new Set([ops[1]!]), { nameOp: false });
    const failed = await applyResumable(k, ops);
    expect([...failed.keys()]).toEqual([ops[1]]);
    expect(k.done).toEqual([ops[0], ops[0], ops[2]]);
  });
});

describe('removeBestEffort', () => {
  it('tries a removal that failed for another reason than "not found" once more on its own', async () => {
    const ops = ['10.1.0.0/24', '10.2.0.0/24'].map(del);
    const k = kernel(new Set([ops[0]!]), { once: true });
    expect((await removeBestEffort(k, ops)).size).toBe(0);
    expect(k.done).toEqual([ops[1], ops[0]]);
  });

  it('does not retry what is already gone', async () => {
    const ops = ['10.1.0.0/24'].map(del);
    const k = kernel(new Set([ops[0]!]), { code: 'ESRCH' });
    await removeBestEffort(k, ops);
    expect(k.batches).toHaveLength(1);
  });
});
