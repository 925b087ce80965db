// subnet.env (pkg/subnet WriteSubnetFile): written atomically (temp file in the same directory,
// fsync, rename) with mode exactly 0644 whatever the umask, lines in Go's order:
//   FLANNEL_NETWORK=10.42.0.0/16
//   FLANNEL_SUBNET=10.42.0.1/24          (first usable address of the lease subnet)
//   FLANNEL_IPV6_NETWORK=... / FLANNEL_IPV6_SUBNET=...   (if IPv6 is enabled)
//   FLANNEL_MTU=1450
//   FLANNEL_IPMASQ=true
// readPreviousSubnets reads it back as main.ReadCIDRFromSubnetFile does (godotenv; comma lists;
// invalid entries skipped; more than one valid entry counts as none).
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type IPNet, formatIP, formatNet, netIP, nextIP, tryParseCIDR } from '../../shared/net/ip.js';

export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env';

export interface SubnetFileContent {
  network?: IPNet;
  subnet?: IPNet;
  ipv6Network?: IPNet;
  ipv6Subnet?: IPNet;
  mtu: number;
  ipMasq: boolean;
}

function firstUsable(sn: IPNet): string {
  return `${formatIP(nextIP(netIP(sn)))}/${sn.prefix}`;
}

export function formatSubnetFile(c: SubnetFileContent): string {
  let s = '';
  if (c.network && c.subnet) s += `FLANNEL_NETWORK=${formatNet(c.network)}\nFLANNEL_SUBNET=${firstUsable(c.subnet)}\n`;
  if (c.ipv6Network && c.ipv6Subnet) {
    s += `FLANNEL_IPV6_NETWORK=${formatNet(c.ipv6Network)}\nFLANNEL_IPV6_SUBNET=${firstUsable(c.ipv6Subnet)}\n`;
  }
  s += `FLANNEL_MTU=${c.mtu}\nFLANNEL_IPMASQ=${c.ipMasq ? 'true' : 'false'}\n`;
  return s;
}

/** renameio.WriteFile(path, data, 0644, IgnoreUmask): atomic replace, mode 0644. */
export async function writeFileAtomic(path: string, data: string, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // ignore the umask
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function writeSubnetFile(path: string, c: SubnetFileContent): Promise<void> {
  await writeFileAtomic(path, formatSubnetFile(c));
}

/** A small godotenv.Read: KEY=VALUE lines, `export ` prefix, # comments, single/double quotes. */
export function parseDotEnv(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (let line of text.split(/\r?\n/)) {
    line = line.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('export ')) line = line.slice(7).trim();
    const eq = line.search(/[=:]/);
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
    } else {
      const hash = value.indexOf(' #');
      if (hash >= 0) value = value.slice(0, hash).trim();
    }
    out.set(key, value);
  }
  return out;
}

/** ReadCIDRsFromSubnetFile: every valid CIDR of a comma list, as a masked network. */
export function parseCIDRList(value: string | undefined): IPNet[] {
  if (!value) return [];
  return value.split(',').flatMap((s) => {
    const c = tryParseCIDR(s.trim());
    return c ? [c.net] : [];
  });
}

/** ReadCIDRFromSubnetFile: exactly one valid entry, else none. */
function single(value: string | undefined): IPNet | undefined {
  const l = parseCIDRList(value);
  return l.length === 1 ? l[0] : undefined;
}

export interface PreviousSubnets {
  network?: IPNet;
  subnet?: IPNet;
  ipv6Network?: IPNet;
  ipv6Subnet?: IPNet;
}

/** The previous run's subnets; a missing or unreadable file gives {}. */
export async function readPreviousSubnets(path: string): Promise<PreviousSubnets> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return {};
  }
  const env = parseDotEnv(text);
  const out: PreviousSubnets = {};
  const n = single(env.get('FLANNEL_NETWORK'));
  const s = single(env.get('FLANNEL_SUBNET'));
  const n6 = single(env.get('FLANNEL_IPV6_NETWORK'));
  const s6 = single(env.get('FLANNEL_IPV6_SUBNET'));
  if (n) out.network = n;
  if (s) out.subnet = s;
  if (n6) out.ipv6Network = n6;
  if (s6) out.ipv6Subnet = s6;
  return out;
}
