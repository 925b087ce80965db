// Where the API server is and how to authenticate (client-go clientcmd.BuildConfigFromFlags):
//   --kubeconfig-file           → that file's current context (KUBECONFIG and ~/.kube/config are not read)
//   --kube-api-url              → replaces the server; alone it means that URL with no credentials at all
//   neither                     → in-cluster: $KUBERNETES_SERVICE_HOST:PORT, the service account token
//                                 (re-read, token-source.ts) and CA
// Our extension: FLANNELD_KUBE_SA_DIR replaces /var/run/secrets/kubernetes.io/serviceaccount (tests and
// the lab run flanneld "in cluster" without writing to /var/run).
// exec and auth-provider credential plugins are not supported: a clear error names the user entry.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import yaml from 'js-yaml';
import { readFileBounded } from '../../../shared/fs/read-bounded.js';
import type { Logger } from '../../../shared/log.js';

export const DEFAULT_SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** kubeconfig, CA, certificate and token files are small: anything larger is not one */
const MAX_KUBE_FILE = 4 * 1024 * 1024;

export interface KubeClientConfig {
  /** `https://host:port` or `http://host:port`, with any path prefix (`/k8s`) kept */
  server: URL;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTLSVerify?: boolean;
  tlsServerName?: string;
  /** a fixed bearer token */
  token?: string;
  /** a token file, re-read as client-go's cachingTokenSource does */
  tokenFile?: string;
  username?: string;
  password?: string;
  /** where it came from, for log lines */
  source: string;
}

export interface BuildConfigInput {
  kubeconfigFile: string;
  apiUrl: string;
  env: Record<string, string | undefined>;
  log: Logger;
}

function readSmall(path: string): Buffer {
  return readFileBounded(path, MAX_KUBE_FILE);
}

function nodeErrText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file or directory';
  if (e.code === 'EACCES') return 'permission denied';
  return e.message ?? String(err);
}

function parseServer(text: string, where: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`invalid configuration: ${where}: server ${JSON.stringify(text)} is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`invalid configuration: ${where}: server ${JSON.stringify(text)} must be http:// or https://`);
  return u;
}

/**
 * client-go drops every credential for an http:// server ("only try to read the auth information if we
 * are secure"), so a token never travels in clear text.
 */
function dropCredentialsOverHttp(c: KubeClientConfig): KubeClientConfig {
  if (c.server.protocol === 'https:') return c;
  const { token: _t, tokenFile: _f, cert: _c, key: _k, username: _u, password: _p, ...rest } = c;
  return rest;
}

/** The in-cluster config (rest.InClusterConfig). */
export function inClusterConfig(env: Record<string, string | undefined>, log: Logger): KubeClientConfig {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new Error('unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined');
  const saDir = env.FLANNELD_KUBE_SA_DIR || DEFAULT_SA_DIR;
  const tokenFile = join(saDir, 'token');
  try {
    readSmall(tokenFile); // unreadable → in-cluster config fails, as client-go
  } catch (err) {
    throw new Error(`open ${tokenFile}: ${nodeErrText(err)}`, { cause: err });
  }
  const c: KubeClientConfig = {
    server: new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`),
    tokenFile,
    source: `in-cluster (${saDir})`,
  };
  const caFile = join(saDir, 'ca.crt');
  try {
    c.ca = readSmall(caFile);
  } catch (err) {
    log.warn(`Expected to load root CA config from ${caFile}, but got err: open ${caFile}: ${nodeErrText(err)}`);
  }
  return c;
}

interface Named<T> {
  name?: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}

function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function findNamed(list: unknown, name: string, kind: 'cluster' | 'user' | 'context'): Record<string, unknown> | undefined {
  if (!Array.isArray(list)) return undefined;
  const hit = (list as Named<unknown>[]).find((e) => obj(e).name === name);
  return hit ? obj(obj(hit)[kind]) : undefined;
}

/** A kubeconfig file's current context (the §1.1 fields); relative paths are relative to the file. */
export async function kubeconfigFileConfig(path: string, apiUrl: string): Promise<KubeClientConfig> {
  let text: string;
  try {
    text = readSmall(path).toString('utf8');
  } catch (err) {
    throw new Error(`stat ${path}: ${nodeErrText(err)}`, { cause: err });
  }
  let doc: Record<string, unknown>;
  try {
    doc = obj(yaml.load(text));
  } catch (err) {
    throw new Error(`error loading config file "${path}": ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const base = dirname(path);
  const rel = (p: string) => (isAbsolute(p) ? p : join(base, p));
  const file = async (p: string, what: string): Promise<Buffer> => {
    try {
      return await readFile(rel(p));
    } catch (err) {
      throw new Error(`unable to read ${what} ${rel(p)}: ${nodeErrText(err)}`, { cause: err });
    }
  };

  const ctxName = str(doc['current-context']);
  if (!ctxName) throw new Error(`invalid configuration: ${path} has no current-context`);
  const ctx = findNamed(doc.contexts, ctxName, 'context');
  if (!ctx) throw new Error(`invalid configuration: context was not found for specified context: ${ctxName}`);
  const clusterName = str(ctx.cluster) ?? '';
  const cluster = findNamed(doc.clusters, clusterName, 'cluster');
  if (!cluster) throw new Error(`invalid configuration: cluster ${JSON.stringify(clusterName)} of context ${JSON.stringify(ctxName)} was not found in ${path}`);
  const userName = str(ctx.user);
  const user = userName ? (findNamed(doc.users, userName, 'user') ?? {}) : {};

  const serverText = apiUrl || str(cluster.server);
  if (!serverText) throw new Error(`invalid configuration: no server found for cluster ${JSON.stringify(clusterName)}`);
  if (str(cluster['proxy-url'])) {
    throw new Error(`cluster ${JSON.stringify(clusterName)} in ${path} sets proxy-url, which this flanneld does not support: reach the API server directly`);
  }
  const c: KubeClientConfig = { server: parseServer(serverText, path), source: `${path} (context ${ctxName})` };
  const caData = str(cluster['certificate-authority-data']);
  const caFile = str(cluster['certificate-authority']);
  if (caData) c.ca = Buffer.from(caData, 'base64');
  else if (caFile) c.ca = await file(caFile, 'certificate-authority');
  if (cluster['insecure-skip-tls-verify'] === true) c.insecureSkipTLSVerify = true;
  const sni = str(cluster['tls-server-name']);
  if (sni) c.tlsServerName = sni;

  for (const plugin of ['exec', 'auth-provider'] as const) {
    if (user[plugin] !== undefined && user[plugin] !== null) {
      throw new Error(
        `user ${JSON.stringify(userName)} in ${path} uses an ${plugin} credential plugin, which this flanneld does not support: ` +
          'give that user a token, tokenFile or client certificate (or run flanneld in the cluster with its service account)',
      );
    }
  }
  const token = str(user.token);
  const tokenFile = str(user.tokenFile);
  if (token) c.token = token;
  else if (tokenFile) c.tokenFile = rel(tokenFile);
  const certData = str(user['client-certificate-data']);
  const certFile = str(user['client-certificate']);
  const keyData = str(user['client-key-data']);
  const keyFile = str(user['client-key']);
  if (certData) c.cert = Buffer.from(certData, 'base64');
  else if (certFile) c.cert = await file(certFile, 'client-certificate');
  if (keyData) c.key = Buffer.from(keyData, 'base64');
  else if (keyFile) c.key = await file(keyFile, 'client-key');
  if ((c.cert === undefined) !== (c.key === undefined)) {
    throw new Error(`invalid configuration: user ${JSON.stringify(userName)} in ${path} has a client certificate without its key (or a key without its certificate)`);
  }
  const username = str(user.username);
  if (username) {
    c.username = username;
    c.password = str(user.password) ?? '';
  }
  return dropCredentialsOverHttp(c);
}

/** BuildConfigFromFlags(--kube-api-url, --kubeconfig-file), with client-go's messages. */
export async function buildKubeConfig(i: BuildConfigInput): Promise<KubeClientConfig> {
  if (i.kubeconfigFile) return kubeconfigFileConfig(i.kubeconfigFile, i.apiUrl);
  if (i.apiUrl) return { server: parseServer(i.apiUrl, '--kube-api-url'), source: `--kube-api-url ${i.apiUrl}` };
  try {
    return inClusterConfig(i.env, i.log);
  } catch (err) {
    i.log.warn('Neither --kubeconfig nor --master was specified.  Using the inClusterConfig.  This might not work.');
    i.log.warn(`error creating inClusterConfig, falling back to default config: ${(err as Error).message}`);
    throw new Error('invalid configuration: no configuration has been provided, try setting KUBERNETES_MASTER environment variable', { cause: err });
  }
}
