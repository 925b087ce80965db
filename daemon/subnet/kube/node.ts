// A Node as flannel reads it (metadata.annotations, spec.podCIDR(s); nothing else), the lease a node's
// annotations describe (Go's nodeToLease), and the two PATCH bodies flanneld sends (strategicpatch.CreateTwoWayMergePatch and PatchStatus in Go flannel's pkg/subnet/kube/kube.go).
import { type IP, type IPNet, formatIP, formatNet, netContains, netIP, parseCIDR, parseIP } from '../../../shared/net/ip.js';
import type { Lease, LeaseAttrs } from '../../lease.js';
import { marshal as goMarshal } from '../../../shared/go/json.js';
import type { Annotations } from './annotations.js';

export interface Node {
  metadata: { name: string; resourceVersion?: string; annotations?: Record<string, string> | null };
  spec?: { podCIDR?: string; podCIDRs?: string[] | null } | null;
}

/**
 * What the cache keeps of a node: its name, RV, flannel's annotations and pod CIDRs. A real Node is
 * 5–15 KB (status, images, other tools' annotations); 5000 of them whole would be ~50 MB of RSS.
 */
export function slimNode(n: Node, prefix: string): Node {
  const ann: Record<string, string> = {};
  for (const [k, v] of Object.entries(n.metadata.annotations ?? {})) if (k.startsWith(prefix)) ann[k] = v;
  const spec: NonNullable<Node['spec']> = {};
  if (n.spec?.podCIDR) spec.podCIDR = n.spec.podCIDR;
  if (n.spec?.podCIDRs?.length) spec.podCIDRs = [...n.spec.podCIDRs];
  return { metadata: { name: n.metadata.name, ...(n.metadata.resourceVersion ? { resourceVersion: n.metadata.resourceVersion } : {}), annotations: ann }, spec };
}

export function annotationsOf(n: Node): Record<string, string> {
  return n.metadata.annotations ?? {};
}

/** The node's pod CIDRs by family (Go: `spec.podCIDRs`, ≤ 2 entries, else `spec.podCIDR`). */
export function podCIDRs(n: Node): { v4?: IPNet; v6?: IPNet } {
  const list = n.spec?.podCIDRs?.length ? n.spec.podCIDRs : n.spec?.podCIDR ? [n.spec.podCIDR] : [];
  if (list.length > 2) throw new Error(`node ${JSON.stringify(n.metadata.name)} pod cidrs should be IPv4/IPv6 only or dualstack`);
  const out: { v4?: IPNet; v6?: IPNet } = {};
  for (const text of list) {
    const { net } = parseCIDR(text);
    if (net.family === 4) out.v4 ??= net;
    else out.v6 ??= net;
  }
  return out;
}

/** Go's containsCIDR: `inner` lies inside `outer` (same family, prefix at least as long). */
export function containsCIDR(outer: IPNet, inner: IPNet): boolean {
  return outer.family === inner.family && outer.prefix <= inner.prefix && netContains(outer, netIP(inner));
}

function parseFamilyIP(text: string | undefined, family: 4 | 6, key: string): IP {
  let ip: IP | undefined;
  try {
    ip = text ? parseIP(text) : undefined;
  } catch {
    ip = undefined;
  }
  if (!ip || ip.family !== family) throw new Error(`annotation ${key} is not an IPv${family} address: ${JSON.stringify(text ?? '')}`);
  return ip;
}

function parseData(text: string | undefined, key: string): unknown {
  if (text === undefined || text === '' || text === 'null') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`annotation ${key} is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
  }
}

/** True when the node carries flannel's lease (`<prefix>kube-subnet-manager: "true"`). */
export function isFlannelNode(n: Node, a: Annotations): boolean {
  return annotationsOf(n)[a.subnetKubeManaged] === 'true';
}

/**
 * The lease a flannel node's annotations describe, for the families the network enables. Throws a
 * message naming what is wrong (a bad public IP, unparsable backend data, a missing pod CIDR).
 */
export function nodeToLease(n: Node, a: Annotations, flags: { enableIPv4: boolean; enableIPv6: boolean }): Lease {
  const ann = annotationsOf(n);
  const cidrs = podCIDRs(n);
  const attrs: LeaseAttrs = { publicIP: { family: 4, value: 0n } };
  const lease: Lease = { enableIPv4: false, enableIPv6: false, subnet: undefined as unknown as IPNet, attrs, expiration: 0 };
  // One family's public IP, backend data and pod CIDR, each checked in Go's order.
  const family = (f: 4 | 6, ipKey: string, dataKey: string, net: IPNet | undefined) => {
    const ip = parseFamilyIP(ann[ipKey], f, ipKey);
    const data = parseData(ann[dataKey], dataKey);
    if (!net) throw new Error(`missing IPv${f} address on n.Spec.PodCIDRs`);
    return { ip, data, net };
  };
  if (flags.enableIPv4) {
    const v4 = family(4, a.publicIP, a.backendData, cidrs.v4);
    attrs.publicIP = v4.ip;
    if (v4.data !== undefined) attrs.backendData = v4.data;
    lease.subnet = v4.net;
    lease.enableIPv4 = true;
  }
  if (flags.enableIPv6) {
    const v6 = family(6, a.publicIPv6, a.backendV6Data, cidrs.v6);
    attrs.publicIPv6 = v6.ip;
    if (v6.data !== undefined) attrs.backendV6Data = v6.data;
    lease.ipv6Subnet = v6.net;
    lease.enableIPv6 = true;
  }
  const bt = ann[a.backendType];
  if (bt) attrs.backendType = bt;
  return lease;
}

/** Identity of what a peer advertises: two equal strings mean no backend has anything to redo. */
export function leaseFingerprint(l: Lease): string {
  const a = l.attrs;
  return [
    l.subnet ? formatNet(l.subnet) : '',
    l.ipv6Subnet ? formatNet(l.ipv6Subnet) : '',
    formatIP(a.publicIP),
    a.publicIPv6 ? formatIP(a.publicIPv6) : '',
    a.backendType ?? '',
    goMarshal(a.backendData ?? null),
    goMarshal(a.backendV6Data ?? null),
  ].join('|');
}

/**
 * The owned annotations as flanneld wants them for `attrs` (Go's AcquireLease), given what the node
 * has now: `public-ip-overwrite` wins over our address, v6 keys only where the backend advertises v6.
 */
export function desiredAnnotations(current: Record<string, string>, a: Annotations, attrs: LeaseAttrs): Record<string, string> {
  const want: Record<string, string> = {};
  const type = attrs.backendType ?? '';
  const bd = goMarshal(attrs.backendData ?? null);
  const bd6 = goMarshal(attrs.backendV6Data ?? null);
  want[a.backendType] = type;
  if (((type === 'vxlan' || type === 'wireguard') && bd !== 'null') || type !== 'vxlan') {
    want[a.backendData] = bd;
    want[a.publicIP] = current[a.publicIPOverwrite] || formatIP(attrs.publicIP);
  }
  const v6 = attrs.publicIPv6;
  if (
    (type === 'vxlan' && bd6 !== 'null') ||
    (type === 'wireguard' && bd6 !== 'null' && v6) ||
    ((type === 'host-gw' || type === 'extension') && v6)
  ) {
    want[a.backendV6Data] = bd6;
    const v6text = current[a.publicIPv6Overwrite] || (v6 ? formatIP(v6) : '');
    if (v6text) want[a.publicIPv6] = v6text;
  }
  want[a.subnetKubeManaged] = 'true';
  return want;
}

/**
 * The strategic-merge patch body for the owned annotations that differ, keys sorted (what Go's
 * CreateTwoWayMergePatch produces), or undefined when nothing changes: a restart with the same values
 * sends no PATCH.
 */
export function annotationPatch(current: Record<string, string>, want: Record<string, string>): string | undefined {
  const changed = Object.keys(want)
    .filter((k) => current[k] !== want[k])
    .sort();
  if (changed.length === 0) return undefined;
  const body = Object.fromEntries(changed.map((k) => [k, want[k]!]));
  return goMarshal({ metadata: { annotations: body } });
}

/** metav1.Now() as JSON: RFC 3339 UTC, whole seconds. */
export function kubeTime(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** The NetworkUnavailable=False condition patch (CompleteLease), fields in the Go struct's order. */
export function networkAvailablePatch(now: Date): string {
  const t = kubeTime(now);
  return goMarshal({
    status: {
      conditions: [
        {
          type: 'NetworkUnavailable',
          status: 'False',
          lastHeartbeatTime: t,
          lastTransitionTime: t,
          reason: 'FlannelIsUp',
          message: 'Flannel is running on this node',
        },
      ],
    },
  });
}
