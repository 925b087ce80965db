// subnet.env as the flannel CNI plugin reads it (flannel-io/cni-plugin loadFlannelSubnetEnv, HEAD):
// line by line, `KEY=VALUE` split at the first `=`, no trimming (only bufio.Scanner's one trailing `\r`
// is dropped), unknown keys / blank lines / comments ignored, last duplicate wins.
//
//   FLANNEL_NETWORK / FLANNEL_IPV6_NETWORK  comma list of CIDRs, each net.ParseCIDR'ed, de-duplicated
//   FLANNEL_SUBNET / FLANNEL_IPV6_SUBNET    net.ParseCIDR → the *network* (10.244.1.1/24 → 10.244.1.0/24)
//   FLANNEL_MTU                             strconv.ParseUint(v, 10, 32)
//   FLANNEL_IPMASQ                          v == "true" (anything else is false)
//
// Then the missing-key check, in the reference's order and wording: `<path> is missing K1, K2`.
// Errors here are the bare Go texts; cmdAdd wraps them with the operator hint.
//
// Where we differ from Go on purpose: the file is read bounded (shared/fs/read-bounded.ts): a regular
// file of at most 1 MiB. Go reads any file line by line without end (an endless file of short lines
// never answers); a FIFO, device or directory here is `read <path>: not a regular file (...)`.
import { goQuote } from '../../shared/go/quote.js';
import { pathError, readErrorOp } from '../../shared/go/errors.js';
import { MAX_LINE, MAX_STATE_FILE, readFileBounded } from '../../shared/fs/read-bounded.js';
import { formatNet, parseCIDR, type IPNet } from '../../shared/net/ip.js';

export interface SubnetEnv {
  nws: IPNet[];
  sn?: IPNet;
  ip6Nws: IPNet[];
  ip6Sn?: IPNet;
  mtu?: number;
  ipmasq?: boolean;
}

/**
 * A recognised key without `=` makes the Go plugin index past the split (a runtime panic, exit 2). We
 * report it as an ordinary error carrying the same runtime text, so the runtime still gets CNI JSON.
 */
const NO_VALUE = 'runtime error: index out of range [1] with length 1';

export function parseSubnetEnv(text: string, path: string): SubnetEnv {
  const se: SubnetEnv = { nws: [], ip6Nws: [] };
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (let line of lines) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (Buffer.byteLength(line) >= MAX_LINE) throw new Error('bufio.Scanner: token too long');
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    const value = eq < 0 ? undefined : line.slice(eq + 1);
    switch (key) {
      case 'FLANNEL_NETWORK':
        se.nws = parseCidrList(need(value));
        break;
      case 'FLANNEL_IPV6_NETWORK':
        se.ip6Nws = parseCidrList(need(value));
        break;
      case 'FLANNEL_SUBNET':
        se.sn = parseCIDR(need(value)).net;
        break;
      case 'FLANNEL_IPV6_SUBNET':
        se.ip6Sn = parseCIDR(need(value)).net;
        break;
      case 'FLANNEL_MTU':
        se.mtu = parseUint32(need(value));
        break;
      case 'FLANNEL_IPMASQ':
        se.ipmasq = need(value) === 'true';
        break;
      default:
        break;
    }
  }
  const missing = missingKeys(se);
  if (missing !== '') throw new Error(`${path} is missing ${missing}`);
  return se;
}

function need(value: string | undefined): string {
  if (value === undefined) throw new Error(NO_VALUE);
  return value;
}

function parseCidrList(value: string): IPNet[] {
  const out: IPNet[] = [];
  const seen = new Set<string>();
  for (const item of value.split(',')) {
    const net = parseCIDR(item).net;
    const key = formatNet(net);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(net);
  }
  return out;
}

/** strconv.ParseUint(v, 10, 32) with Go's error texts. */
function parseUint32(v: string): number {
  if (!/^[0-9]+$/.test(v)) throw new Error(`strconv.ParseUint: parsing ${goQuote(v)}: invalid syntax`);
  const n = Number(v);
  if (n > 0xffffffff) throw new Error(`strconv.ParseUint: parsing ${goQuote(v)}: value out of range`);
  return n;
}

/** subnetEnv.missing(): the absent keys joined by ", " in the reference's order ('' when complete). */
export function missingKeys(se: SubnetEnv): string {
  const m: string[] = [];
  if (se.nws.length === 0 && se.ip6Nws.length === 0) m.push('FLANNEL_NETWORK', 'FLANNEL_IPV6_NETWORK');
  if (se.sn === undefined && se.ip6Sn === undefined) m.push('FLANNEL_SUBNET', 'FLANNEL_IPV6_SUBNET');
  if (se.mtu === undefined) m.push('FLANNEL_MTU');
  if (se.ipmasq === undefined) m.push('FLANNEL_IPMASQ');
  return m.join(', ');
}

/** The operator-facing wrapper the plugin puts around every subnet.env failure. */
export function subnetEnvError(cause: string): Error {
  return new Error(`failed to load flannel 'subnet.env' file: ${cause}. Check the flannel pod log for this node.`);
}

/** subnet.env as read from disk: a regular file of at most MAX_STATE_FILE bytes. */
export const readSubnetEnvFile = (path: string): Buffer => readFileBounded(path, MAX_STATE_FILE);

/** loadFlannelSubnetEnv: reads and parses the file; errors are the bare Go texts (`open <path>: ...`). */
export function readSubnetEnv(path: string, readFile: (p: string) => Buffer = readSubnetEnvFile): SubnetEnv {
  let data: Buffer;
  try {
    data = readFile(path);
  } catch (err) {
    // os.Open succeeds on a directory (or a device); the scanner's first read is what fails there.
    throw pathError(readErrorOp(err), path, err);
  }
  return parseSubnetEnv(data.toString('utf8'), path);
}
