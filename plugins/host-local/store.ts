// The reservation store behind the allocator (backend/store.go). Every method is synchronous: a plugin
// process does one short allocation, and sync file IO is the cheapest start path in Node.
// Implementations: DiskStore (the Go on-disk format, shared with the Go plugin) and MemoryStore (a fake).
import type { IP } from '../../shared/net/ip.js';

/** One attachment the runtime still uses (GC's `cni.dev/valid-attachments`). */
export interface Attachment {
  containerId: string;
  ifname: string;
}

export interface Store {
  /** Takes the store-wide exclusive lock (blocks). */
  lock(): void;
  unlock(): void;
  close(): void;
  /** Reserves `ip` for (id, ifname) and records it as the last reserved IP of `rangeId`; false if taken. */
  reserve(id: string, ifname: string, ip: IP, rangeId: string): boolean;
  /** The last IP reserved in range set `rangeId`; undefined when none (or unparsable); throws on IO errors. */
  lastReservedIP(rangeId: string): IP | undefined;
  /** Releases every IP of (id, ifname); falls back to legacy id-only entries when none matched. */
  releaseByID(id: string, ifname: string): void;
  /** IPs held by (id, ifname) or by the legacy id-only form. */
  getByID(id: string, ifname: string): IP[];
  /** Takes the lock itself. True when (id, ifname), or legacy id, holds any IP. */
  findByID(id: string, ifname: string): boolean;
  /** Releases every reservation whose attachment is not in `valid` (legacy entries match by id). */
  gc(valid: readonly Attachment[]): void;
}

/** What a reservation file holds: `id\r\nifname`, the id trimmed as Go's strings.TrimSpace does. */
export const LINE_BREAK = '\r\n';
export const LAST_IP_FILE_PREFIX = 'last_reserved_ip.';

export function reservationKey(id: string, ifname: string): string {
  return goTrimSpace(id) + LINE_BREAK + ifname;
}

/** strings.TrimSpace: ASCII and Unicode White_Space, without JS's extra U+FEFF. */
export function goTrimSpace(s: string): string {
  return s.replace(GO_SPACE_EDGES, '');
}
const GO_SPACE_EDGES = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

/** True when a reservation's trimmed content belongs to a valid attachment. */
export function isValidReservation(content: string, valid: readonly Attachment[]): boolean {
  const key = goTrimSpace(content);
  const sep = key.indexOf(LINE_BREAK);
  if (sep < 0) return valid.some((a) => goTrimSpace(a.containerId) === key);
  return valid.some((a) => reservationKey(a.containerId, a.ifname) === key);
}
