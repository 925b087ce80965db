// The Kubernetes subnet manager (pkg/subnet/kube/kube.go): leases are Node objects. A node's subnet is
// its `spec.podCIDR(s)` (assigned by the node-ipam controller, never by us); what peers need to reach
// it (public IP, backend type and data) is in flannel's annotations, which acquireLease patches through
// `nodes/<name>/status` (the only write kube-flannel's ClusterRole allows). completeLease sets the
// NetworkUnavailable=False condition. Nothing is renewed or deleted: the lease is the node.
//
// Where we differ from Go on purpose:
//   - peers are a diff of the informer's cache: any change of what a node advertises (a v6-only
//     change in dual stack too, which Go ignores) is an `added`; a relist after 410 emits exactly the
//     nodes that changed or vanished; the first batch is the full snapshot, as the etcd manager's;
//   - a peer whose podCIDR lies outside the flannel Network, or whose annotations do not parse, is
//     refused with one log line (and removed if it was known), never routed;
//   - the own node patch sends only the keys that change, and none when nothing does;
//   - a node without an annotations map is handled (Go panics);
//   - the VtepMAC in backend-data is parsed as JSON under the right key for custom prefixes.
import { formatNet } from '../../../shared/net/ip.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../../lease.js';
import { type Logger, errorMessage } from '../../../shared/log.js';
import { sleep } from '../../sleep.js';
import type { Config } from '../config.js';
import type { SubnetManager } from '../manager.js';
import { type Annotations, storedVtepMac } from './annotations.js';
import { type KubeClient, STRATEGIC_MERGE } from './client.js';
import { NodeInformer } from './informer.js';
import {
  type Node,
  annotationPatch,
  annotationsOf,
  containsCIDR,
  desiredAnnotations,
  isFlannelNode,
  leaseFingerprint,
  networkAvailablePatch,
  nodeToLease,
  podCIDRs,
  slimNode,
} from './node.js';

export interface KubeManagerOptions {
  client: KubeClient;
  nodeName: string;
  annotations: Annotations;
  config: Config;
  setNodeNetworkUnavailable: boolean;
  log: Logger;
  /** how long acquireLease waits for its node in the cache and retries its PATCH (Go: 30 s, every 3 s) */
  acquireTimeoutMs?: number;
  acquireRetryMs?: number;
  /** informer tuning (tests) */
  informer?: Partial<ConstructorParameters<typeof NodeInformer>[1]>;
  now?: () => Date;
}

interface Known {
  lease: Lease;
  fingerprint: string;
}

export class KubeSubnetManager implements SubnetManager {
  readonly informer: NodeInformer;
  private readonly nodes = new Map<string, Node>();
  /** valid flannel peers (and us) by node name: what watchLeases diffs against */
  private readonly known = new Map<string, Known>();
  /** why a node is refused now, so each refusal is logged once per distinct reason */
  private readonly refused = new Map<string, string>();
  private readonly subscribers = new Set<(evs: LeaseEvent[]) => void>();
  private readonly healthListeners = new Set<(up: boolean) => void>();
  private ownLease: Lease | undefined;
  private readonly log: Logger;
  private nodeWaiters = new Set<() => void>();

  constructor(private readonly o: KubeManagerOptions) {
    this.log = o.log;
    this.informer = new NodeInformer(o.client, {
      log: o.log,
      ...o.informer,
      onHealth: (up) => {
        for (const f of this.healthListeners) f(up);
      },
      handlers: {
        replace: (list) => {
          const names = new Set(list.map((n) => n.metadata.name));
          const evs: LeaseEvent[] = [];
          for (const name of [...this.nodes.keys()]) if (!names.has(name)) this.apply(name, undefined, evs);
          for (const n of list) this.apply(n.metadata.name, n, evs);
          this.publish(evs);
        },
        upsert: (n) => {
          const evs: LeaseEvent[] = [];
          this.apply(n.metadata.name, n, evs);
          this.publish(evs);
        },
        remove: (n) => {
          const evs: LeaseEvent[] = [];
          this.apply(n.metadata.name, undefined, evs);
          this.publish(evs);
        },
      },
    });
  }

  name(): string {
    return `Kubernetes Subnet Manager - ${this.o.nodeName}`;
  }

  async getNetworkConfig(_signal: AbortSignal): Promise<Config> {
    return this.o.config;
  }

  /** The subnet is the node's podCIDR: a previous subnet changes nothing. */
  setPrevious(): void {}

  lease(): Lease | undefined {
    return this.ownLease;
  }

  /** podCIDRs are immutable once set, so the own lease never changes under us. */
  onOwnLeaseChange(_f: (lease: Lease) => void): () => void {
    return () => {};
  }

  /** Called with false when the node watch has been down for the informer's threshold, true when it is back. */
  onWatchHealth(f: (up: boolean) => void): () => void {
    this.healthListeners.add(f);
    return () => this.healthListeners.delete(f);
  }

  /** The own node as the cache has it now. */
  ownNode(): Node | undefined {
    return this.nodes.get(this.o.nodeName);
  }

  /** `node-public-ip` / `node-public-ipv6` of the own node (Go's GetStoredPublicIP): used as --public-ip(v6). */
  storedPublicIP(): { v4?: string; v6?: string } {
    const ann = annotationsOf(this.ownNode() ?? { metadata: { name: '' } });
    const out: { v4?: string; v6?: string } = {};
    if (ann[this.o.annotations.nodePublicIP]) out.v4 = ann[this.o.annotations.nodePublicIP];
    if (ann[this.o.annotations.nodePublicIPv6]) out.v6 = ann[this.o.annotations.nodePublicIPv6];
    return out;
  }

  /** The VtepMACs the own node advertised before (Go's GetStoredMacAddresses), to keep them over a reboot. */
  storedMacAddresses(): { v4?: string; v6?: string } {
    const ann = annotationsOf(this.ownNode() ?? { metadata: { name: '' } });
    const out: { v4?: string; v6?: string } = {};
    const v4 = storedVtepMac(ann[this.o.annotations.backendData]);
    const v6 = storedVtepMac(ann[this.o.annotations.backendV6Data]);
    if (v4) out.v4 = v4;
    if (v6) out.v6 = v6;
    return out;
  }

  async acquireLease(attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease> {
    const name = this.o.nodeName;
    const timeoutMs = this.o.acquireTimeoutMs ?? 30_000;
    const retryMs = this.o.acquireRetryMs ?? 3000;
    const deadline = Date.now() + timeoutMs;
    const timeoutError = (last: string) => new Error(`timeout contacting kube-api, failed to patch node ${JSON.stringify(name)}. Error: ${last}`);

    let node = this.ownNode();
    while (!node) {
      if (signal.aborted) throw signal.reason ?? new Error('aborted');
      if (Date.now() >= deadline) throw timeoutError(`node ${JSON.stringify(name)} is not in the node list (does NODE_NAME name a registered node?)`);
      await this.waitForNodeChange(Math.min(retryMs, deadline - Date.now()), signal);
      node = this.ownNode();
    }
    if (!node.spec?.podCIDR && !node.spec?.podCIDRs?.length) throw new Error(`node ${JSON.stringify(name)} pod cidr not assigned`);
    const cidrs = podCIDRs(node);

    const current = annotationsOf(node);
    const want = desiredAnnotations(current, this.o.annotations, attrs);
    const body = annotationPatch(current, want);
    if (body !== undefined) {
      const pub = want[this.o.annotations.publicIP];
      if (current[this.o.annotations.publicIPOverwrite] && pub === current[this.o.annotations.publicIPOverwrite]) {
        this.log.info(`Overriding public ip with '${pub}' from node annotation '${this.o.annotations.publicIPOverwrite}'`);
      }
      for (;;) {
        try {
          await this.o.client.request('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}/status`, { body, contentType: STRATEGIC_MERGE, signal });
          this.log.info(`Node ${name}: flannel annotations updated (${Object.keys(JSON.parse(body).metadata.annotations).join(', ')})`);
          break;
        } catch (err) {
          if (signal.aborted) throw err;
          this.log.warn(`Failed to patch node ${JSON.stringify(name)}: ${errorMessage(err)}`);
          if (Date.now() + retryMs > deadline) throw timeoutError(errorMessage(err));
          await sleep(retryMs, signal);
        }
      }
    }

    const cfg = this.o.config;
    const lease: Lease = { enableIPv4: false, enableIPv6: false, subnet: undefined as never, attrs, expiration: Date.now() + 24 * 3600_000 };
    if (cfg.enableIPv4) {
      if (!cidrs.v4) throw new Error(`node ${JSON.stringify(name)} has no IPv4 podCIDR (spec.podCIDRs ${JSON.stringify(node.spec?.podCIDRs ?? [])}) but the network config enables IPv4`);
      if (!cfg.network || !containsCIDR(cfg.network, cidrs.v4)) {
        throw new Error(`subnet "${cfg.network ? formatNet(cfg.network) : ''}" specified in the flannel net config doesn't contain "${formatNet(cidrs.v4)}" PodCIDR of the "${name}" node`);
      }
      lease.subnet = cidrs.v4;
      lease.enableIPv4 = true;
    }
    if (cfg.enableIPv6) {
      if (!cidrs.v6) throw new Error(`node ${JSON.stringify(name)} has no IPv6 podCIDR (spec.podCIDRs ${JSON.stringify(node.spec?.podCIDRs ?? [])}) but the network config enables IPv6`);
      if (!cfg.ipv6Network || !containsCIDR(cfg.ipv6Network, cidrs.v6)) {
        throw new Error(`subnet "${cfg.ipv6Network ? formatNet(cfg.ipv6Network) : ''}" specified in the flannel net config doesn't contain "${formatNet(cidrs.v6)}" IPv6 PodCIDR of the "${name}" node`);
      }
      lease.ipv6Subnet = cidrs.v6;
      lease.enableIPv6 = true;
    }
    this.ownLease = lease;
    return lease;
  }

  async renewLease(lease: Lease): Promise<Lease> {
    return lease; // a node does not expire
  }

  /**
   * Sets NetworkUnavailable=False on the own node (with --set-node-network-unavailable), then
   * resolves: an error is logged (Go: "CompleteLease execute error") and never stops the daemon.
   */
  async completeLease(_lease: Lease, signal: AbortSignal): Promise<void> {
    if (!this.o.setNodeNetworkUnavailable) return;
    const body = networkAvailablePatch(this.o.now?.() ?? new Date());
    try {
      await this.o.client.request('PATCH', `/api/v1/nodes/${encodeURIComponent(this.o.nodeName)}/status`, { body, contentType: STRATEGIC_MERGE, signal });
    } catch (err) {
      if (signal.aborted) return;
      this.log.error(`CompleteLease execute error err: ${errorMessage(err)}`);
    }
  }

  async listLeases(_signal: AbortSignal): Promise<Lease[]> {
    await this.informer.synced;
    return [...this.known.values()].map((k) => k.lease);
  }

  async *watchLeases(signal: AbortSignal): AsyncGenerator<LeaseEvent[]> {
    const queue: LeaseEvent[] = [];
    let wake: (() => void) | undefined;
    const sub = (evs: LeaseEvent[]) => {
      queue.push(...evs);
      wake?.();
    };
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([this.informer.synced, new Promise((r) => signal.addEventListener('abort', r, { once: true }))]);
      if (signal.aborted) return;
      this.subscribers.add(sub);
      const own = this.o.nodeName;
      yield [...this.known.entries()].filter(([n]) => n !== own).map(([, k]) => ({ type: 'added' as const, lease: k.lease }));
      while (!signal.aborted) {
        if (queue.length === 0) {
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
          continue;
        }
        yield queue.splice(0, queue.length);
      }
    } finally {
      this.subscribers.delete(sub);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Updates the cache for one node and appends the lease events that makes (never for our own node). */
  private apply(name: string, full: Node | undefined, evs: LeaseEvent[]): void {
    const node = full && slimNode(full, this.o.annotations.prefix);
    if (node) this.nodes.set(name, node);
    else this.nodes.delete(name);
    for (const w of this.nodeWaiters) w();
    const before = this.known.get(name);
    const after = node ? this.peerLease(node) : undefined;
    if (after && before && after.fingerprint === before.fingerprint) return;
    if (before && (!after || leaseKeyOf(before.lease) !== leaseKeyOf(after.lease))) {
      this.known.delete(name);
      if (name !== this.o.nodeName) evs.push({ type: 'removed', lease: before.lease });
    }
    if (after) {
      this.known.set(name, after);
      if (name !== this.o.nodeName) evs.push({ type: 'added', lease: after.lease });
    }
  }

  /** The lease a node advertises, or undefined (not flannel's, or refused with a log line). */
  private peerLease(n: Node): Known | undefined {
    const name = n.metadata.name;
    if (!isFlannelNode(n, this.o.annotations)) {
      this.refused.delete(name);
      return undefined;
    }
    const cfg = this.o.config;
    let problem: string | undefined;
    let lease: Lease | undefined;
    try {
      lease = nodeToLease(n, this.o.annotations, { enableIPv4: cfg.enableIPv4, enableIPv6: cfg.enableIPv6 });
      if (lease.enableIPv4 && (!cfg.network || !containsCIDR(cfg.network, lease.subnet))) {
        problem = `its podCIDR ${formatNet(lease.subnet)} is outside the network ${cfg.network ? formatNet(cfg.network) : '(none)'}`;
      } else if (lease.enableIPv6 && lease.ipv6Subnet && (!cfg.ipv6Network || !containsCIDR(cfg.ipv6Network, lease.ipv6Subnet))) {
        problem = `its IPv6 podCIDR ${formatNet(lease.ipv6Subnet)} is outside the network ${cfg.ipv6Network ? formatNet(cfg.ipv6Network) : '(none)'}`;
      }
    } catch (err) {
      problem = errorMessage(err);
    }
    if (problem !== undefined) {
      if (this.refused.get(name) !== problem) {
        this.refused.set(name, problem);
        this.log.warn(`node ${JSON.stringify(name)} is not used as a flannel peer: ${problem}`);
      }
      return undefined;
    }
    this.refused.delete(name);
    return { lease: lease!, fingerprint: leaseFingerprint(lease!) };
  }

  private publish(evs: LeaseEvent[]): void {
    if (evs.length === 0) return;
    for (const s of this.subscribers) s(evs);
  }

  private waitForNodeChange(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.nodeWaiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, Math.max(0, ms));
      this.nodeWaiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

function leaseKeyOf(l: Lease): string {
  return `${l.subnet ? formatNet(l.subnet) : ''}&${l.ipv6Subnet ? formatNet(l.ipv6Subnet) : ''}`;
}
