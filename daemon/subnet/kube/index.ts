// flanneld --kube-subnet-mgr (Go's kube.NewSubnetManager), in Go's order: API client config, node name
// (NODE_NAME, else the pod's spec.nodeName), the net-conf.json file, the annotation prefix, then the
// node informer, waited for up to 10 min (CONT_WHEN_CACHE_NOT_READY=true: go on without it).
import { readFileBounded, MAX_STATE_FILE } from '../../../shared/fs/read-bounded.js';
import { errorMessage } from '../../../shared/log.js';
import type { Options } from '../../options.js';
import { sleep } from '../../sleep.js';
import { checkNetworkConfig, parseConfig } from '../config.js';
import type { CreatedSubnetManager, SubnetManagerDeps } from '../manager.js';
import { newAnnotations } from './annotations.js';
import { KubeClient, type KubeClientOptions } from './client.js';
import { buildKubeConfig } from './kubeconfig.js';
import { KubeSubnetManager, type KubeManagerOptions } from './manager.js';

export { KubeSubnetManager } from './manager.js';

export const NODE_SYNC_TIMEOUT_MS = 10 * 60_000;

export interface KubeExtras {
  env?: Record<string, string | undefined>;
  client?: Partial<KubeClientOptions>;
  /** manager/informer tuning (tests) */
  tuning?: Partial<Omit<KubeManagerOptions, 'client' | 'nodeName' | 'annotations' | 'config' | 'setNodeNetworkUnavailable' | 'log'>>;
  syncTimeoutMs?: number;
}

function readNetConf(path: string): string {
  try {
    return readFileBounded(path, MAX_STATE_FILE).toString('utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const text = e.code === 'ENOENT' ? 'no such file or directory' : e.code === 'EACCES' ? 'permission denied' : errorMessage(err);
    throw new Error(`failed to read net conf: open ${path}: ${text}`, { cause: err });
  }
}

interface Pod {
  spec?: { nodeName?: string };
}

async function nodeName(client: KubeClient, env: Record<string, string | undefined>): Promise<string> {
  if (env.NODE_NAME) return env.NODE_NAME;
  const pod = env.POD_NAME;
  const ns = env.POD_NAMESPACE;
  if (!pod || !ns) throw new Error('env variables POD_NAME and POD_NAMESPACE must be set');
  let p: Pod;
  try {
    p = await client.request<Pod>('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(pod)}`);
  } catch (err) {
    throw new Error(`error retrieving pod spec for '${ns}/${pod}': ${errorMessage(err)}`, { cause: err });
  }
  if (!p.spec?.nodeName) throw new Error(`node name not present in pod spec '${ns}/${pod}'`);
  return p.spec.nodeName;
}

/**
 * The kube subnet manager, its informer synced (rejects as Go's NewSubnetManager fails; main logs
 * "Failed to create SubnetManager: …" and exits 1). `close()` stops the informer and the connections.
 */
export async function createKubeSubnetManager(o: Options, deps: SubnetManagerDeps, x: KubeExtras = {}): Promise<CreatedSubnetManager & { manager: KubeSubnetManager }> {
  const env = x.env ?? process.env;
  const log = deps.log;
  let cfg;
  try {
    cfg = await buildKubeConfig({ kubeconfigFile: o.kubeconfigFile, apiUrl: o.kubeApiUrl, env, log });
  } catch (err) {
    throw new Error(`fail to create kubernetes config: ${errorMessage(err)}`, { cause: err });
  }
  const client = new KubeClient(cfg, { log, ...x.client });
  const stop = new AbortController();
  try {
    log.info(`Kubernetes API server ${cfg.server.origin} from ${cfg.source}`);
    const node = await nodeName(client, env);
    const netConf = readNetConf(o.netConfigPath);
    let config;
    try {
      config = parseConfig(netConf);
    } catch (err) {
      throw new Error(`error parsing subnet config: ${errorMessage(err)}`, { cause: err });
    }
    // Go checks nothing more in kube mode (the subnets come from podCIDRs). The defaults the check
    // fills in (SubnetLen, SubnetMin/Max) keep main's config watch from reporting them as a change;
    // a config only the check refuses still runs, as in Go.
    try {
      config = checkNetworkConfig(config);
    } catch (err) {
      log.warn(`${o.netConfigPath}: ${errorMessage(err)} (not needed in kube mode, where subnets are the nodes' podCIDRs: going on)`);
    }
    let annotations;
    try {
      annotations = newAnnotations(o.kubeAnnotationPrefix);
    } catch (err) {
      throw new Error(`error creating network manager: ${errorMessage(err)}`, { cause: err });
    }
    const manager = new KubeSubnetManager({
      client,
      nodeName: node,
      annotations,
      config,
      setNodeNetworkUnavailable: o.setNodeNetworkUnavailable,
      log,
      ...x.tuning,
    });
    log.info('Starting kube subnet manager');
    void manager.informer.run(stop.signal);
    const timeout = x.syncTimeoutMs ?? NODE_SYNC_TIMEOUT_MS;
    log.info(`Waiting ${Math.round(timeout / 60_000)}m0s for node controller to sync`);
    const synced = await Promise.race([manager.informer.synced.then(() => true), sleep(timeout, stop.signal).then(() => false)]);
    if (!synced) {
      if (env.CONT_WHEN_CACHE_NOT_READY === 'true') log.warn('Node controller sync not completed: going on (CONT_WHEN_CACHE_NOT_READY=true)');
      else throw new Error('error waiting for nodeController to sync state: context deadline exceeded');
    } else log.info('Node controller sync successful');
    return {
      manager,
      configSource: { where: o.netConfigPath, read: async () => readNetConf(o.netConfigPath) },
      close: () => {
        stop.abort();
        client.close();
      },
    };
  } catch (err) {
    stop.abort();
    client.close();
    throw err;
  }
}
