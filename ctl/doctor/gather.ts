// Reads this node into a Facts snapshot (facts.ts): the datastore, subnet.env, the kernel (links,
// addresses, routes, the vxlan device's neighbours and FDB), sysctls, iptables/nftables, the CNI
// directories, and the peers' probes. A read that fails is recorded, never fatal: the checks then
// report it, and every other check still runs.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { Iptables } from '../../shared/kernel/iptables.js';
import type { Kernel } from '../../shared/kernel/kernel.js';
import type { Nft } from '../../shared/kernel/nft.js';
import { resolveBin } from '../../shared/kernel/iproute2/exec.js';
import { errorMessage } from '../../shared/log.js';
import { formatIP, formatNet, netIP } from '../../shared/net/ip.js';
import { leaseNeighbor } from '../../daemon/backend/vxlan/ops.js';
import { forwardRules, ipTablesRulesExist, masqRules, POSTRTG_CHAIN } from '../../daemon/traffic/iptables-manager.js';
import { IPV4_TABLE } from '../../daemon/traffic/nftables-manager.js';
import type { Config } from '../../daemon/subnet/config.js';
import { type Datastore, readLeases, type LeaseRow } from '../datastore.js';
import type { CtlOptions } from '../flags.js';
import { findMe, readSubnetEnv } from '../node.js';
import { vxlanSettings } from './checks.js';
import type { CniFacts, Facts, ProbeResult } from './facts.js';
import { probePeer, type PingFn } from './probe.js';

export interface GatherDeps {
  kernel: Kernel;
  iptables: Iptables;
  nft: Nft;
  ping?: PingFn;
  /** which checks are skipped: their (slow) reads are too */
  skip: ReadonlySet<string>;
}

function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The CNI config files in the runtime's order (libcni: by name) and the installed plugins. */
export function readCni(confDir: string, binDirList: string): CniFacts {
  const binDirs = binDirList.split(/[:,]/).filter((d) => d !== '');
  const files: CniFacts['files'] = [];
  let names: string[] = [];
  try {
    names = readdirSync(confDir).filter((n) => /\.(conf|conflist|json)$/.test(n)).sort();
  } catch {
    /* a missing dir reads as no config */
  }
  for (const name of names) {
    try {
      files.push({ name, text: readFileSync(join(confDir, name), 'utf8') });
    } catch (err) {
      files.push({ name, error: errorMessage(err) });
    }
  }
  const executables = new Set<string>();
  for (const d of binDirs) {
    let entries: string[] = [];
    try {
      entries = readdirSync(d);
    } catch {
      continue;
    }
    for (const e of entries) {
      try {
        const p = join(d, e);
        if (statSync(p).isFile()) {
          accessSync(p, constants.X_OK);
          executables.add(e);
        }
      } catch {
        /* not executable */
      }
    }
  }
  return { confDir, files, binDirs, executables };
}

/** `ethtool -k <dev>`'s tx-checksum-ip-generic, when ethtool is installed. */
function readOffload(dev: string): Facts['offload'] {
  const kernelRelease = release();
  const bin = resolveBin('ethtool');
  if (!existsSync(bin)) return { kernelRelease, ethtool: false };
  const r = spawnSync(bin, ['-k', dev], { encoding: 'utf8', timeout: 5000 });
  const m = /^tx-checksum-ip-generic:\s*(on|off)/m.exec(r.stdout ?? '');
  return m ? { kernelRelease, ethtool: true, txChecksumIpGeneric: m[1] === 'on' } : { kernelRelease, ethtool: true };
}

async function readForward(ipt: Iptables, nft: Nft, config: Config | undefined): Promise<Facts['forward']> {
  try {
    const rules = await ipt.listRules('filter', 'FORWARD');
    const policy = /^-P FORWARD (\S+)/m.exec(rules.join('\n'))?.[1];
    let ourRules = false;
    if (config?.enableNFTables) ourRules = (await nft.listTable('ip', IPV4_TABLE))?.chains.some((c) => c.name === 'forward') ?? false;
    else if (config?.network) ourRules = await ipTablesRulesExist(ipt, forwardRules(config.network));
    return policy === undefined ? { ourRules } : { policy, ourRules };
  } catch (err) {
    return { ourRules: false, error: errorMessage(err) };
  }
}

async function readMasq(ipt: Iptables, nft: Nft, config: Config | undefined, f: Pick<Facts, 'subnetEnv'>): Promise<Facts['masq']> {
  if (f.subnetEnv.ipMasq !== true) return undefined;
  try {
    if (config?.enableNFTables) return { present: (await nft.listTable('ip', IPV4_TABLE))?.chains.some((c) => c.name === 'postrtg') ?? false };
    const net = config?.network ?? f.subnetEnv.network;
    const sub = f.subnetEnv.subnet;
    if (!net || !sub) return undefined;
    const jump = masqRules(net, sub, false)[0]!;
    return { present: (await ipt.chainExists('nat', POSTRTG_CHAIN)) && (await ipt.hasRule(jump.table, jump.chain, jump.rulespec)) };
  } catch (err) {
    return { present: false, error: errorMessage(err) };
  }
}

async function probePeers(rows: readonly LeaseRow[], me: LeaseRow | undefined, port: number, timeoutSec: number, ping?: PingFn): Promise<ProbeResult[]> {
  const targets = rows.flatMap((r) => {
    if (r === me || r.lease.attrs.backendType !== 'vxlan') return [];
    const n = leaseNeighbor(r.lease, 4);
    if (n === undefined || typeof n === 'string') return [];
    return [{ subnet: formatNet(n.subnet), publicIP: formatIP(n.publicIP), target: formatIP(netIP(n.subnet)) }];
  });
  // a few at a time: a node with many peers should not flood its own uplink
  const out: ProbeResult[] = [];
  for (let i = 0; i < targets.length; i += 16) {
    const chunk = targets.slice(i, i + 16);
    const results = await Promise.all(chunk.map((t) => probePeer(t, port, timeoutSec, ping)));
    chunk.forEach((t, j) => out.push({ ...t, ...results[j]! }));
  }
  return out;
}

export async function gatherFacts(o: CtlOptions, ds: Datastore | undefined, dsError: string | undefined, d: GatherDeps): Promise<Facts> {
  const signal = AbortSignal.timeout(30_000);
  const subnetEnv = await readSubnetEnv(o.subnetFile);
  let config: Config | undefined;
  let leases: LeaseRow[] = [];
  let datastoreError = dsError;
  if (ds && datastoreError === undefined) {
    try {
      config = await ds.config(signal);
      leases = await readLeases(ds, signal);
    } catch (err) {
      datastoreError = errorMessage(err);
    }
  }
  const { row: me, how: meHow } = findMe(leases, { subnetEnv, publicIP: o.publicIP, nodeName: o.nodeName });
  const k = d.kernel;
  const [links, addrs, routes] = await Promise.all([k.listLinks(), k.listAddrs(), k.listRoutes()]);
  const f: Facts = {
    now: Date.now(),
    subnetEnv,
    ...(config ? { config } : {}),
    ...(datastoreError !== undefined ? { datastoreError } : {}),
    leases,
    ...(me ? { me } : {}),
    meHow,
    links,
    addrs,
    routes,
    sysctl: {},
    probes: [],
    offload: { kernelRelease: release(), ethtool: false },
    cni: readCni(o.cniConfDir, o.cniBinDir),
  };
  const ipf = readSysctl('net/ipv4/ip_forward');
  const ip6f = readSysctl('net/ipv6/conf/all/forwarding');
  const br = readSysctl('net/bridge/bridge-nf-call-iptables');
  if (ipf !== undefined) f.sysctl.ipForward = ipf;
  if (ip6f !== undefined) f.sysctl.ip6Forward = ip6f;
  if (br !== undefined) f.sysctl.brNfCallIptables = br;
  // the remaining reads are independent: run them side by side (each is a few execs or a probe)
  const vxlan = async () => {
    if (config?.backendType !== 'vxlan') return;
    const { dev, port } = vxlanSettings(config.backend);
    const probes = d.skip.has('probe') ? Promise.resolve([]) : probePeers(leases, me, port, o.probeTimeout, d.ping);
    if (links.some((l) => l.name === dev)) {
      const [vr, neighs, fdb] = await Promise.all([k.listRoutes({ family: 4, dev }), k.listNeighs(dev), k.listFdb(dev)]);
      f.vxlan = { dev, port, routes: vr, neighs, fdb };
      f.offload = readOffload(dev);
    }
    f.probes = await probes;
  };
  const traffic = async () => {
    if (d.skip.has('forward')) return;
    const [fwd, masq] = await Promise.all([readForward(d.iptables, d.nft, config), readMasq(d.iptables, d.nft, config, f)]);
    if (fwd) f.forward = fwd;
    if (masq) f.masq = masq;
  };
  await Promise.all([vxlan(), traffic()]);
  return f;
}
