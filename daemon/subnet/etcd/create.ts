// The etcd subnet manager from flanneld's --etcd-* flags (Go's newSubnetManager, etcd branch):
// client TLS/auth from the flag files, the registry under --etcd-prefix, LocalManager on top.
import { readFile } from 'node:fs/promises';
import { type Logger, errorMessage } from '../../../shared/log.js';
import { type Options, splitEndpoints } from '../../options.js';
import type { CreatedSubnetManager, SubnetManagerDeps } from '../manager.js';
import { EtcdClient, type EtcdClientOptions } from './etcd-client.js';
import { LocalManager } from './local-manager.js';
import { EtcdRegistry } from './registry.js';

/** A --etcd-*file, with an error that names the flag and the path (no stack trace for a typo). */
async function readEtcdFile(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new Error(`failed to read --${flag} ${JSON.stringify(path)}: ${errorMessage(err)}`, { cause: err });
  }
}

async function etcdClientOptions(o: Options, log: Logger): Promise<EtcdClientOptions> {
  const c: EtcdClientOptions = { endpoints: splitEndpoints(o.etcdEndpoints) };
  if (o.etcdKeyfile && o.etcdCertfile) {
    c.tls = { key: await readEtcdFile('etcd-keyfile', o.etcdKeyfile), cert: await readEtcdFile('etcd-certfile', o.etcdCertfile) };
    if (o.etcdCafile) c.tls.ca = await readEtcdFile('etcd-cafile', o.etcdCafile);
  } else {
    log.info('no certificate provided: connecting to etcd with http. This is insecure');
    if (o.etcdCafile) c.ca = await readEtcdFile('etcd-cafile', o.etcdCafile);
  }
  if (o.etcdUsername) {
    c.username = o.etcdUsername;
    c.password = o.etcdPassword;
  }
  return c;
}

export async function createEtcdSubnetManager(o: Options, deps: SubnetManagerDeps): Promise<CreatedSubnetManager> {
  const registry = new EtcdRegistry(new EtcdClient(await etcdClientOptions(o, deps.log)), o.etcdPrefix, deps.log);
  const manager = new LocalManager({
    registry,
    previous: deps.previous,
    renewMarginMs: o.subnetLeaseRenewMargin * 60_000,
    log: deps.log,
  });
  return {
    manager,
    // the registry's, not the manager's: getNetworkConfig keeps what it read
    configSource: { where: `${o.etcdPrefix.replace(/\/+$/, '')}/config`, read: (signal) => registry.getNetworkConfig(signal) },
    close: () => registry.close(),
  };
}
