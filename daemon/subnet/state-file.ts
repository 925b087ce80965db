// `<dataDir>/network.json`: what this node ran on, kept across restarts (and reboots, unlike
// subnet.env under /run), written atomically on each start. Our extension; Go keeps no such file.
//
//   {
//     "version": 1,
//     "backend": { "type": "vxlan", "devices": [ { "name": "flannel.1", "vni": 1, "mac": "…" } ] },
//     "history": [ { "network": "10.244.0.0/16", "subnet": "10.244.3.0/24" }, … ]   (newest first)
//   }
//
// `backend.devices` is the only proof that a device is ours: a later start deletes a recorded device
// that the config no longer uses, and only while it is still exactly what was recorded (kind, VNI,
// MAC). `history` lets a node that goes back to an earlier Network regain the subnet it held there.
// A missing file is an empty state; an unreadable or malformed one is logged, moved aside (kept for
// the operator) and treated as empty. Reads are bounded (a state file is a few hundred bytes).
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { type IPNet, formatNet, netEqual, tryParseCIDR } from '../../shared/net/ip.js';
import { type Logger, errorMessage } from '../../shared/log.js';
import { writeFileAtomic } from './subnet-file.js';

export const STATE_FILE_NAME = 'network.json';
/** bigger than any state we write by far; a larger file is refused, not read into memory */
export const MAX_STATE_BYTES = 64 * 1024;
/** history entries kept (newest first): a few Networks × v4/v6 */
export const MAX_HISTORY = 16;

/** A device this daemon created for its backend, as it was when recorded. */
export interface DeviceRecord {
  name: string;
  kind: 'vxlan';
  vni: number;
  mac: string;
}

export interface BackendRecord {
  /** the config's backend type, lower-case (`vxlan`, `host-gw`, `alloc`, …) */
  type: string;
  devices: DeviceRecord[];
}

export interface HistoryEntry {
  network: IPNet;
  subnet: IPNet;
}

export interface NetworkState {
  backend?: BackendRecord;
  history: HistoryEntry[];
}

export function stateFilePath(dataDir: string): string {
  return join(dataDir, STATE_FILE_NAME);
}

/** The file's text, at most MAX_STATE_BYTES (more is an error); undefined when it does not exist. */
async function readBounded(path: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const buf = Buffer.alloc(MAX_STATE_BYTES + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > MAX_STATE_BYTES) throw new Error(`larger than ${MAX_STATE_BYTES} bytes`);
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    await fh.close();
  }
}

function net(v: unknown, what: string): IPNet {
  const c = typeof v === 'string' ? tryParseCIDR(v) : undefined;
  if (!c) throw new Error(`${what}: not a CIDR: ${JSON.stringify(v)}`);
  return c.net;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Decodes the file's JSON; throws on anything that is not what writeStateFile writes. */
export function parseState(text: string): NetworkState {
  const raw: unknown = JSON.parse(text);
  if (!isObj(raw) || raw.version !== 1) throw new Error('not a version 1 state object');
  const out: NetworkState = { history: [] };
  if (raw.backend !== undefined) {
    const b = raw.backend;
    if (!isObj(b) || typeof b.type !== 'string' || !Array.isArray(b.devices)) throw new Error('bad "backend"');
    const devices = b.devices.map((d, i): DeviceRecord => {
      if (!isObj(d) || typeof d.name !== 'string' || d.kind !== 'vxlan' || !Number.isInteger(d.vni) || typeof d.mac !== 'string') {
        throw new Error(`bad "backend.devices[${i}]"`);
      }
      if (!/^flannel(-v6)?\.\d+$/.test(d.name)) throw new Error(`"backend.devices[${i}]": not a flannel device name: ${JSON.stringify(d.name)}`);
      return { name: d.name, kind: 'vxlan', vni: d.vni as number, mac: d.mac.toLowerCase() };
    });
    out.backend = { type: b.type, devices };
  }
  if (raw.history !== undefined) {
    if (!Array.isArray(raw.history)) throw new Error('bad "history"');
    out.history = raw.history.slice(0, MAX_HISTORY).map((e, i): HistoryEntry => {
      if (!isObj(e)) throw new Error(`bad "history[${i}]"`);
      const entry = { network: net(e.network, `history[${i}].network`), subnet: net(e.subnet, `history[${i}].subnet`) };
      if (entry.network.family !== entry.subnet.family) throw new Error(`history[${i}]: families differ`);
      return entry;
    });
  }
  return out;
}

export function formatState(s: NetworkState): string {
  const doc = {
    version: 1,
    ...(s.backend ? { backend: s.backend } : {}),
    history: s.history.slice(0, MAX_HISTORY).map((e) => ({ network: formatNet(e.network), subnet: formatNet(e.subnet) })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** The state of the previous run; {history: []} when there is none or it cannot be used (logged). */
export async function readStateFile(dataDir: string, log: Logger): Promise<NetworkState> {
  const path = stateFilePath(dataDir);
  let text: string | undefined;
  try {
    text = await readBounded(path);
    if (text === undefined) return { history: [] };
    return parseState(text);
  } catch (err) {
    const aside = `${path}.invalid`;
    let kept = '';
    try {
      await rename(path, aside);
      kept = `; moved to ${aside}`;
    } catch {
      /* unreadable and immovable: it is overwritten at the next write */
    }
    log.warn(`ignoring ${path} (${errorMessage(err)})${kept}: no stale devices will be removed and no earlier subnet regained this time`);
    return { history: [] };
  }
}

export async function writeStateFile(dataDir: string, s: NetworkState): Promise<void> {
  await writeFileAtomic(stateFilePath(dataDir), formatState(s), 0o644);
}

/** `history` with `network → subnet` as the newest entry (an older entry for that Network and subnet goes). */
export function remember(history: readonly HistoryEntry[], network: IPNet, subnet: IPNet): HistoryEntry[] {
  const rest = history.filter((e) => !(netEqual(e.network, network) && netEqual(e.subnet, subnet)));
  return [{ network, subnet }, ...rest].slice(0, MAX_HISTORY);
}

/** The newest subnet remembered for `network` that `fits` (e.g. the current SubnetLen and range). */
export function rememberedSubnet(history: readonly HistoryEntry[], network: IPNet, fits: (sn: IPNet) => boolean): IPNet | undefined {
  return history.find((e) => netEqual(e.network, network) && fits(e.subnet))?.subnet;
}
