import { describe, expect, it } from 'vitest';
import { streamLines } from '../../../../daemon/subnet/stream-lines.js';

async function collect(chunks: (string | Buffer)[], max = 1024): Promise<string[]> {
  const out: string[] = [];
  async function* body() {
    for (const c of chunks) yield c;
  }
  for await (const l of streamLines(body(), max, 'watch /x')) out.push(l);
  return out;
}

describe('streamLines', () => {
  it('splits lines across chunks, skips empty ones, keeps a last line without its newline', async () => {
    expect(await collect([Buffer.from('{"a":1}\n\n{"b"'), Buffer.from(':2}\r\n{"c":3}')])).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it('a UTF-8 character split between two chunks stays whole', async () => {
    const bytes = Buffer.from('{"n":"é"}\n');
    const cut = bytes.indexOf(0xc3) + 1; // between the two bytes of é
    expect(await collect([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(['{"n":"é"}']);
  });

  it('a line longer than the bound ends the stream with an error', async () => {
    await expect(collect([Buffer.alloc(600, 0x61), Buffer.alloc(600, 0x61)], 1000)).rejects.toThrow('watch /x: a line longer than 1000 bytes');
  });
});
