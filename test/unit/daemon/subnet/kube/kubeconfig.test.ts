import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildKubeConfig, kubeconfigFileConfig } from '../../../../../daemon/subnet/kube/kubeconfig.js';
import { FileTokenSource } from '../../../../../daemon/subnet/kube/client.js';
import { memoryLogger } from '../../../../../shared/log.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'kubecfg-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const doc = (user: string, server = 'https://127.0.0.1:6443') => `apiVersion: v1
kind: Config
current-context: c1
contexts:
- name: c0
  context: {cluster: other, user: u0}
- name: c1
  context: {cluster: k, user: u1}
clusters:
- name: k
  cluster:
    server: ${server}
    certificate-authority: ca.pem
    tls-server-name: api.local
users:
- name: u1
  user:
${user}
`;

describe('kubeconfig', () => {
  it('current context, relative paths against the file, tokenFile', async () => {
    const d = tmp();
    mkdirSync(join(d, 'sub'));
    writeFileSync(join(d, 'sub', 'ca.pem'), 'CA');
    writeFileSync(join(d, 'sub', 'config'), doc('    tokenFile: tok'));
    const c = await kubeconfigFileConfig(join(d, 'sub', 'config'), '');
    expect(c.server.href).toBe('https://127.0.0.1:6443/');
    expect(c.ca?.toString()).toBe('CA');
    expect(c.tlsServerName).toBe('api.local');
    expect(c.tokenFile).toBe(join(d, 'sub', 'tok'));
  });
  it('--kube-api-url replaces the server; http:// drops every credential', async () => {
    const d = tmp();
    writeFileSync(join(d, 'ca.pem'), 'CA');
    writeFileSync(join(d, 'config'), doc('    token: abc'));
    expect((await kubeconfigFileConfig(join(d, 'config'), 'https://10.9.9.9:1')).server.host).toBe('10.9.9.9:1');
    const plain = await kubeconfigFileConfig(join(d, 'config'), 'http://127.0.0.1:8080');
    expect(plain.token).toBeUndefined();
  });
  it('an exec user fails with a message naming the user entry', async () => {
    const d = tmp();
    writeFileSync(join(d, 'ca.pem'), 'CA');
    writeFileSync(join(d, 'config'), doc('    exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}'));
    await expect(kubeconfigFileConfig(join(d, 'config'), '')).rejects.toThrow(/user "u1" in .*config uses an exec credential plugin/);
  });
  it('a missing file: stat error', async () => {
    await expect(buildKubeConfig({ kubeconfigFile: '/nonexistent/kc', apiUrl: '', env: {}, log: memoryLogger() })).rejects.toThrow('stat /nonexistent/kc: no such file or directory');
  });
  it('no flags, no in-cluster env: client-go messages', async () => {
    const log = memoryLogger();
    await expect(buildKubeConfig({ kubeconfigFile: '', apiUrl: '', env: {}, log })).rejects.toThrow(
      'invalid configuration: no configuration has been provided, try setting KUBERNETES_MASTER environment variable',
    );
    expect(log.lines.join('\n')).toContain('KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined');
  });
  it('in-cluster: host and port (IPv6 bracketed), token file under FLANNELD_KUBE_SA_DIR, missing CA logged', async () => {
    const d = tmp();
    writeFileSync(join(d, 'token'), 't1\n');
    const log = memoryLogger();
    const c = await buildKubeConfig({ kubeconfigFile: '', apiUrl: '', env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443', FLANNELD_KUBE_SA_DIR: d }, log });
    expect(c.server.host).toBe('[fd00::1]');
    expect(c.tokenFile).toBe(join(d, 'token'));
    expect(log.lines.join('\n')).toContain(`Expected to load root CA config from ${join(d, 'ca.crt')}`);
  });
});

describe('token file source (client-go cachingTokenSource)', () => {
  it('re-reads after its TTL and at once after invalidate; an empty file keeps the old token', () => {
    const d = tmp();
    const f = join(d, 'token');
    writeFileSync(f, ' a \n');
    let now = 0;
    const log = memoryLogger();
    const ts = new FileTokenSource(f, log, 50_000, () => now);
    expect(ts.get()).toBe('a');
    writeFileSync(f, 'b');
    now = 10_000;
    expect(ts.get()).toBe('a');
    now = 50_000;
    expect(ts.get()).toBe('b');
    writeFileSync(f, 'c');
    ts.invalidate();
    expect(ts.get()).toBe('c');
    writeFileSync(f, '');
    ts.invalidate();
    expect(ts.get()).toBe('c');
    expect(log.lines.join('\n')).toContain('read empty token from file');
  });
});
