// Kernel ops planned together with the words for their failure: whoever builds an op list knows which
// upstream step each op stands for, so the error text is decided there, not where the batch ran.
import { KernelError } from '../kernel/errors.js';
import type { KernelOp } from '../kernel/kernel.js';

export interface OpPlan {
  ops: KernelOp[];
  /** The batch error (its `op` is one of `ops`) in the words of the upstream step that op stands for. */
  explain(err: unknown): Error;
}

/** The failure of a batch made of `plans`, explained by the plan whose op failed (else as it is). */
export function explainFailure(err: unknown, plans: readonly OpPlan[]): Error {
  const op = err instanceof KernelError ? err.op : undefined;
  const plan = op === undefined ? undefined : plans.find((p) => p.ops.includes(op));
  if (plan !== undefined) return plan.explain(err);
  return err instanceof Error ? err : new Error(String(err));
}
