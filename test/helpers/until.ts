// Polling with a deadline: the one way tests wait for something to happen (never sleep and hope).

export interface UntilOptions {
  /** give up after this long (default 15 s) */
  ms?: number;
  /** poll this often (default 25 ms) */
  every?: number;
}

type Ready<T> = T | undefined | false;

/**
 * Calls `f` (sync or async) every `every` ms until it returns something other than undefined/false, and
 * returns that; throws `timed out waiting for <what>` after `ms`. A throw from `f` ends the wait at once.
 * The positional `(f, what, ms, every)` form is kept for the redesign wave; new code passes options.
 */
export async function until<T>(f: () => Ready<T> | Promise<Ready<T>>, what: string, opts: UntilOptions | number = {}, everyMs?: number): Promise<T> {
  const { ms = 15_000, every = 25 } = typeof opts === 'number' ? { ms: opts, every: everyMs } : opts;
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** For in-process fakes (unit tests): fail well inside vitest's 5 s unit timeout, so the message names
 * what never happened, and poll tightly since each check is cheap. */
export const IN_PROCESS: UntilOptions = { ms: 2000, every: 5 };
