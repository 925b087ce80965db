// flanneld: one linear wiring script, as flannel's main.go. Only this file touches the world (argv,
// env, files, signals, the real kernel), and subnet/create-manager.ts the datastore (etcd or the
// Kubernetes API); after that, main speaks the SubnetManager seam (subnet/manager.ts) only:
//   options → previous subnet → subnet manager → network config → external
//   interface → backend → registerNetwork (acquires the lease) → traffic rules (masq, forward,
//   blackhole; daemon/traffic) → subnet.env → what a config change left behind (daemon/renumber) →
//   run + keep the lease + warn about config changes (daemon/config-watch).
// Operability (issue 14): /metrics beside /healthz and /readyz (health.ts); readiness conditions
// (subnet.env written, first peer programming, datastore reachable, own lease renewed in time) and
// liveness (loop heartbeats, metrics/heartbeat.ts) registered here; the Kernel and the subnet manager
// are wrapped once (metrics/instrument.ts) so every kernel write and lease batch is measured;
// sd_notify READY=1 after subnet.env (sd-notify.ts).
// SIGTERM/SIGINT abort everything and the process exits 0, leaving the lease, the devices, the
// routes and the iptables/nftables rules in place (zero-downtime restart). Exit 1 on start-up errors,
// as Go.
import { existsSync } from 'node:fs';
import { createIptables } from '../shared/kernel/iproute2/iptables.js';
import { createKernel, kernelBackend } from '../shared/kernel/create.js';
import { parseReconcileInterval } from './backend/reconcile.js';
import { DatastoreHealth, leaseOverdue, probeDatastore } from './health-checks.js';
import { heartbeats } from './metrics/heartbeat.js';
import { instrumentSubnetManager, timedKernel } from './metrics/instrument.js';
import { enableProcessMetrics, setPeerSource } from './metrics/metrics.js';
import { sdNotifyReady } from './sd-notify.js';
import { createNft } from '../shared/kernel/iproute2/nft.js';
import { getBackendFactory } from './backend/registry.js';
import { lookupExtIface } from './ext-iface.js';
import { type HealthServer, HealthState, startHealthServer } from './health.js';
import { createLogger, errorMessage } from '../shared/log.js';
import { checkRenewMargin, parseOptions } from './options.js';
import { startTraffic } from './traffic/start.js';
import { sleep } from './sleep.js';
import type { Config } from './subnet/config.js';
import { createSubnetManager } from './subnet/create-manager.js';
import type { CreatedSubnetManager, SubnetManager } from './subnet/manager.js';
import { readPreviousSubnets, writeSubnetFile } from './subnet/subnet-file.js';
import { readStateFile } from './subnet/state-file.js';
import { choosePrevious, settleNetworkChange } from './renumber.js';
import { watchNetworkConfig } from './config-watch.js';

const VERSION = 'v0.1.0-ts';

const writeStderr = (line: string) => void process.stderr.write(line);
let log = createLogger(writeStderr); // re-made with -v once the flags are parsed

function die(msg: string): never {
  log.error(msg);
  process.exit(1);
}

async function getConfig(sm: SubnetManager, signal: AbortSignal): Promise<Config | undefined> {
  for (;;) {
    try {
      return await sm.getNetworkConfig(signal);
    } catch (err) {
      if (signal.aborted) return undefined;
      log.error(`Couldn't fetch network config: ${errorMessage(err)}`);
      if (!(await sleep(1000, signal))) return undefined;
    }
  }
}

async function main(): Promise<number> {
  const parsed = parseOptions(process.argv.slice(2), process.env, VERSION);
  if (parsed.kind === 'exit') {
    process.stderr.write(parsed.stderr);
    return parsed.code;
  }
  const o = parsed.options;
  log = createLogger(writeStderr, o.v);
  const { etcdPassword: _pw, ...shown } = o;
  log.info(`CLI flags config: ${JSON.stringify({ ...shown, etcdPassword: o.etcdPassword ? '<redacted>' : '' })}`);
  const marginErr = checkRenewMargin(o.subnetLeaseRenewMargin);
  if (marginErr) die(marginErr);

  const ac = new AbortController();
  const onSignal = (sig: string) => {
    log.info(`shutdownHandler sent cancel signal... (${sig})`);
    process.removeAllListeners('SIGINT');
    process.removeAllListeners('SIGTERM');
    ac.abort();
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));

  enableProcessMetrics();
  const healthState = new HealthState(log);
  let subnetFileWritten = false;
  let peersProgrammed = false;
  healthState.addReadiness('startup', () =>
    !subnetFileWritten ? 'subnet.env not written yet' : !peersProgrammed ? 'peer leases not programmed yet' : undefined,
  );
  const graceMs = Math.max(0, o.datastoreDownGrace) * 1000;
  const stallMs = Math.max(1, o.healthzStall) * 1000;
  healthState.addLiveness('loops', () => {
    const stalled = heartbeats.stalled(stallMs);
    return stalled.length > 0 ? stalled.join('; ') : undefined;
  });
  let health: HealthServer | undefined;
  if (o.healthzPort > 0) {
    try {
      health = await startHealthServer(o.healthzIP, o.healthzPort, healthState);
      log.info(`Start healthz server on ${o.healthzIP}:${o.healthzPort}`);
    } catch (err) {
      die(`Start healthz server error: ${errorMessage(err)}`);
    }
  }

  const previous = await readPreviousSubnets(o.subnetFile);
  const state = await readStateFile(o.dataDir, log); // <data-dir>/network.json: last backend, subnets held
  let created: CreatedSubnetManager;
  try {
    created = await createSubnetManager(o, { previous, log });
  } catch (err) {
    die(`Failed to create SubnetManager: ${errorMessage(err)}`); // Go's wording; exit 1
  }
  const sm = instrumentSubnetManager(created.manager);
  setPeerSource(() => sm.peerCounts());
  log.info(`Created subnet manager: ${sm.name()}`);
  // Go main: addresses the datastore records for this node (kube: node-public-ip annotations)
  // stand in for --public-ip(v6)
  if (created.storedPublicIP?.v4) o.publicIP = created.storedPublicIP.v4;
  if (created.storedPublicIP?.v6) o.publicIPv6 = created.storedPublicIP.v6;
  // /readyz follows the datastore: the Kubernetes manager reports its node watch's health (after its
  // own threshold); etcd is probed with a read of the config key, and may be down for the grace
  const datastore = startDatastoreHealth(created, graceMs, ac.signal);
  healthState.addReadiness('datastore', datastore.check);
  if (sm.renewLease) {
    // managers whose leases expire (etcd): renewed on time, and the renewal loop not stuck
    const marginMs = o.subnetLeaseRenewMargin * 60_000;
    healthState.addReadiness('lease', () => leaseOverdue(sm.lease(), marginMs, graceMs, Date.now()));
    healthState.addLiveness('lease-renewal', () => {
      const late = leaseOverdue(sm.lease(), marginMs, stallMs, Date.now());
      return late && datastore.isUp() ? `lease renewal loop: ${late} while the datastore answers` : undefined;
    });
  }
  const watching = healthState.watch(ac.signal);

  const config = await getConfig(sm, ac.signal);
  if (!config) return shutdown(0);
  log.info(`Found network config - Backend type: ${config.backendType}`);
  if (!config.enableIPv4 && !config.enableIPv6) die('none defined stack');
  if (!config.enableNFTables) {
    // Go exits 1 here; a missing br_netfilter only matters to bridged pod traffic, so we warn.
    if (config.enableIPv4 && !existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) {
      log.warn('Failed to check br_netfilter: /proc/sys/net/bridge/bridge-nf-call-iptables is missing (run `modprobe br_netfilter`)');
    }
  }

  // subnet.env's subnet, or the one this node held in this Network before (a reverted config)
  sm.setPrevious(choosePrevious(previous, config, state.history, log));

  let kernelChoice;
  try {
    kernelChoice = kernelBackend();
  } catch (err) {
    die(errorMessage(err));
  }
  log.info(`Kernel programming through ${kernelChoice.name} (${kernelChoice.reason})`);
  const kernel = timedKernel(createKernel()); // every write timed, failures counted by op
  let extIface;
  try {
    extIface = await lookupExtIface(
      kernel,
      {
        ifaces: o.iface,
        ifaceRegex: o.ifaceRegex,
        ifaceCanReach: o.ifaceCanReach || undefined,
        publicIP: o.publicIP || undefined,
        publicIPv6: o.publicIPv6 || undefined,
        enableIPv4: config.enableIPv4,
        enableIPv6: config.enableIPv6,
      },
      log,
    );
  } catch (err) {
    die(errorMessage(err));
  }
  log.info(`Using interface with name ${extIface.iface.name}`);

  const factory = getBackendFactory(config.backendType);
  if (!factory) die(`Error fetching backend: unknown backend type: ${config.backendType}`);
  let reconcileInterval: number | undefined;
  try {
    reconcileInterval = parseReconcileInterval(o.reconcileInterval, '--reconcile-interval');
  } catch (err) {
    die(errorMessage(err));
  }
  const backend = factory({ subnetManager: sm, extIface, kernel, stateDir: o.dataDir, logger: log, ...(reconcileInterval !== undefined ? { reconcileInterval } : {}) });
  let network;
  try {
    network = await backend.registerNetwork(ac.signal, {
      enableIPv4: config.enableIPv4,
      enableIPv6: config.enableIPv6,
      backend: config.backend,
      ...(config.enableIPv4 && config.network ? { network: config.network } : {}),
      ...(config.enableIPv6 && config.ipv6Network ? { ipv6Network: config.ipv6Network } : {}),
    });
  } catch (err) {
    if (ac.signal.aborted) return shutdown(0);
    die(`Error registering network: ${errorMessage(err)}`);
  }

  const lease = network.lease();
  // Go: clean up the other mode's rules, Init, masq rules, forward rules, blackhole goroutines
  let traffic: { done: Promise<void> };
  try {
    traffic = await startTraffic(
      ac.signal,
      {
        enableNFTables: config.enableNFTables,
        ipMasq: o.ipMasq,
        ipMasqFullyRandomDisable: o.ipMasqFullyRandomDisable,
        iptablesForwardRules: o.iptablesForwardRules,
        ipBlackholeRoute: o.ipBlackholeRoute,
        iptablesResync: o.iptablesResync,
        ...(config.enableIPv4 && config.network ? { network: config.network, subnet: lease.subnet } : {}),
        ...(config.enableIPv6 && config.ipv6Network && lease.ipv6Subnet ? { ipv6Network: config.ipv6Network, ipv6Subnet: lease.ipv6Subnet } : {}),
        previous,
      },
      { iptables: { 4: createIptables(4), 6: createIptables(6) }, nft: createNft(), routes: kernel },
      log,
    );
  } catch (err) {
    die(errorMessage(err)); // Go: exit 1 (masq recycle failed, nftables unusable)
  }

  try {
    await writeSubnetFile(o.subnetFile, {
      network: config.enableIPv4 ? config.network : undefined,
      subnet: config.enableIPv4 ? lease.subnet : undefined,
      ipv6Network: config.enableIPv6 ? config.ipv6Network : undefined,
      ipv6Subnet: config.enableIPv6 ? lease.ipv6Subnet : undefined,
      mtu: network.mtu(),
      ipMasq: o.ipMasq,
    });
    subnetFileWritten = true;
    log.info(`Wrote subnet file to ${o.subnetFile}`);
    void sdNotifyReady(process.env, log);
  } catch (err) {
    log.error(`Failed to write subnet file: ${errorMessage(err)}`);
  }

  // renumbered or backend changed: the old cni0 gateway, old device address and old vxlan device go
  const settled = await settleNetworkChange(
    kernel,
    { previous, state, config, lease, bridge: o.cniBridge, dataDir: o.dataDir },
    log,
  );

  if (network.firstSync) void network.firstSync.then(() => (peersProgrammed = true));
  else peersProgrammed = true;
  log.info('Running backend.');
  let code = 0;
  const run = network.run(ac.signal).catch((err) => {
    log.error(`backend stopped: ${errorMessage(err)}`);
  });
  const keep = sm.completeLease(lease, ac.signal).catch((err) => {
    log.error(errorMessage(err));
    code = 1;
    ac.abort();
  });
  const source = created.configSource;
  const configWatch =
    o.netConfigPoll > 0 && source
      ? watchNetworkConfig(
          {
            read: (signal) => source.read(signal),
            running: config,
            key: source.where,
            intervalMs: o.netConfigPoll * 1000,
            context: () => ({ lease: sm.lease(), history: settled.history }),
            log,
          },
          ac.signal,
        )
      : undefined;
  await Promise.all([run, keep]);
  ac.abort(); // the traffic loops and the config watch stop with the lease keeper (own lease lost → exit 1)
  await configWatch;
  // a resync in flight finishes first; Go does not wait for those goroutines at all, so cap it
  await Promise.race([traffic.done, sleep(3000)]);
  return shutdown(code);

  async function shutdown(c: number): Promise<number> {
    ac.abort();
    await watching;
    await health?.close();
    created.close();
    log.info('Exiting cleanly...');
    return c;
  }
}

/** The datastore's health for /readyz and flannel_datastore_up: the manager's own report, else a probe. */
function startDatastoreHealth(created: CreatedSubnetManager, graceMs: number, signal: AbortSignal): DatastoreHealth {
  if (created.onWatchHealth) {
    // the Kubernetes manager reports false only after its informer's threshold: no second grace
    const h = new DatastoreHealth('Kubernetes API', 0);
    created.onWatchHealth((up) => (up ? h.up() : h.down('the node watch is down')));
    return h;
  }
  const h = new DatastoreHealth('etcd', graceMs);
  const source = created.configSource;
  if (source) {
    const everyMs = Math.min(5000, Math.max(500, graceMs / 3));
    void probeDatastore((s) => source.read(s), h, { everyMs, timeoutMs: Math.min(10_000, Math.max(1000, graceMs / 2)) }, signal);
  }
  return h;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    log.error(`flanneld: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
