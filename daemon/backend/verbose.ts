// Go's klog `V(n)` lines (vxlan's `adding subnet: …` at V(2)): verbose detail an operator turns on with
// `-v`, off by default. The shared Logger has no verbose level yet (shared/log.ts, which gains klog's
// `-v`): until it does, these go to its optional `debug`, i.e. nowhere on today's loggers.
import type { Logger } from '../../shared/log.js';

export function logV(logger: Logger, msg: string): void {
  (logger as Logger & { debug?: (m: string) => void }).debug?.(msg);
}
