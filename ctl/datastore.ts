// The datastore as flannelctl reads it: the network config and every lease, from etcd (the same
// registry flanneld uses, daemon/subnet/etcd/registry.ts, with the TTLs looked up so the table can
// show expiry) or from the Kubernetes Node objects (one list; the same nodeToLease as flanneld's
// informer). One read, no watch: flannelctl is a snapshot tool.
import { readFile } from 'node:fs/promises';
import { readFileBounded, MAX_STATE_FILE } from '../shared/fs/read-bounded.js';
import { type Logger, errorMessage } from '../shared/log.js';
import { formatNet } from '../shared/net/ip.js';
import type { Lease } from '../daemon/lease.js';
import { checkNetworkConfig, parseAndCheckConfig, parseConfig, type Config } from '../daemon/subnet/config.js';
import { EtcdClient, type EtcdClientOptions } from '../daemon/subnet/etcd/etcd-client.js';
import { EtcdRegistry } from '../daemon/subnet/etcd/registry.js';
import { newAnnotations } from '../daemon/subnet/kube/annotations.js';
import { KubeClient } from '../daemon/subnet/kube/client.js';
import { buildKubeConfig } from '../daemon/subnet/kube/kubeconfig.js';
import { isFlannelNode, nodeToLease, type Node } from '../daemon/subnet/kube/node.js';
import { splitEndpoints } from '../daemon/options.js';
import type { CtlOptions } from './flags.js';

/** A lease and, in kube mode, the Node it comes from. */
export interface LeaseRow {
  lease: Lease;
  node?: string;
}

export interface Datastore {
  /** `etcd <endpoints>` / `kubernetes <server>`, for error lines */
  readonly where: string;
  config(signal: AbortSignal): Promise<Config>;
  leases(signal: AbortSignal): Promise<LeaseRow[]>;
  /** Deletes the lease key (etcd); rejects in kube mode, where the podCIDR belongs to the Node. */
  release(lease: Lease, signal: AbortSignal): Promise<void>;
  close(): void;
}

async function readFlagFile(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new Error(`failed to read --${flag} ${JSON.stringify(path)}: ${errorMessage(err)}`, { cause: err });
  }
}

/** The etcd client options from the --etcd-* flags, as flanneld builds them (daemon/subnet/etcd/create.ts). */
async function etcdOptions(o: CtlOptions): Promise<EtcdClientOptions> {
  const c: EtcdClientOptions = { endpoints: splitEndpoints(o.etcdEndpoints), requestTimeoutMs: 3000 };
  if (o.etcdKeyfile && o.etcdCertfile) {
    c.tls = { key: await readFlagFile('etcd-keyfile', o.etcdKeyfile), cert: await readFlagFile('etcd-certfile', o.etcdCertfile) };
    if (o.etcdCafile) c.tls.ca = await readFlagFile('etcd-cafile', o.etcdCafile);
  } else if (o.etcdCafile) c.ca = await readFlagFile('etcd-cafile', o.etcdCafile);
  if (o.etcdUsername) {
    c.username = o.etcdUsername;
    c.password = o.etcdPassword;
  }
  return c;
}

function etcdDatastore(o: CtlOptions, opts: EtcdClientOptions, log: Logger): Datastore {
  const registry = new EtcdRegistry(new EtcdClient(opts), o.etcdPrefix, log);
  return {
    where: `etcd ${opts.endpoints.join(',')}`,
    config: async (signal) => parseAndCheckConfig(await registry.getNetworkConfig(signal)),
    leases: async (signal) => (await registry.getSubnets(signal, { withTTL: true })).leases.map((lease) => ({ lease })),
    release: (lease, signal) => registry.deleteSubnet(lease.subnet, lease.ipv6Subnet, signal),
    close: () => registry.close(),
  };
}

async function kubeDatastore(o: CtlOptions, env: Record<string, string | undefined>, log: Logger): Promise<Datastore> {
  const cfg = await buildKubeConfig({ kubeconfigFile: o.kubeconfigFile, apiUrl: o.kubeApiUrl, env, log });
  const client = new KubeClient(cfg, { log, userAgent: 'flannelctl/v0.1.0', requestIdleMs: 5000 });
  const annotations = newAnnotations(o.kubeAnnotationPrefix);
  const config = (): Config => {
    let c: Config;
    try {
      c = parseConfig(readFileBounded(o.netConfigPath, MAX_STATE_FILE).toString('utf8'));
    } catch (err) {
      throw new Error(`failed to read the network config ${o.netConfigPath}: ${errorMessage(err)}`, { cause: err });
    }
    try {
      return checkNetworkConfig(c);
    } catch {
      return c; // as flanneld in kube mode: the subnets are the podCIDRs, the rest of the check does not matter
    }
  };
  return {
    where: `kubernetes ${cfg.server.origin}`,
    config: async () => config(),
    async leases(signal) {
      const c = config();
      const list = await client.request<{ items?: Node[] }>('GET', '/api/v1/nodes', { signal });
      const rows: LeaseRow[] = [];
      for (const n of list.items ?? []) {
        if (!isFlannelNode(n, annotations)) continue;
        try {
          rows.push({ lease: nodeToLease(n, annotations, { enableIPv4: c.enableIPv4, enableIPv6: c.enableIPv6 }), node: n.metadata.name });
        } catch (err) {
          log.warn(`node ${n.metadata.name}: ${errorMessage(err)}`);
        }
      }
      return rows;
    },
    async release(lease) {
      throw new Error(`a lease in kube mode is the Node's podCIDR (${formatNet(lease.subnet)}): delete the Node to release it`);
    },
    close: () => client.close(),
  };
}

/** The datastore the flags name; rejects on unreadable certificate or kubeconfig files. */
export async function openDatastore(o: CtlOptions, env: Record<string, string | undefined>, log: Logger): Promise<Datastore> {
  if (o.kubeSubnetMgr) return kubeDatastore(o, env, log);
  return etcdDatastore(o, await etcdOptions(o), log);
}

/** Leases or one error line that names the datastore (unreachable, refused, bad config). */
export async function readLeases(ds: Datastore, signal: AbortSignal): Promise<LeaseRow[]> {
  try {
    return await ds.leases(signal);
  } catch (err) {
    throw new Error(`cannot read the leases from ${ds.where}: ${errorMessage(err)}`, { cause: err });
  }
}
