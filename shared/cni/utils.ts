// Names and comments a plugin gives its iptables state (upstream pkg/utils/utils.go), so that ours and
// the Go plugins' name the same container's chain the same way.
import { goQuote } from '../go/quote.js';

/** bun's native hasher (the compiled executables run on bun), when present */
interface BunHasher {
  CryptoHasher: new (algorithm: string) => { update(data: string): { digest(encoding: 'hex'): string } };
}

/**
 * utils.FormatChainName: `"CNI-" + hex(sha512(name + id))[:24]`. It is on the critical path of a
 * bridge ADD and DEL with ipMasq, so the hash comes from the cheapest source at hand: bun's
 * Bun.CryptoHasher under the compiled executables (0.5 ms, where importing node:crypto costs bun ~11
 * ms), node:crypto under Node (loaded here, not at start-up).
 */
export function formatChainName(name: string, id: string): string {
  const bun = (globalThis as { Bun?: BunHasher }).Bun;
  const hex = bun
    ? new bun.CryptoHasher('sha512').update(name + id).digest('hex')
    : process.getBuiltinModule('node:crypto').createHash('sha512').update(name + id).digest('hex');
  return `CNI-${hex.slice(0, 24)}`;
}

/** utils.FormatComment: `name: "<name>" id: "<id>"` with Go's %q. */
export function formatComment(name: string, id: string): string {
  return `name: ${goQuote(name)} id: ${goQuote(id)}`;
}
