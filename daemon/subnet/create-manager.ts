// Which subnet manager flanneld runs on (Go's newSubnetManager in main.go): the only place that
// names a concrete manager. Everything after construction speaks SubnetManager (manager.ts).
import type { Options } from '../options.js';
import { createEtcdSubnetManager } from './etcd/create.js';
import { createKubeSubnetManager } from './kube/index.js';
import type { CreatedSubnetManager, SubnetManagerDeps } from './manager.js';

/** Rejects (main: "Failed to create SubnetManager: …", exit 1) on flags or files it cannot use. */
export async function createSubnetManager(o: Options, deps: SubnetManagerDeps): Promise<CreatedSubnetManager> {
  if (o.kubeSubnetMgr) {
    const created = await createKubeSubnetManager(o, deps);
    const sm = created.manager;
    return { ...created, storedPublicIP: sm.storedPublicIP(), onWatchHealth: (f) => void sm.onWatchHealth(f) };
  }
  return createEtcdSubnetManager(o, deps);
}
