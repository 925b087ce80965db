// The lease value (Go lease.LeaseAttrs, json.Marshal): fields in Go's order, PublicIPv6 as null when
// absent, BackendType/BackendData/BackendV6Data omitted when empty, Backend*Data embedded as JSON.
//   {"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":".."}}
import { type IP, formatIP, parseIP } from '../../shared/net/ip.js';
import { field, isObject, marshal, marshalString } from '../../shared/go/json.js';
import type { LeaseAttrs } from '../lease.js';

export function marshalLeaseAttrs(a: LeaseAttrs): string {
  let s = `{"PublicIP":${marshalString(formatIP(a.publicIP))},"PublicIPv6":${a.publicIPv6 ? marshalString(formatIP(a.publicIPv6)) : 'null'}`;
  if (a.backendType) s += `,"BackendType":${marshalString(a.backendType)}`;
  if (a.backendData !== undefined && a.backendData !== null) s += `,"BackendData":${marshal(a.backendData)}`;
  if (a.backendV6Data !== undefined && a.backendV6Data !== null) s += `,"BackendV6Data":${marshal(a.backendV6Data)}`;
  return `${s}}`;
}

function publicIP(v: unknown, family: 4 | 6, name: string): IP | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new TypeError(`invalid ${name} ${JSON.stringify(v)}`);
  const ip = parseIP(v);
  if (ip.family !== family) throw new TypeError(`invalid ${name} ${JSON.stringify(v)}`);
  return ip;
}

/** Decodes a lease value as Go's json.Unmarshal into LeaseAttrs does (case-insensitive keys, null = absent). */
export function parseLeaseAttrs(text: string): LeaseAttrs {
  const raw: unknown = JSON.parse(text);
  if (!isObject(raw)) throw new TypeError('lease value is not a JSON object');
  const bt = field(raw, 'BackendType');
  if (bt !== undefined && typeof bt !== 'string') throw new TypeError('invalid BackendType');
  const attrs: LeaseAttrs = {
    publicIP: publicIP(field(raw, 'PublicIP'), 4, 'PublicIP') ?? { family: 4, value: 0n },
  };
  const v6 = publicIP(field(raw, 'PublicIPv6'), 6, 'PublicIPv6');
  if (v6) attrs.publicIPv6 = v6;
  if (bt) attrs.backendType = bt;
  const bd = field(raw, 'BackendData');
  if (bd !== undefined) attrs.backendData = bd;
  const bd6 = field(raw, 'BackendV6Data');
  if (bd6 !== undefined) attrs.backendV6Data = bd6;
  return attrs;
}
