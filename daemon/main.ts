// flanneld: one linear wiring script, as flannel's main.go. Only this file touches the world (argv,
// env, files, signals, the real kernel), and subnet/create-manager.ts the datastore (etcd or the
// Kubernetes API); after that, main speaks the SubnetManager seam (subnet/manager.ts) only:
//   options → previous subnet → subnet manager → network config → external
//   interface → backend → registerNetwork (acquires the lease) → traffic rules (masq, forward,
//   blackhole; daemon/traffic) → subnet.env → what a config change left behind (daemon/renumber) →
//   run + keep the lease + warn about config changes (daemon/config-watch).
// SIGTERM/SIGINT abort everything and the process exits 0, leaving the lease, the devices, the
// routes and the iptables/nftables rules in place (zero-downtime restart). Exit 1 on start-up errors,
// as Go.
import { existsSync } from 'node:fs';
import { createIptables } from '../shared/kernel/iproute2/iptables.js';
import { createKernel } from '../shared/kernel/iproute2/kernel.js';
import { createNft } from '../shared/kernel/iproute2/nft.js';
import { getBackendFactory } from './backend/registry.js';
import { lookupExtIface } from './ext-iface.js';
import { type HealthServer, startHealthServer } from './health.js';
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

const log = createLogger((line) => process.stderr.write(line));

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

  let health: HealthServer | undefined;
  if (o.healthzPort > 0) {
    try {
      health = await startHealthServer(o.healthzIP, o.healthzPort);
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
  const sm = created.manager;
  log.info(`Created subnet manager: ${sm.name()}`);
  let subnetFileWritten = false;
  // Go main: addresses the datastore records for this node (kube: node-public-ip annotations)
  // stand in for --public-ip(v6)
  if (created.storedPublicIP?.v4) o.publicIP = created.storedPublicIP.v4;
  if (created.storedPublicIP?.v6) o.publicIPv6 = created.storedPublicIP.v6;
  // /readyz follows the datastore watch: false while it has been down too long, true once it resyncs
  created.onWatchHealth?.((up) => health?.setReady(up && subnetFileWritten));

  const config = await getConfig(sm, ac.signal);
  if (!config) return shutdown(0);
  if (!config.enableIPv4 && !config.enableIPv6) die('none defined stack');
  if (!config.enableNFTables) {
    // Go exits 1 here; a missing br_netfilter only matters to bridged pod traffic, so we warn.
    if (config.enableIPv4 && !existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) {
      log.warn('Failed to check br_netfilter: /proc/sys/net/bridge/bridge-nf-call-iptables is missing (run `modprobe br_netfilter`)');
    }
  }

  // subnet.env's subnet, or the one this node held in this Network before (a reverted config)
  sm.setPrevious(choosePrevious(previous, config, state.history, log));

  const kernel = createKernel();
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
  const backend = factory({ subnetManager: sm, extIface, kernel, stateDir: o.dataDir, logger: log });
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
    health?.setReady(true);
  } catch (err) {
    log.error(`Failed to write subnet file: ${errorMessage(err)}`);
  }

  // renumbered or backend changed: the old cni0 gateway, old device address and old vxlan device go
  const settled = await settleNetworkChange(
    kernel,
    { previous, state, config, lease, bridge: o.cniBridge, dataDir: o.dataDir },
    log,
  );

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
    await health?.close();
    created.close();
    log.info('Exiting cleanly...');
    return c;
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    log.error(`flanneld: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
