// Which subnet manager flanneld runs on (Go's newSubnetManager in main.go): the only place that
// names a concrete manager. Everything after construction speaks SubnetManager (manager.ts).
import type { Logger } from '../log.js';
import type { Options } from '../options.js';
import { createEtcdSubnetManager } from './etcd/create.js';
import type { SubnetManager } from './manager.js';
import type { PreviousSubnets } from './subnet-file.js';

export interface SubnetManagerDeps {
  /** subnet.env's subnets from the previous run (main may refine them later: setPrevious) */
  previous: PreviousSubnets;
  log: Logger;
}

export interface CreatedSubnetManager {
  manager: SubnetManager;
  /**
   * The network config's raw text read afresh (not a manager's cached copy) and where it lives
   * (for log lines), polled by config-watch.ts. Absent: the config is not watched.
   */
  configSource?: { where: string; read(signal: AbortSignal): Promise<string> };
  /** Releases connections; the lease stays in the datastore (a restart takes it again). */
  close(): void;
}

/** Rejects (main: "Failed to create SubnetManager: …", exit 1) on flags or files it cannot use. */
export async function createSubnetManager(o: Options, deps: SubnetManagerDeps): Promise<CreatedSubnetManager> {
  if (o.kubeSubnetMgr) throw new Error('the Kubernetes subnet manager (--kube-subnet-mgr) is not supported by this build: use etcd');
  return createEtcdSubnetManager(o, deps);
}
