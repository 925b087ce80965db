// Golden tests against Go flannel's formats (pkg/backend/wireguard): the key file (wgtypes Key.String(),
// written by writePrivateKey with no newline), the lease data (json.Marshal of wireguardLeaseAttrs
// {PublicKey string; Port uint16}) inside the lease value, the config defaults and errors, and the
// UAPI lines wireguard-go is configured with.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseIP } from '../../../../../shared/net/ip.js';
import { marshalLeaseAttrs } from '../../../../../daemon/subnet/lease-json.js';
import { leaseData, parseLeaseData, parseWireguardConfig } from '../../../../../daemon/backend/wireguard/config.js';
import { keyFilePath, loadOrCreateKey, WgKey } from '../../../../../daemon/backend/wireguard/keys.js';
import { uapiSetRequest } from '../../../../../daemon/backend/wireguard/control.js';

// RFC 7748 §6.1 (Alice): the X25519 pair; `wg pubkey` agrees.
const PRIV = 'dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=';
const PUB = 'hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=';

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'h9-wgkey-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('keys', () => {
  it('derives the public key with X25519 (RFC 7748 vector) and prints keys as Go (base64, padded)', () => {
    const k = WgKey.parse(PRIV);
    expect(k.publicKey().toString()).toBe(PUB);
    expect(k.toString()).toBe(PRIV);
    expect(JSON.stringify({ k })).not.toContain(PRIV);
  });

  it('generates clamped keys, as wgtypes.GeneratePrivateKey', () => {
    const k = WgKey.generatePrivate(() => Buffer.alloc(32, 0xff));
    expect(k.bytes[0]).toBe(0xf8);
    expect(k.bytes[31]).toBe(0x7f);
    expect(k.toString()).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  it("reads Go's key file (44 base64 characters, no newline) and keeps the public key across restarts", async () => {
    const d = tmp();
    const path = join(d, 'wgkey');
    writeFileSync(path, PRIV, { mode: 0o400 });
    const k = await loadOrCreateKey(path);
    expect(k).toMatchObject({ created: false });
    expect(k.publicKey.toString()).toBe(PUB);
    writeFileSync(path, `${PRIV}\n`); // Go's base64 decoder skips newlines
    expect((await loadOrCreateKey(path)).publicKey.toString()).toBe(PUB);
  });

  it("writes a new key in Go's format, mode 0600, under the data dir, and reads the same key back", async () => {
    const d = tmp();
    const path = keyFilePath(join(d, 'state'), {});
    expect(path).toBe(join(d, 'state', 'wgkey'));
    const first = await loadOrCreateKey(path);
    expect(first.created).toBe(true);
    const text = readFileSync(path, 'utf8');
    expect(text).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateKey(path);
    expect(again.created).toBe(false);
    expect(again.publicKey.toString()).toBe(first.publicKey.toString());
  });

  it('honours WIREGUARD_KEY_FILE as Go, and refuses a file that is not a key', async () => {
    expect(keyFilePath('/x', { WIREGUARD_KEY_FILE: '/etc/wg/key' })).toBe('/etc/wg/key');
    const path = join(tmp(), 'wgkey');
    writeFileSync(path, 'not a key');
    await expect(loadOrCreateKey(path)).rejects.toThrow(/could not parse private key from file/);
  });
});

describe('lease data', () => {
  it("is Go's wireguardLeaseAttrs inside the lease value, byte for byte", () => {
    const pub = WgKey.parse(PUB);
    const json = marshalLeaseAttrs({
      publicIP: parseIP('192.168.100.1'),
      publicIPv6: parseIP('fd00:100::1'),
      backendType: 'wireguard',
      backendData: leaseData(pub, 51820),
      backendV6Data: leaseData(pub, 51821),
    });
    expect(json).toBe(
      `{"PublicIP":"192.168.100.1","PublicIPv6":"fd00:100::1","BackendType":"wireguard","BackendData":{"PublicKey":"${PUB}","Port":51820},"BackendV6Data":{"PublicKey":"${PUB}","Port":51821}}`,
    );
  });

  it('reads a peer as Go does (case-insensitive keys, Port 0 or absent from older flannel)', () => {
    expect(parseLeaseData({ publickey: PUB })).toMatchObject({ port: 0 });
    expect(parseLeaseData({ PublicKey: PUB, Port: 51820 })).toMatchObject({ port: 51820 });
    expect(parseLeaseData({ PublicKey: 'x' })).toMatch(/is not a WireGuard key/);
    expect(parseLeaseData({})).toMatch(/no PublicKey/);
    expect(parseLeaseData({ PublicKey: PUB, Port: 70000 })).toMatch(/uint16/);
  });
});

describe('config', () => {
  it("has Go's defaults and reads its keys case-insensitively", () => {
    expect(parseWireguardConfig({ Type: 'wireguard' }, 1500)).toEqual({ listenPort: 51820, listenPortV6: 51821, mtu: 1500, keepalive: 0, mode: 'separate' });
    const c = parseWireguardConfig({ listenport: 1000, ListenPortV6: 1001, MTU: 1400, PersistentKeepaliveInterval: 25, Mode: 'auto', PSK: PRIV }, 1500);
    expect(c).toMatchObject({ listenPort: 1000, listenPortV6: 1001, mtu: 1400, keepalive: 25, mode: 'auto' });
    expect(c.psk?.toString()).toBe(PRIV);
  });

  it("fails as Go on a bad Mode or PSK or a mistyped field", () => {
    expect(() => parseWireguardConfig({ Mode: 'both' }, 1500)).toThrow('no valid Mode configured');
    expect(() => parseWireguardConfig({ PSK: 'short' }, 1500)).toThrow(/error decoding backend config: could not parse psk/);
    expect(() => parseWireguardConfig({ ListenPort: '51820' }, 1500)).toThrow(/error decoding backend config: json: cannot unmarshal string/);
  });
});

describe('UAPI', () => {
  it('writes the cross-platform set protocol: hex keys, replace_allowed_ips before the allowed IPs, a blank line at the end', () => {
    const priv = WgKey.parse(PRIV);
    const pub = WgKey.parse(PUB);
    expect(uapiSetRequest({ privateKey: priv, listenPort: 51820, replacePeers: true })).toBe(
      `set=1\nprivate_key=77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a\nlisten_port=51820\nreplace_peers=true\n\n`,
    );
    expect(uapiSetRequest({ peers: [{ publicKey: pub, endpoint: '192.168.100.2:51820', keepalive: 0, allowedIPs: ['10.244.2.0/24'] }, { publicKey: priv, remove: true }] })).toBe(
      'set=1\npublic_key=8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a\nendpoint=192.168.100.2:51820\npersistent_keepalive_interval=0\n' +
        'replace_allowed_ips=true\nallowed_ip=10.244.2.0/24\npublic_key=77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a\nremove=true\n\n',
    );
  });
});
