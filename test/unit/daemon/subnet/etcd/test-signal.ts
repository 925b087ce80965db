// Abort signals for the manager loops a test starts: every one is aborted after each test, so no
// loop outlives its test.
import { afterEach } from 'vitest';

const aborts: AbortController[] = [];

export function signal(): AbortSignal {
  const ac = new AbortController();
  aborts.push(ac);
  return ac.signal;
}

afterEach(() => {
  for (const a of aborts.splice(0)) a.abort();
});

/** Aborts the signal handed out last (a test ending the loop it started). */
export function abortLast(): void {
  aborts.at(-1)?.abort();
}
