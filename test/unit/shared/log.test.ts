import { describe, expect, it } from 'vitest';
import { V, createLogger, formatLogLine, memoryLogger } from '../../../shared/log.js';

// klog's header, as log shippers' klog parsers read it: Lmmdd hh:mm:ss.uuuuuu, pid in 7 columns, file:line]
const KLOG = /^([IWE])(\d{4}) (\d{2}:\d{2}:\d{2}\.\d{6}) +(\d+) ([^ :\]]+):(\d+)\] (.*)\n$/;

describe('klog lines', () => {
  it('has real microseconds, the pid right-aligned in 7 columns and file:line', () => {
    const micros = Date.UTC(2026, 11, 4, 12, 28, 36) * 1000 + 443812;
    const line = formatLogLine('I', 'hello', micros, 'main.ts:123');
    const m = KLOG.exec(line);
    expect(m).not.toBeNull();
    expect(m![3]!.endsWith('36.443812')).toBe(true);
    expect(line).toContain(` ${String(process.pid).padStart(7)} main.ts:123] hello\n`);
  });

  it('names the calling file and line, and each level', () => {
    const lines: string[] = [];
    const log = createLogger((l) => lines.push(l));
    log.info('one');
    log.warn('two');
    log.error('three');
    const parsed = lines.map((l) => KLOG.exec(l));
    expect(parsed.map((m) => [m?.[1], m?.[5], m?.[7]])).toEqual([
      ['I', 'log.test.ts', 'one'],
      ['W', 'log.test.ts', 'two'],
      ['E', 'log.test.ts', 'three'],
    ]);
    // the three calls are on consecutive lines of this file
    const nums = parsed.map((m) => Number(m![6]));
    expect(nums[1]! - nums[0]!).toBe(1);
    expect(nums[2]! - nums[1]!).toBe(1);
  });

  it('two lines in a row carry increasing microseconds, not a padded millisecond', () => {
    const lines: string[] = [];
    const log = createLogger((l) => lines.push(l));
    for (let i = 0; i < 50; i++) log.info('x');
    const micros = lines.map((l) => Number(KLOG.exec(l)![3]!.slice(-6)));
    expect(micros.some((u) => u % 1000 !== 0)).toBe(true);
  });

  it('V(n) writes only at -v=n or more', () => {
    const lines: string[] = [];
    const quiet = createLogger((l) => lines.push(l), 0);
    V(quiet, 2).info('detail');
    V(quiet, 0).info('always');
    const loud = createLogger((l) => lines.push(l), 2);
    V(loud, 2).info('detail at v2');
    V(loud, 3).info('too detailed');
    expect(lines.map((l) => KLOG.exec(l)![7])).toEqual(['always', 'detail at v2']);
    const mem = memoryLogger();
    V(mem, 5).info('kept in tests');
    expect(mem.lines).toEqual(['I kept in tests']);
  });
});
