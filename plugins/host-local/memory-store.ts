// An in-memory Store (backend/testing/fake_store.go), shipped with the product like undici's MockAgent:
// unit tests run the allocator and the commands on it. Entries keep the on-disk content format, so the
// legacy id-only form can be seeded too.
import { type IP, formatIP, tryParseIP } from '../../shared/net/ip.js';
import { type Attachment, type Store, goTrimSpace, isValidReservation, reservationKey } from './store.js';

export class MemoryStore implements Store {
  /** formatted IP → file content */
  readonly ipMap = new Map<string, string>();
  readonly lastReserved = new Map<string, IP>();
  lockCount = 0;
  locked = false;

  constructor(seed: Record<string, string> = {}) {
    for (const [ip, content] of Object.entries(seed)) this.ipMap.set(ip, content);
  }

  lock(): void {
    if (this.locked) throw new Error('MemoryStore: lock taken twice');
    this.locked = true;
    this.lockCount++;
  }

  unlock(): void {
    this.locked = false;
  }

  close(): void {}

  reserve(id: string, ifname: string, ip: IP, rangeId: string): boolean {
    const key = formatIP(ip);
    if (this.ipMap.has(key)) return false;
    this.ipMap.set(key, reservationKey(id, ifname));
    this.lastReserved.set(rangeId, ip);
    return true;
  }

  lastReservedIP(rangeId: string): IP | undefined {
    return this.lastReserved.get(rangeId);
  }

  private matching(id: string, ifname: string): string[] {
    const match = reservationKey(id, ifname);
    const found = [...this.ipMap].filter(([, v]) => goTrimSpace(v) === match).map(([k]) => k);
    if (found.length > 0) return found;
    const old = goTrimSpace(id);
    return [...this.ipMap].filter(([, v]) => goTrimSpace(v) === old).map(([k]) => k);
  }

  releaseByID(id: string, ifname: string): void {
    for (const k of this.matching(id, ifname)) this.ipMap.delete(k);
  }

  getByID(id: string, ifname: string): IP[] {
    const match = reservationKey(id, ifname);
    const old = goTrimSpace(id);
    const out: IP[] = [];
    for (const [k, v] of this.ipMap) {
      const t = goTrimSpace(v);
      const ip = tryParseIP(k);
      if ((t === match || t === old) && ip) out.push(ip);
    }
    return out;
  }

  findByID(id: string, ifname: string): boolean {
    return this.matching(id, ifname).length > 0;
  }

  gc(valid: readonly Attachment[]): void {
    for (const [k, v] of [...this.ipMap]) if (!isValidReservation(v, valid)) this.ipMap.delete(k);
  }
}
