// The lines of a streamed HTTP body: etcd's JSON-gateway watch and the Kubernetes watch both send one
// JSON document per line. Chunks are decoded as UTF-8 across their boundaries (a character split
// between two chunks stays whole), empty lines are skipped, a last line without its newline still
// counts, and a line that outgrows `max` bytes ends the stream with an error instead of growing
// without bound. Each chunk is searched for newlines once and a long line's pieces are joined once
// when its newline comes: a multi-MiB watch reply in hundreds of chunks costs linear time, not the
// whole line so far re-scanned (and re-flattened) per chunk.
import { StringDecoder } from 'node:string_decoder';

export async function* streamLines(body: AsyncIterable<unknown>, max: number, what: string): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pieces: string[] = []; // the current line so far, not yet joined
  let pending = 0; // their length
  for await (const chunk of body) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer);
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf('\n', start)) >= 0) {
      pieces.push(text.slice(start, nl));
      const line = pieces.join('').trim();
      pieces = [];
      pending = 0;
      start = nl + 1;
      if (line !== '') yield line;
    }
    if (start < text.length) {
      pieces.push(text.slice(start));
      pending += text.length - start;
    }
    if (pending > max) throw new Error(`${what}: a line longer than ${max} bytes`);
  }
  const last = (pieces.join('') + decoder.end()).trim();
  if (last !== '') yield last;
}
