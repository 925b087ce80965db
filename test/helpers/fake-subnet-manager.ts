// A SubnetManager whose peer lease batches the test pushes, for driving a backend without etcd.
import { parseIP, parseNet } from '../../shared/net/ip.js';
import type { BackendSubnetManager } from '../../daemon/backend/backend.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../../daemon/lease.js';
import type { Logger } from '../../shared/log.js';

export class FakeSubnetManager implements BackendSubnetManager {
  readonly acquired: LeaseAttrs[] = [];
  /** what listLeases answers (other nodes' leases the test pretends are in the datastore) */
  others: Lease[] = [];
  /** what storedMacAddresses answers (the VtepMACs the datastore says this node advertised), if set */
  stored: { v4?: string; v6?: string } | undefined;
  private readonly queue: LeaseEvent[][] = [];
  private wake: (() => void) | undefined;

  /** `subnet` (and `ipv6Subnet` for a lease with a PublicIPv6) is what acquireLease hands out. */
  constructor(
    private readonly subnet: string,
    private readonly ipv6Subnet = 'fd00:10:16::/64',
  ) {}

  async acquireLease(attrs: LeaseAttrs): Promise<Lease> {
    this.acquired.push(attrs);
    return {
      enableIPv4: true,
      enableIPv6: !!attrs.publicIPv6,
      subnet: parseNet(this.subnet),
      ...(attrs.publicIPv6 ? { ipv6Subnet: parseNet(this.ipv6Subnet) } : {}),
      attrs,
      expiration: Date.now() + 86_400_000,
    };
  }

  /** Batches pushed and not yet taken by watchLeases. */
  get queued(): number {
    return this.queue.length;
  }

  push(batch: LeaseEvent[]): void {
    this.queue.push(batch);
    this.wake?.();
  }

  async *watchLeases(signal: AbortSignal): AsyncIterable<LeaseEvent[]> {
    while (!signal.aborted) {
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  }

  storedMacAddresses(): { v4?: string; v6?: string } {
    return this.stored ?? {};
  }

  async listLeases(): Promise<Lease[]> {
    return [...this.others];
  }

  name(): string {
    return 'fake';
  }
}

/** A vxlan peer lease as another host's flanneld would write it. */
export function vxlanLease(subnet: string, publicIP: string, mac: string | undefined, type = 'vxlan', vni = 100): Lease {
  const attrs: LeaseAttrs = { publicIP: parseIP(publicIP), backendType: type };
  if (mac !== undefined) attrs.backendData = { VNI: vni, VtepMAC: mac };
  return { enableIPv4: true, enableIPv6: false, subnet: parseNet(subnet), attrs, expiration: Date.now() + 86_400_000 };
}

/** A backend Logger that keeps the bare messages, every level, in `lines` (tests match the text). */
export function linesLogger(lines: string[]): Logger {
  const push = (m: string): void => void lines.push(m);
  return { info: push, warn: push, error: push };
}
