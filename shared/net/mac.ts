// MAC addresses as Go's net.HardwareAddr has them: parsed from Go's ParseMAC forms, printed lower-case
// with `:`. No node:crypto here: plugins import this module and must not load crypto at start-up, so
// the caller passes the random source (crypto.randomBytes, a FakeWorld's bytes, ...).

/** A source of `n` random bytes. */
export type RandomBytes = (n: number) => Uint8Array;

/** A random locally administered unicast MAC (upstream's newHardwareAddr, the kernel's eth_random_addr). */
export function randomMac(random: RandomBytes): string {
  const b = Uint8Array.from(random(6));
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

const COLON_OR_DASH = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/;
const DOTTED = /^([0-9a-fA-F]{4})\.([0-9a-fA-F]{4})\.([0-9a-fA-F]{4})$/;

/**
 * Go's net.ParseMAC for the 6-byte (EUI-48) forms `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` and
 * `aabb.ccdd.eeff`, in lower-case colon form; undefined for anything else (not a string included).
 */
export function normalizeMac(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  const m = COLON_OR_DASH.exec(text);
  if (m) return [m[1], m[3], m[4], m[5], m[6], m[7]].join(':').toLowerCase();
  const d = DOTTED.exec(text);
  if (d) return `${d[1]}${d[2]}${d[3]}`.replace(/(..)(?!$)/g, '$1:').toLowerCase();
  return undefined;
}

/** normalizeMac, or Go's ParseMAC error (`address <s>: invalid MAC address`). */
export function parseMac(text: string): string {
  const mac = normalizeMac(text);
  if (mac === undefined) throw new Error(`address ${text}: invalid MAC address`);
  return mac;
}

export const ZERO_MAC = '00:00:00:00:00:00';

/** A MAC the kernel takes as a permanent FDB destination: not all-zero, not multicast (nor broadcast). */
export function isUnicastMac(mac: string): boolean {
  const m = normalizeMac(mac);
  return m !== undefined && m !== ZERO_MAC && (parseInt(m.slice(0, 2), 16) & 1) === 0;
}
