// CNI_ARGS (`K=V;K2=V2`) parsed like Go's types.LoadArgs: keys match Go field names exactly
// (case-sensitive), unknown keys are an error unless IgnoreUnknown is 1/true, a pair without exactly one
// `=` is an error. Errors are plain (they surface as code 999, as in Go).
import { goQuote } from '../go/quote.js';

export function parseCniArgs(args: string, knownKeys: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (args === '') return out;
  const unknown: string[] = [];
  let ignoreUnknown = false;
  for (const pair of args.split(';')) {
    const kv = pair.split('=');
    if (kv.length !== 2) throw new Error(`ARGS: invalid pair ${goQuote(pair)}`);
    const [key, value] = kv as [string, string];
    if (key === 'IgnoreUnknown') {
      ignoreUnknown = parseGoBool(value, pair);
      continue;
    }
    if (!knownKeys.includes(key)) {
      unknown.push(pair);
      continue;
    }
    out.set(key, value);
  }
  if (unknown.length > 0 && !ignoreUnknown) throw new Error(`ARGS: unknown args [${unknown.map(goQuote).join(' ')}]`);
  return out;
}

function parseGoBool(value: string, pair: string): boolean {
  const v = value.toLowerCase();
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new Error(`ARGS: error parsing value of pair ${goQuote(pair)}: boolean unmarshal error: invalid input ${value}`);
}
