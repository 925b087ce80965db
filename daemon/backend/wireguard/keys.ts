// WireGuard keys as Go flannel keeps them (pkg/backend/wireguard/device.go setupKeys, wgctrl's wgtypes):
// a Curve25519 private key, 32 bytes, clamped as wgtypes.GeneratePrivateKey does, written as standard
// base64 with padding (44 characters, no newline) to one file, and read back on the next start so the
// public key every peer holds stays the same across restarts.
//
// The file: Go's path is the fixed /run/flannel/wgkey (env WIREGUARD_KEY_FILE overrides it). We keep
// WIREGUARD_KEY_FILE, and otherwise use `<data dir>/wgkey` (--data-dir, where our other restart state
// lives), so two flanneld on one machine (the lab) do not share a key. Mode 0600 (Go: 0400); the
// directory is created 0755 as Go's MkdirAll. The private key is never logged.
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const KEY_LEN = 32;
export const KEY_FILE_NAME = 'wgkey';
/** PKCS#8 DER header of an X25519 private key (RFC 8410), followed by the 32 raw bytes. */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** A 32-byte WireGuard key. */
export class WgKey {
  private constructor(readonly bytes: Buffer) {}

  /** wgtypes.ParseKey: standard base64 of exactly 32 bytes (Go's decoder skips \r and \n). */
  static parse(text: string): WgKey {
    const s = text.replace(/[\r\n]/g, '');
    if (!/^[A-Za-z0-9+/]{43}=$/.test(s)) throw new Error('wgtypes: failed to parse base64-encoded key: not 32 bytes of standard base64');
    return new WgKey(Buffer.from(s, 'base64'));
  }

  static fromBytes(b: Buffer): WgKey {
    if (b.length !== KEY_LEN) throw new Error(`wgtypes: incorrect key size: ${b.length}`);
    return new WgKey(Buffer.from(b));
  }

  /** wgtypes.GeneratePrivateKey: 32 random bytes, clamped for Curve25519. */
  static generatePrivate(random: (n: number) => Buffer = randomBytes): WgKey {
    const b = Buffer.from(random(KEY_LEN));
    b[0]! &= 248;
    b[31] = (b[31]! & 127) | 64;
    return new WgKey(b);
  }

  /** The public key of this private key (X25519 with the base point), through node:crypto. */
  publicKey(): WgKey {
    const priv = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, this.bytes]), format: 'der', type: 'pkcs8' });
    const jwk = createPublicKey(priv).export({ format: 'jwk' });
    return new WgKey(Buffer.from(jwk.x!, 'base64url'));
  }

  /** Key.String(): standard base64 with padding. */
  toString(): string {
    return this.bytes.toString('base64');
  }

  /** The UAPI wire form: lower-case hex. */
  hex(): string {
    return this.bytes.toString('hex');
  }

  /** never the key itself in a log line or an inspect */
  toJSON(): string {
    return '[WgKey]';
  }
}

/** Where the private key lives: WIREGUARD_KEY_FILE as Go, else `<stateDir>/wgkey`. */
export function keyFilePath(stateDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.WIREGUARD_KEY_FILE;
  return fromEnv !== undefined ? fromEnv : join(stateDir, KEY_FILE_NAME);
}

export interface LoadedKey {
  privateKey: WgKey;
  publicKey: WgKey;
  /** true when the key was generated (and written) now */
  created: boolean;
}

/**
 * setupKeys: reads the private key from `path`, or, when the file does not exist, generates one and
 * writes it (base64, no newline, mode 0600, created exclusively so a racing writer never mixes keys).
 */
export async function loadOrCreateKey(path: string, random?: (n: number) => Buffer): Promise<LoadedKey> {
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`could not read key file ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (text !== undefined) {
    let privateKey: WgKey;
    try {
      privateKey = WgKey.parse(text);
    } catch (err) {
      throw new Error(`could not parse private key from file ${path}: ${(err as Error).message}`, { cause: err });
    }
    return { privateKey, publicKey: privateKey.publicKey(), created: false };
  }
  const privateKey = WgKey.generatePrivate(random);
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o755 });
    const f = await open(path, 'wx', 0o600);
    try {
      await f.writeFile(privateKey.toString());
    } finally {
      await f.close();
    }
    await chmod(path, 0o600); // the umask may have taken bits off; never more than 0600 anyway
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateKey(path, random);
    throw new Error(`could not write key file: ${(err as Error).message}`, { cause: err });
  }
  return { privateKey, publicKey: privateKey.publicKey(), created: true };
}
