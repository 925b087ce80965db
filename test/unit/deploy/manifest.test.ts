// deploy/kube-flannel.yml, read as the API server would get it: the objects upstream's manifest has,
// RBAC verbs equal to upstream's ClusterRole, the ConfigMap's defaults, and a DaemonSet whose pieces fit
// together (flags our flanneld and install-cni accept, probes on the port flanneld serves, mounts
// backed by declared volumes, the init containers putting files where the host's runtime looks).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { loadAll } from 'js-yaml';
import { parseArgs } from '../../../scripts/install-cni/args.js';
import type { InstallOptions } from '../../../scripts/install-cni/install.js';
import { parseOptions } from '../../../daemon/options.js';

const ROOT = join(import.meta.dirname, '../../..');

interface Obj {
  kind: string;
  apiVersion: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: any;
}
const objects = loadAll(readFileSync(join(ROOT, 'deploy/kube-flannel.yml'), 'utf8')).filter(Boolean) as Obj[];
const one = (kind: string) => {
  const all = objects.filter((o) => o.kind === kind);
  expect(all, kind).toHaveLength(1);
  return all[0]!;
};

/** Upstream's ClusterRole "flannel" (Documentation/kube-flannel.yml; shared/spec/kube.md §2). */
const UPSTREAM_RULES = [
  { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] },
];
/** group/resource → sorted verbs, so rule splitting or ordering does not matter */
function grants(rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>): Record<string, string[]> {
  const out: Record<string, Set<string>> = {};
  for (const r of rules) for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) (out[`${g}/${res}`] ??= new Set()).add(v);
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, [...v].sort()]));
}

const ds = one('DaemonSet');
const pod = ds.spec.template.spec;
const main = pod.containers[0];
const volumes: Record<string, any> = Object.fromEntries(pod.volumes.map((v: { name: string }) => [v.name, v]));
/** where a container path comes from: the volume behind the mount that holds it, and the path inside it */
function source(container: { volumeMounts: Array<{ name: string; mountPath: string }> }, path: string) {
  const m = container.volumeMounts.find((vm) => path === vm.mountPath.replace(/\/$/, '') || path.startsWith(vm.mountPath.replace(/\/?$/, '/')));
  expect(m, `${path} is on no volume mount`).toBeDefined();
  return { volume: volumes[m!.name], rest: posix.relative(m!.mountPath, path) };
}

describe('deploy/kube-flannel.yml', () => {
  it('has upstream’s objects, names and namespace', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'Namespace/kube-flannel',
      'ServiceAccount/flannel',
      'ClusterRole/flannel',
      'ClusterRoleBinding/flannel',
      'ConfigMap/kube-flannel-cfg',
      'DaemonSet/kube-flannel-ds',
    ]);
    for (const o of objects.filter((o) => ['ServiceAccount', 'ConfigMap', 'DaemonSet'].includes(o.kind))) expect(o.metadata.namespace).toBe('kube-flannel');
    expect(one('Namespace').metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('privileged');
    expect(one('DaemonSet').apiVersion).toBe('apps/v1');
  });

  it('grants exactly upstream’s verbs, to the flannel service account', () => {
    expect(grants(one('ClusterRole').rules)).toEqual(grants(UPSTREAM_RULES));
    const b = one('ClusterRoleBinding');
    expect(b.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'flannel' });
    expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'flannel', namespace: 'kube-flannel' }]);
    expect(pod.serviceAccountName).toBe('flannel');
  });

  it('ConfigMap: upstream’s defaults (10.244.0.0/16, vxlan) and the conflist we ship', () => {
    const data = one('ConfigMap').data;
    expect(JSON.parse(data['net-conf.json'])).toEqual({ Network: '10.244.0.0/16', EnableNFTables: false, Backend: { Type: 'vxlan' } });
    expect(JSON.parse(data['cni-conf.json'])).toEqual(JSON.parse(readFileSync(join(ROOT, 'conf/10-flannel.conflist'), 'utf8')));
  });

  it('flanneld: host network, NET_ADMIN + NET_RAW unprivileged, flags our flanneld accepts, downward-API pod name', () => {
    expect(pod.hostNetwork).toBe(true);
    expect(main.securityContext.privileged).toBe(false);
    expect([...main.securityContext.capabilities.add].sort()).toEqual(['NET_ADMIN', 'NET_RAW']);
    expect(main.command).toEqual(['/opt/bin/flanneld']);
    expect(main.args).toEqual(expect.arrayContaining(['--ip-masq', '--kube-subnet-mgr']));
    const parsed = parseOptions(main.args, {});
    expect(parsed.kind, JSON.stringify(parsed)).toBe('run');
    const env = Object.fromEntries(main.env.map((e: { name: string; valueFrom?: { fieldRef: { fieldPath: string } } }) => [e.name, e.valueFrom?.fieldRef.fieldPath]));
    expect(env).toMatchObject({ POD_NAME: 'metadata.name', POD_NAMESPACE: 'metadata.namespace' });
    expect(pod.tolerations).toContainEqual({ operator: 'Exists', effect: 'NoSchedule' });
  });

  it('liveness /healthz and readiness /readyz on the address flanneld’s --healthz-* flags serve', () => {
    const parsed = parseOptions(main.args, {});
    if (parsed.kind !== 'run') throw new Error('flags rejected');
    const { healthzIP, healthzPort } = parsed.options;
    expect(healthzPort).toBeGreaterThan(0);
    expect(main.livenessProbe.httpGet).toEqual({ host: healthzIP, port: healthzPort, path: '/healthz' });
    expect(main.readinessProbe.httpGet).toEqual({ host: healthzIP, port: healthzPort, path: '/readyz' });
  });

  it('flanneld mounts /run/flannel, /run/xtables.lock and its net-conf.json from the host / ConfigMap', () => {
    expect(source(main, '/run/flannel').volume).toEqual({ name: 'run', hostPath: { path: '/run/flannel' } });
    expect(source(main, '/run/xtables.lock').volume).toEqual({ name: 'xtables-lock', hostPath: { path: '/run/xtables.lock', type: 'FileOrCreate' } });
    const parsed = parseOptions(main.args, {});
    if (parsed.kind !== 'run') throw new Error('flags rejected');
    const conf = source(main, parsed.options.netConfigPath);
    expect(conf.volume.configMap.name).toBe('kube-flannel-cfg');
    expect(conf.rest).toBe('net-conf.json');
  });

  it('init containers run install-cni: the executable into the host’s /opt/cni/bin, then the conflist into /etc/cni/net.d', () => {
    const inits = pod.initContainers as Array<{ name: string; image: string; command: string[]; args: string[]; volumeMounts: Array<{ name: string; mountPath: string }> }>;
    expect(inits.map((c) => c.name)).toEqual(['install-cni-plugin', 'install-cni']);
    const opts = inits.map((c) => {
      expect(c.image).toBe(main.image);
      expect(c.command).toEqual(['/opt/bin/install-cni']);
      const o = parseArgs(c.args, posix.dirname(c.command[0]!));
      expect(o).not.toBe('help');
      return { c, o: o as InstallOptions };
    });
    const [plugin, conf] = opts;
    // the plugin: our flannel, from the image's /opt/bin, onto the host's CNI bin dir
    expect(plugin!.o.plugins).toEqual(['flannel']);
    expect(plugin!.o.sourceDir).toBe('/opt/bin');
    expect(source(plugin!.c, plugin!.o.binDir!).volume.hostPath.path).toBe('/opt/cni/bin');
    expect(plugin!.o.confDir).toBeUndefined();
    // the conflist: the ConfigMap's cni-conf.json onto the host's CNI conf dir as 10-flannel.conflist
    expect(source(conf!.c, conf!.o.confDir!).volume.hostPath.path).toBe('/etc/cni/net.d');
    const from = source(conf!.c, conf!.o.conflist!);
    expect(from.volume.configMap.name).toBe('kube-flannel-cfg');
    expect(from.rest).toBe('cni-conf.json');
    expect(conf!.o.conflistName).toBe('10-flannel.conflist');
    expect(conf!.o.binDir).toBeUndefined();
  });

  it('every mount names a declared volume; one image everywhere', () => {
    for (const c of [...pod.initContainers, ...pod.containers]) {
      for (const m of c.volumeMounts) expect(volumes[m.name], `${c.name}: ${m.name}`).toBeDefined();
      expect(c.image).toBe('flannel-ts:dev');
    }
  });
});
