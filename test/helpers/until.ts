// Polling with a deadline, the one way tests wait for something to happen.

/** Calls `f` every `everyMs` until it returns something other than undefined/false; throws after `ms`. */
export async function until<T>(f: () => T | undefined | false, what: string, ms = 15_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
