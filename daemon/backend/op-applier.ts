// The one way a backend writes a list of kernel ops: every op is tried, and what failed is reported op
// by op, at the cost of one more batch per failure (never one per op).
//
// `Kernel.batch` runs ops in order and stops at the first failure, naming the failed op in
// `KernelError.op`. We record that failure and resume right after it. When the failed op cannot be told
// (the batch never ran, or an adapter that does not say), the rest is tried one op at a time.
import type { Kernel, KernelOp } from '../../shared/kernel/kernel.js';
import { KernelError, isNotFound } from '../../shared/kernel/errors.js';

/**
 * Runs every op; returns the ops that failed with their errors (empty: all done). Never throws.
 * `onFailure` may name ops that must not run any more once `op` failed (the rest of the same peer's
 * writes, say): they are skipped and not reported.
 */
export async function applyResumable(
  kernel: Pick<Kernel, 'batch'>,
  ops: readonly KernelOp[],
  onFailure?: (op: KernelOp, err: unknown) => Iterable<KernelOp> | void,
): Promise<Map<KernelOp, unknown>> {
  const failed = new Map<KernelOp, unknown>();
  const skip = new Set<KernelOp>();
  const fail = (op: KernelOp, err: unknown): void => {
    failed.set(op, err);
    for (const s of onFailure?.(op, err) ?? []) skip.add(s);
  };
  let rest = ops;
  while (rest.length > 0) {
    try {
      await kernel.batch(rest);
      return failed;
    } catch (err) {
      const i = err instanceof KernelError && err.op !== undefined ? rest.indexOf(err.op) : -1;
      if (i < 0) {
        for (const op of rest) {
          if (skip.has(op)) continue;
          try {
            await kernel.batch([op]);
          } catch (e) {
            fail(op, e);
          }
        }
        return failed;
      }
      fail(rest[i]!, err);
      rest = skip.size > 0 ? rest.slice(i + 1).filter((op) => !skip.has(op)) : rest.slice(i + 1);
    }
  }
  return failed;
}

/**
 * Removal that never stops early (as upstream's DelX calls, each on its own): a missing entry, or a
 * device that is gone with everything on it, leaves nothing to remove. An op that failed for another
 * reason is tried once more on its own (a removal that failed in passing must not leave an entry
 * behind). Returns what still failed, for callers that report it.
 */
export async function removeBestEffort(
  kernel: Pick<Kernel, 'batch'>,
  ops: readonly KernelOp[],
  onFailure?: (op: KernelOp, err: unknown) => void,
): Promise<Map<KernelOp, unknown>> {
  const failed = await applyResumable(kernel, ops, onFailure);
  for (const [op, err] of failed) {
    if (isNotFound(err)) continue;
    try {
      await kernel.batch([op]);
      failed.delete(op);
    } catch (e) {
      failed.set(op, e);
    }
  }
  return failed;
}
