// Runs scripts/lab/lib.sh functions for the e2e tests, each lab in its own namespaces (a per-process
// prefix) and its own temp state dir.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, ROOT } from '../helpers/paths.js';

export type LabRun = { status: number; stdout: string; stderr: string };

/** `lab(script, allowFail)`: runs lab shell functions with `env`; throws with the output on failure unless allowFail. */
export function labShell(env: NodeJS.ProcessEnv): (script: string, allowFail?: boolean) => LabRun {
  return (script, allowFail = false) => {
    const r = spawnSync('bash', ['-c', `. scripts/lab/lib.sh; ${script}`], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
    const res = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    if (res.status !== 0 && !allowFail) throw new Error(`lab: ${script} → ${res.status}\n${res.stdout}\n${res.stderr}`);
    return res;
  };
}

/** Whether a lab can run here: root, etcd, ping (plus `tools`), the built flanneld, and cnitool unless pods are added by hand. */
export function labCanRun(tools: readonly string[] = [], needCnitool = true): boolean {
  const executable = (p: string) => spawnSync('test', ['-x', p]).status === 0;
  return (
    process.getuid?.() === 0 &&
    spawnSync('which', ['etcd', 'etcdctl', 'ping', ...tools]).status === 0 &&
    executable(bin('flanneld')) &&
    (!needCnitool || executable(bin('cnitool')))
  );
}

export interface LabOptions {
  /** names the temp dir (flannel-e2e-<name>-) */
  name: string;
  /** namespace prefix before the pid (`fl-e2e` → fl-e2e-<pid>-h1) */
  prefix: string;
  hosts: number;
  pods: number;
  /** the network config put into etcd (LAB_CONFIG), else lib.sh's vxlan default */
  config?: string;
}

/** etcd key of the lease for `subnet` (10.10.16.0/20 → /coreos.com/network/subnets/10.10.16.0-20). */
export const leaseKey = (subnet: string): string => `/coreos.com/network/subnets/${subnet.replace('/', '-')}`;

/** What the lab says about host i (vxlan: its VTEP). */
export interface LabHost {
  /** the host's lease, 10.10.16.0/20 */
  subnet: string;
  /** the subnet's first address: flannel.100's address, the gateway of the routes to this host */
  gw: string;
  /** flannel.100's MAC */
  mac: string;
  /** underlay address */
  ip: string;
}

export interface Lab {
  dir: string;
  env: NodeJS.ProcessEnv;
  run: (script: string, allowFail?: boolean) => LabRun;
  /** a lab namespace's full name: ns('h1p1') */
  ns(name: string): string;
  /** argv inside host i's namespace */
  inHost(i: number, argv: string[]): SpawnSyncReturns<string>;
  flanneldLog(i: number): string;
  host(i: number): LabHost;
  /** what host i holds for peer p (vxlan): its route, neighbour and FDB entry, '' each when missing */
  peerEntries(i: number, p: LabHost): { route: string; neigh: string; fdb: string };
  /** a key's value in the lab's etcd, '' when missing */
  etcdGet(key: string): string;
  /** a ping every 0.2 s from pod `pod` (h1p1) to `dst`, until stop() */
  ping(pod: string, dst: string): Pinger;
  /** lab_down, then the state dir goes */
  down(): void;
}

export interface PingSummary {
  sent: number;
  received: number;
  /** replies that came after the next request went out (ping -O: "no answer yet") */
  late: number;
  /** ping's whole output, for assertion messages */
  text: string;
}

export interface Pinger {
  /** replies so far */
  replies(): number;
  /** ends ping with SIGINT (it prints its summary) and returns the counts (0 when there is no summary) */
  stop(): Promise<PingSummary>;
}

function pinger(netns: string, dst: string): Pinger {
  // `ip netns exec` execs ping in place, so the SIGINT reaches ping itself
  const p = spawn('ip', ['netns', 'exec', netns, 'ping', '-n', '-O', '-i', '0.2', '-W', '1', dst], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  p.stdout.on('data', (d: Buffer) => (text += d.toString()));
  p.stderr.on('data', (d: Buffer) => (text += d.toString()));
  // 'close', not 'exit': the summary ping prints on SIGINT may still be in the pipe when it exits
  const exited = new Promise((r) => p.once('close', r));
  return {
    replies: () => text.split('\n').filter((l) => l.includes('bytes from')).length,
    async stop() {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGINT');
      await exited;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(text);
      return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0), late: (text.match(/no answer yet/g) ?? []).length, text };
    },
  };
}

export function newLab(o: LabOptions): Lab {
  const dir = mkdtempSync(join(tmpdir(), `flannel-e2e-${o.name}-`));
  const prefix = `${o.prefix}-${process.pid}-`;
  const env: NodeJS.ProcessEnv = { ...process.env, LAB_DIR: dir, LAB_PREFIX: prefix, LAB_HOSTS: String(o.hosts), LAB_PODS: String(o.pods) };
  if (o.config !== undefined) env.LAB_CONFIG = o.config;
  const run = labShell(env);
  const inHost = (i: number, argv: string[]) => spawnSync('ip', ['netns', 'exec', `${prefix}h${i}`, ...argv], { encoding: 'utf8' });
  return {
    dir,
    env,
    run,
    ns: (name) => `${prefix}${name}`,
    inHost,
    flanneldLog: (i) => readFileSync(join(dir, `h${i}`, 'flanneld.log'), 'utf8'),
    host(i) {
      const subnet = run(`lab_host_subnet ${i}`).stdout.trim();
      return { subnet, gw: subnet.split('/')[0]!, mac: run(`lab_vtep_mac ${i}`).stdout.trim(), ip: `192.168.100.${i}` };
    },
    peerEntries: (i, p) => ({
      route: inHost(i, ['ip', 'route', 'show', p.subnet]).stdout.trim(),
      neigh: inHost(i, ['ip', 'neigh', 'show', p.gw, 'dev', 'flannel.100']).stdout.trim(),
      fdb: inHost(i, ['bridge', 'fdb', 'show', 'dev', 'flannel.100']).stdout.split('\n').filter((l) => l.startsWith(p.mac)).join('\n'),
    }),
    etcdGet: (key) => run(`lab_etcdctl get --print-value-only ${key}`, true).stdout.trim(),
    ping: (pod, dst) => pinger(`${prefix}${pod}`, dst),
    down() {
      run('lab_down', true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
