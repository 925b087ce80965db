// flannelctl's commands over an injectable world (argv, env, output, the kernel and the datastore
// openers), so the unit tests run them against fakes; main.ts binds the real one.
import type { Iptables } from '../shared/kernel/iptables.js';
import type { Kernel } from '../shared/kernel/kernel.js';
import type { Nft } from '../shared/kernel/nft.js';
import { type Logger, errorMessage } from '../shared/log.js';
import { cleanup } from './cleanup.js';
import { type Datastore, openDatastore, readLeases } from './datastore.js';
import { runChecks } from './doctor/checks.js';
import { formatProblem } from './doctor/facts.js';
import { gatherFacts } from './doctor/gather.js';
import type { PingFn } from './doctor/probe.js';
import { type CtlOptions, parseCtlArgs } from './flags.js';
import { formatLeaseTable, leaseView } from './leases.js';
import { findMe, readSubnetEnv } from './node.js';
import { findFlanneld, type RunningDaemon } from './running.js';

export interface CtlWorld {
  argv: readonly string[];
  env: Record<string, string | undefined>;
  stdout(s: string): void;
  stderr(s: string): void;
  kernel(): Kernel;
  iptables(family: 4 | 6): Iptables;
  nft(): Nft;
  openDatastore?(o: CtlOptions): Promise<Datastore>;
  running?(): RunningDaemon[];
  ping?: PingFn;
  now?(): number;
}

/** Datastore warnings (a junk key skipped) go to stderr, never into the table or JSON. */
function stderrLogger(w: CtlWorld): Logger {
  const line = (lvl: string) => (msg: string) => w.stderr(`flannelctl: ${lvl}${msg}\n`);
  return { info: () => {}, warn: line('warning: '), error: line('') };
}

async function open(w: CtlWorld, o: CtlOptions): Promise<Datastore> {
  return w.openDatastore ? w.openDatastore(o) : openDatastore(o, w.env, stderrLogger(w));
}

async function leases(w: CtlWorld, o: CtlOptions): Promise<number> {
  const ds = await open(w, o);
  try {
    const rows = await readLeases(ds, AbortSignal.timeout(30_000));
    const now = w.now?.() ?? Date.now();
    const { row: me } = findMe(rows, { subnetEnv: await readSubnetEnv(o.subnetFile), publicIP: o.publicIP, nodeName: o.nodeName });
    const views = rows.map((r) => leaseView(r, r === me, now));
    w.stdout(o.output === 'json' ? `${JSON.stringify(views, null, 2)}\n` : formatLeaseTable(views, now));
    return 0;
  } finally {
    ds.close();
  }
}

async function doctor(w: CtlWorld, o: CtlOptions): Promise<number> {
  let ds: Datastore | undefined;
  let dsError: string | undefined;
  try {
    ds = await open(w, o);
  } catch (err) {
    dsError = errorMessage(err);
  }
  try {
    const skip = new Set(o.skip);
    const facts = await gatherFacts(o, ds, dsError, { kernel: w.kernel(), iptables: w.iptables(4), nft: w.nft(), skip, ...(w.ping ? { ping: w.ping } : {}) });
    const problems = runChecks(facts, skip);
    for (const p of problems) w.stdout(`${formatProblem(p)}\n`);
    if (problems.length === 0) w.stdout(`no problems found (${facts.leases.length} leases${facts.me ? `, this node's ${facts.me.lease.subnet ? leaseView(facts.me, true, 0).subnet : ''}` : ''})\n`);
    return problems.length === 0 ? 0 : 1;
  } finally {
    ds?.close();
  }
}

async function cleanupCmd(w: CtlWorld, o: CtlOptions): Promise<number> {
  const running = (w.running ?? findFlanneld)();
  if (running.length > 0 && !o.force) {
    const pids = running.map((r) => r.pid).join(', ');
    w.stderr(`flannelctl cleanup: refusing: flanneld (pid ${pids}) is running in this network namespace; stop it first (systemctl stop flanneld, or take the kube-flannel pod off this node), or pass --force\n`);
    return 1;
  }
  let ds: Datastore | undefined;
  if (o.releaseLease) ds = await open(w, o);
  try {
    const r = await cleanup(o, { kernel: w.kernel(), iptables: { 4: w.iptables(4), 6: w.iptables(6) }, nft: w.nft() }, ds);
    for (const l of r.done) w.stdout(`${l}\n`);
    for (const l of r.failed) w.stderr(`flannelctl cleanup: ${l}\n`);
    if (r.done.length === 0 && r.failed.length === 0) w.stdout('nothing to clean up\n');
    return r.failed.length === 0 ? 0 : 1;
  } finally {
    ds?.close();
  }
}

/** Runs one command; the exit code (0 ok, 1 problems or failure, 2 usage). */
export async function runCtl(w: CtlWorld): Promise<number> {
  const parsed = parseCtlArgs(w.argv, w.env);
  if (parsed.kind === 'exit') {
    if (parsed.stdout) w.stdout(parsed.stdout);
    if (parsed.stderr) w.stderr(parsed.stderr);
    return parsed.code;
  }
  const o = parsed.options;
  try {
    switch (parsed.command) {
      case 'leases':
        return await leases(w, o);
      case 'doctor':
        return await doctor(w, o);
      case 'cleanup':
        return await cleanupCmd(w, o);
    }
  } catch (err) {
    w.stderr(`flannelctl ${parsed.command}: ${errorMessage(err)}\n`);
    return 1;
  }
}
