// The lease value (Go lease.LeaseAttrs, json.Marshal): fields in Go's order, PublicIPv6 as null when
// absent, BackendType/BackendData/BackendV6Data omitted when empty, Backend*Data embedded as JSON.
//   {"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":".."}}
import { type IP, formatIP, parseIP } from '../../shared/net/ip.js';
import type { LeaseAttrs } from '../lease.js';
import { goField, goMarshal, goQuote, isObject } from './go-fields.js';

export function marshalLeaseAttrs(a: LeaseAttrs): string {
  let s = `{"PublicIP":${goQuote(formatIP(a.publicIP))},"PublicIPv6":${a.publicIPv6 ? goQuote(formatIP(a.publicIPv6)) : 'null'}`;
  if (a.backendType) s += `,"BackendType":${goQuote(a.backendType)}`;
  if (a.backendData !== undefined && a.backendData !== null) s += `,"BackendData":${goMarshal(a.backendData)}`;
  if (a.backendV6Data !== undefined && a.backendV6Data !== null) s += `,"BackendV6Data":${goMarshal(a.backendV6Data)}`;
  return `${s}}`;
}

function publicIP(v: unknown, family: 4 | 6, field: string): IP | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new TypeError(`invalid ${field} ${JSON.stringify(v)}`);
  const ip = parseIP(v);
  if (ip.family !== family) throw new TypeError(`invalid ${field} ${JSON.stringify(v)}`);
  return ip;
}

/** Decodes a lease value as Go's json.Unmarshal into LeaseAttrs does (case-insensitive keys). */
export function parseLeaseAttrs(text: string): LeaseAttrs {
  const raw: unknown = JSON.parse(text);
  if (!isObject(raw)) throw new TypeError('lease value is not a JSON object');
  const bt = goField(raw, 'BackendType');
  if (bt !== undefined && bt !== null && typeof bt !== 'string') throw new TypeError('invalid BackendType');
  const attrs: LeaseAttrs = {
    publicIP: publicIP(goField(raw, 'PublicIP'), 4, 'PublicIP') ?? { family: 4, value: 0n },
  };
  const v6 = publicIP(goField(raw, 'PublicIPv6'), 6, 'PublicIPv6');
  if (v6) attrs.publicIPv6 = v6;
  if (bt) attrs.backendType = bt;
  const bd = goField(raw, 'BackendData');
  if (bd !== undefined && bd !== null) attrs.backendData = bd;
  const bd6 = goField(raw, 'BackendV6Data');
  if (bd6 !== undefined && bd6 !== null) attrs.backendV6Data = bd6;
  return attrs;
}
