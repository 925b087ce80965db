// `flannelctl leases`: every lease of the datastore as a table (or JSON with -o json): subnet(s),
// public IP, backend, the backend's key (vxlan VtepMAC, wireguard PublicKey), expiry, age, node, and
// `*` on this node's row.
import { field } from '../shared/go/json.js';
import { formatIP, formatNet } from '../shared/net/ip.js';
import type { Lease } from '../daemon/lease.js';
import { SUBNET_TTL_SEC } from '../daemon/subnet/etcd/registry.js';
import type { LeaseRow } from './datastore.js';

export interface LeaseView {
  me: boolean;
  subnet: string;
  ipv6Subnet?: string;
  publicIP: string;
  publicIPv6?: string;
  backend: string;
  /** vxlan VtepMAC, wireguard PublicKey, … ('' when the backend has none) */
  key: string;
  /** ISO time; undefined for a reservation or when unknown (kube mode: leases do not expire) */
  expires?: string;
  /** seconds since the lease was last taken or renewed (etcd: 24 h TTL minus what is left) */
  ageSeconds?: number;
  reservation: boolean;
  node?: string;
}

/** The backend data's key field: the vxlan VtepMAC, the wireguard PublicKey. */
export function backendKey(l: Lease): string {
  const d = l.attrs.backendData;
  if (typeof d !== 'object' || d === null) return '';
  for (const name of ['VtepMAC', 'PublicKey']) {
    const v = field(d as Record<string, unknown>, name);
    if (typeof v === 'string') return v;
  }
  return '';
}

export function leaseView(row: LeaseRow, me: boolean, now: number): LeaseView {
  const l = row.lease;
  const v: LeaseView = {
    me,
    subnet: l.subnet ? formatNet(l.subnet) : '',
    publicIP: formatIP(l.attrs.publicIP),
    backend: l.attrs.backendType ?? '',
    key: backendKey(l),
    reservation: l.reservation === true,
  };
  if (l.ipv6Subnet) v.ipv6Subnet = formatNet(l.ipv6Subnet);
  if (l.attrs.publicIPv6) v.publicIPv6 = formatIP(l.attrs.publicIPv6);
  if (!l.reservation && l.expiration > 0) {
    v.expires = new Date(l.expiration).toISOString();
    v.ageSeconds = Math.max(0, Math.round(SUBNET_TTL_SEC - (l.expiration - now) / 1000));
  }
  if (row.node) v.node = row.node;
  return v;
}

/** 90 → `1m30s`, 7200 → `2h0m` (kubectl's short ages). */
export function shortDuration(sec: number): string {
  if (sec < 60) return `${sec}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m${sec % 60}s`;
  if (sec < 86400) return `${Math.floor(sec / 3600)}h${Math.floor((sec % 3600) / 60)}m`;
  return `${Math.floor(sec / 86400)}d${Math.floor((sec % 86400) / 3600)}h`;
}

function expiresColumn(v: LeaseView, now: number): string {
  if (v.reservation) return 'reserved';
  if (v.expires === undefined) return '-';
  const left = Math.round((Date.parse(v.expires) - now) / 1000);
  return left <= 0 ? 'expired' : `in ${shortDuration(left)}`;
}

export function formatLeaseTable(views: readonly LeaseView[], now: number): string {
  const head = ['', 'SUBNET', 'PUBLIC-IP', 'BACKEND', 'VTEPMAC/KEY', 'EXPIRES', 'AGE', 'NODE'];
  const rows = views.map((v) => [
    v.me ? '*' : '',
    v.ipv6Subnet ? `${v.subnet},${v.ipv6Subnet}` : v.subnet,
    v.publicIPv6 ? `${v.publicIP},${v.publicIPv6}` : v.publicIP,
    v.backend || '-',
    v.key || '-',
    expiresColumn(v, now),
    v.ageSeconds !== undefined ? shortDuration(v.ageSeconds) : '-',
    v.node ?? '-',
  ]);
  const all = [head, ...rows];
  // the marker column keeps its width with no `*` in it, so scripts can cut columns by position
  const width = head.map((_, i) => Math.max(i === 0 ? 1 : 0, ...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(width[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}
