// Names and comments a plugin gives its iptables state (upstream pkg/utils/utils.go), so that ours and
// the Go plugins' name the same container's chain the same way.
import { goQuote } from '../go/quote.js';

/**
 * utils.FormatChainName: `"CNI-" + hex(sha512(name + id))[:24]`. node:crypto is imported here, on
 * the ipMasq path only, to keep it off the start-up of every other plugin run.
 */
export async function formatChainName(name: string, id: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  return `CNI-${createHash('sha512').update(name + id).digest('hex').slice(0, 24)}`;
}

/** utils.FormatComment: `name: "<name>" id: "<id>"` with Go's %q. */
export function formatComment(name: string, id: string): string {
  return `name: ${goQuote(name)} id: ${goQuote(id)}`;
}
