// A long watch line (etcd's reply to a watch that resumes far behind, thousands of events in one JSON
// document; a Kubernetes list-like event) arrives in hundreds of socket chunks. Each chunk must be
// searched for the newline once, not the whole line so far again: that is quadratic in the line.
import { afterEach, describe, expect, it } from 'vitest';
import { streamLines } from '../../../../daemon/subnet/stream-lines.js';

const indexOf = String.prototype.indexOf;
afterEach(() => {
  String.prototype.indexOf = indexOf;
});

describe('streamLines on a line split into many chunks', () => {
  it('searches each character for the newline about once', async () => {
    const chunks = Array.from({ length: 400 }, (_, i) => Buffer.from(`${String(i).padStart(4, '0')}${'x'.repeat(996)}`));
    chunks.push(Buffer.from('\n{"next":1}\n'));
    const total = chunks.reduce((s, c) => s + c.length, 0);
    let scanned = 0;
    // counts what every indexOf may look at (from its start position to the end of the string)
    String.prototype.indexOf = function (this: string, search: string, from?: number) {
      scanned += this.length - Math.max(0, from ?? 0);
      return indexOf.call(this, search, from);
    };
    const lines: string[] = [];
    async function* body() {
      yield* chunks;
    }
    for await (const l of streamLines(body(), 1 << 20, 'watch /x')) lines.push(l);
    String.prototype.indexOf = indexOf;
    expect(lines.map((l) => l.length)).toEqual([400_000, 10]);
    expect(lines[0]!.startsWith('0000x')).toBe(true);
    expect(scanned).toBeLessThan(2 * total); // the old loop: ~ 400 × 200 kB
  });
});
