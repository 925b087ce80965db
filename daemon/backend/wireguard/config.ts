// The wireguard backend's config and lease data, as Go's pkg/backend/wireguard (wireguard.go,
// wireguard_network.go).
//
// Config (json.Unmarshal into Go's anonymous struct, case-insensitive keys):
//   ListenPort 51820, ListenPortV6 51821, MTU = the external interface's (the UNDERLAY MTU: devices and
//   FLANNEL_MTU get MTU − 80), PSK "" (base64 key), PersistentKeepaliveInterval 0 (whole seconds: Go
//   multiplies the decoded time.Duration by time.Second), Mode separate | auto | ipv4 | ipv6.
// Lease data (json.Marshal of wireguardLeaseAttrs{PublicKey string; Port uint16}):
//   BackendData {"PublicKey":"<base64>","Port":51820}, BackendV6Data {"PublicKey":"<base64>","Port":51821}.
import { GoStruct } from '../../../shared/go/json.js';
import { WgKey } from './keys.js';

export type WgMode = 'separate' | 'auto' | 'ipv4' | 'ipv6';

export const DEFAULT_LISTEN_PORT = 51820;
export const DEFAULT_LISTEN_PORT_V6 = 51821;
/** 20-byte IPv4 (or 40-byte IPv6) header + 8 UDP + 4 type + 4 key index + 8 nonce + 16 auth tag, as Go. */
export const OVERHEAD = 80;
export const DEV_V4 = 'flannel-wg';
export const DEV_V6 = 'flannel-wg-v6';
export const BACKEND_TYPE = 'wireguard';

export interface WireguardConfig {
  listenPort: number;
  listenPortV6: number;
  /** the underlay MTU */
  mtu: number;
  psk?: WgKey;
  /** seconds; 0 = off */
  keepalive: number;
  mode: WgMode;
}

export function parseWireguardConfig(raw: Record<string, unknown>, ifaceMtu: number): WireguardConfig {
  let s: GoStruct;
  let mode: string;
  const cfg: WireguardConfig = { listenPort: DEFAULT_LISTEN_PORT, listenPortV6: DEFAULT_LISTEN_PORT_V6, mtu: ifaceMtu, keepalive: 0, mode: 'separate' };
  try {
    s = GoStruct.from(raw, 'struct { ListenPort int; ListenPortV6 int; MTU int; PSK string; PersistentKeepaliveInterval time.Duration; Mode wireguard.Mode }');
    cfg.listenPort = s.int('ListenPort') ?? cfg.listenPort;
    cfg.listenPortV6 = s.int('ListenPortV6') ?? cfg.listenPortV6;
    cfg.mtu = s.int('MTU') ?? cfg.mtu;
    cfg.keepalive = s.int('PersistentKeepaliveInterval') ?? 0;
    mode = s.string('Mode') ?? 'separate';
    const psk = s.string('PSK') ?? '';
    if (psk !== '') {
      try {
        cfg.psk = WgKey.parse(psk);
      } catch (err) {
        throw new Error(`could not parse psk: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    throw new Error(`error decoding backend config: ${(err as Error).message}`, { cause: err });
  }
  if (mode !== 'separate' && mode !== 'auto' && mode !== 'ipv4' && mode !== 'ipv6') throw new Error('no valid Mode configured');
  cfg.mode = mode;
  for (const [name, p] of [['ListenPort', cfg.listenPort], ['ListenPortV6', cfg.listenPortV6]] as const) {
    if (p < 0 || p > 65535) throw new Error(`error decoding backend config: ${name} ${p} out of range 0..65535`);
  }
  if (cfg.keepalive < 0 || cfg.keepalive > 65535) throw new Error(`error decoding backend config: PersistentKeepaliveInterval ${cfg.keepalive} out of range 0..65535 seconds`);
  if (cfg.mtu - OVERHEAD <= 0) throw new Error(`MTU ${cfg.mtu} leaves no room for WireGuard's ${OVERHEAD} bytes of overhead`);
  return cfg;
}

/** wireguardLeaseAttrs, key order as Go marshals it. */
export interface WireguardLeaseAttrs {
  PublicKey: string;
  Port: number;
}

export function leaseData(publicKey: WgKey, port: number): WireguardLeaseAttrs {
  return { PublicKey: publicKey.toString(), Port: port };
}

/**
 * A peer's BackendData / BackendV6Data as Go's json.Unmarshal into wireguardLeaseAttrs reads it; a string
 * says why it cannot be used (a missing or malformed public key: Go would fail later in ParseKey).
 */
export function parseLeaseData(raw: unknown): { publicKey: WgKey; port: number } | string {
  if (raw === undefined || raw === null) return 'no BackendData';
  let s: GoStruct;
  let key: string | undefined;
  let port: number;
  try {
    s = GoStruct.from(raw, 'wireguard.wireguardLeaseAttrs');
    key = s.string('PublicKey');
    port = s.uint('Port');
  } catch (err) {
    return `failed to unmarshal BackendData: ${(err as Error).message}`;
  }
  if (port > 65535) return `failed to unmarshal BackendData: json: cannot unmarshal number ${port} into Go struct field wireguardLeaseAttrs.Port of type uint16`;
  if (!key) return 'its BackendData has no PublicKey';
  try {
    return { publicKey: WgKey.parse(key), port };
  } catch {
    return `its PublicKey ${JSON.stringify(key.slice(0, 60))} is not a WireGuard key`;
  }
}
