// The lines of a streamed HTTP body: etcd's JSON-gateway watch and the Kubernetes watch both send one
// JSON document per line. Chunks are decoded as UTF-8 across their boundaries (a character split
// between two chunks stays whole), empty lines are skipped, a last line without its newline still
// counts, and a line that outgrows `max` bytes ends the stream with an error instead of growing
// without bound.
import { StringDecoder } from 'node:string_decoder';

export async function* streamLines(body: AsyncIterable<unknown>, max: number, what: string): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let buf = '';
  for await (const chunk of body) {
    buf += typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer);
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line !== '') yield line;
    }
    if (buf.length > max) throw new Error(`${what}: a line longer than ${max} bytes`);
  }
  buf += decoder.end();
  if (buf.trim() !== '') yield buf.trim();
}
