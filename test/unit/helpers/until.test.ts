// test/helpers/until.ts: the one polling helper (sync or async predicate, options or the wave's positional form).
import { describe, expect, it } from 'vitest';
import { until } from '../../helpers/until.js';

describe('until', () => {
  it('returns the first value that is not undefined/false, from a sync or an async predicate', async () => {
    let n = 0;
    expect(await until(() => (++n >= 3 ? n : undefined), 'three calls', { every: 1 })).toBe(3);
    let m = 0;
    expect(await until(async () => ++m >= 2 && 'ready', 'two async calls', { every: 1 })).toBe('ready');
    expect(await until(() => 0, 'zero is a value')).toBe(0);
  });

  it('names what it waited for when the deadline passes (options and positional forms)', async () => {
    await expect(until(() => false, 'nothing', { ms: 20, every: 5 })).rejects.toThrow('timed out waiting for nothing');
    await expect(until(async () => undefined, 'still nothing', 20, 5)).rejects.toThrow('timed out waiting for still nothing');
  });

  it('ends the wait at once when the predicate throws', async () => {
    await expect(until(() => { throw new Error('broken'); }, 'x', { ms: 10_000 })).rejects.toThrow('broken');
  });
});
