// Every flannel_* metric: present in the exposition, and moved by what it claims to measure.
import { afterEach, describe, expect, it } from 'vitest';
import { LeaseLoop } from '../../../daemon/backend/lease-loop.js';
import { PeerGuard } from '../../../daemon/backend/peer-guard.js';
import type { Lease, LeaseEvent } from '../../../daemon/lease.js';
import { instrumentSubnetManager, LEASE_WATCH_LOOP, timedKernel } from '../../../daemon/metrics/instrument.js';
import { heartbeats } from '../../../daemon/metrics/heartbeat.js';
import {
  metricValue,
  recordLeaseRenewal,
  recordRepair,
  recordTrafficResync,
  recordWatchResync,
  renderMetrics,
  setPeerSource,
} from '../../../daemon/metrics/metrics.js';
import type { SubnetManager } from '../../../daemon/subnet/manager.js';
import { FakeKernel } from '../../../shared/kernel/fake/fake-kernel.js';
import { memoryLogger } from '../../../shared/log.js';
import { parseIP, parseNet } from '../../../shared/net/ip.js';
import { FakeSubnetManager, vxlanLease } from '../../helpers/fake-subnet-manager.js';
import { IN_PROCESS, until } from '../../helpers/until.js';

const controllers: AbortController[] = [];
afterEach(() => {
  for (const ac of controllers.splice(0)) ac.abort();
  setPeerSource(() => []);
});

/** FakeSubnetManager with the rest of SubnetManager stubbed (only what the wrapper and the loop use runs). */
function fakeManager(): FakeSubnetManager & SubnetManager {
  const fake = new FakeSubnetManager('10.10.16.0/20') as FakeSubnetManager & SubnetManager;
  const listeners = new Set<(l: Lease) => void>();
  Object.assign(fake, {
    getNetworkConfig: () => Promise.reject(new Error('unused')),
    setPrevious: () => {},
    completeLease: () => Promise.resolve(),
    lease: () => undefined,
    onOwnLeaseChange: (f: (l: Lease) => void) => {
      listeners.add(f);
      return () => listeners.delete(f);
    },
  });
  return fake;
}

const EXPECTED = [
  ['flannel_lease_acquisitions_total', 'counter'],
  ['flannel_lease_renewals_total', 'counter'],
  ['flannel_lease_expiration_timestamp_seconds', 'gauge'],
  ['flannel_peers', 'gauge'],
  ['flannel_datastore_up', 'gauge'],
  ['flannel_datastore_watch_resyncs_total', 'counter'],
  ['flannel_kernel_programming_duration_seconds', 'histogram'],
  ['flannel_kernel_errors_total', 'counter'],
  ['flannel_lease_event_to_programmed_seconds', 'histogram'],
  ['flannel_repairs_total', 'counter'],
  ['flannel_traffic_rule_resyncs_total', 'counter'],
  ['flannel_ready', 'gauge'],
] as const;

describe('flannel metrics', () => {
  it('are all in the exposition with HELP and TYPE, one flannel_ prefix, base units', async () => {
    const text = await renderMetrics();
    for (const [name, type] of EXPECTED) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toContain(`# TYPE ${name} ${type}`);
    }
    const names = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]);
    for (const [name, type] of names) {
      expect(name).toMatch(/^flannel_[a-z_]+$/);
      expect(name).not.toMatch(/flannel_flannel|_ms$|_milliseconds/);
      if (type === 'counter') expect(name).toMatch(/_total$/);
    }
  });

  it('a kernel batch is timed by its first op, and a failure counts the op that failed', async () => {
    const fake = new FakeKernel();
    const k = timedKernel(fake);
    const before = await metricValue('flannel_kernel_programming_duration_seconds', { op: 'addBridge' });
    const errsBefore = await metricValue('flannel_kernel_errors_total', { op: 'setLinkUp' });
    await k.batch([{ op: 'addBridge', name: 'br-m0' }]);
    expect(await metricValue('flannel_kernel_programming_duration_seconds', { op: 'addBridge' })).toBe(before + 1);
    fake.world.failOn('setLinkUp', 'EPERM');
    await expect(k.batch([{ op: 'addBridge', name: 'br-m1' }, { op: 'setLinkUp', dev: 'br-m1' }])).rejects.toThrow();
    expect(await metricValue('flannel_kernel_programming_duration_seconds', { op: 'addBridge' })).toBe(before + 2);
    expect(await metricValue('flannel_kernel_errors_total', { op: 'setLinkUp' })).toBe(errsBefore + 1);
    // the same verbs otherwise, and a netns handle is timed too
    expect((await k.getLink('br-m0'))?.kind).toBe('bridge');
    expect(k.inNetns('/').batch).not.toBe(fake.batch);
  });

  it('a lease event moves the convergence histogram and the peers gauge; the watch loop beats', async () => {
    const fake = fakeManager();
    const sm = instrumentSubnetManager(fake);
    setPeerSource(() => sm.peerCounts());
    const logger = memoryLogger();
    const own = vxlanLease('10.10.16.0/20', '192.168.100.1', '0a:00:00:00:00:01');
    const guard = new PeerGuard({ own, enableIPv4: true, enableIPv6: false, network: parseNet('10.10.0.0/16'), ownAddrs: [], log: (m) => logger.warn(m) });
    const loop = new LeaseLoop({ name: 'test', subnetManager: sm, logger, guard });
    const ac = new AbortController();
    controllers.push(ac);
    const handled: string[] = [];
    void loop.run(ac.signal, { handleBatch: async (evs) => void handled.push(...evs.keys()) });
    const before = await metricValue('flannel_lease_event_to_programmed_seconds');
    fake.push([]); // the snapshot: startup, not an event
    await loop.firstSync;
    expect(await metricValue('flannel_lease_event_to_programmed_seconds')).toBe(before);
    const added = (l: Lease): LeaseEvent => ({ type: 'added', lease: l });
    fake.push([added(vxlanLease('10.10.32.0/20', '192.168.100.2', '0a:00:00:00:00:02')), added(vxlanLease('10.10.48.0/20', '192.168.100.3', '0a:00:00:00:00:03'))]);
    await until(() => handled.length === 2, 'two peers handled', IN_PROCESS);
    await until(async () => (await metricValue('flannel_lease_event_to_programmed_seconds')) === before + 2, 'two observations', IN_PROCESS);
    expect(await metricValue('flannel_peers', { backend: 'vxlan', family: 'ipv4' })).toBe(2);
    expect(await renderMetrics()).toMatch(/^flannel_peers\{backend="vxlan",family="ipv4"\} 2$/m);
    fake.push([{ type: 'removed', lease: vxlanLease('10.10.32.0/20', '192.168.100.2', '0a:00:00:00:00:02') }]);
    await until(async () => (await metricValue('flannel_peers', { backend: 'vxlan', family: 'ipv4' })) === 1, 'one peer left', IN_PROCESS);
    // waiting for the next batch is idle, not wedged
    expect(heartbeats.stalled(0).filter((s) => s.startsWith(LEASE_WATCH_LOOP))).toEqual([]);
  });

  it('acquisitions count by result and set the own expiry', async () => {
    const fake = fakeManager();
    const sm = instrumentSubnetManager(fake);
    const ok = await metricValue('flannel_lease_acquisitions_total', { result: 'success' });
    const lease = await sm.acquireLease({ publicIP: parseIP('192.168.100.1') }, new AbortController().signal);
    expect(await metricValue('flannel_lease_acquisitions_total', { result: 'success' })).toBe(ok + 1);
    expect(await metricValue('flannel_lease_expiration_timestamp_seconds')).toBe(lease.expiration / 1000);
    fake.acquireLease = () => Promise.reject(new Error('out of subnets'));
    const bad = await metricValue('flannel_lease_acquisitions_total', { result: 'failure' });
    await expect(sm.acquireLease({ publicIP: parseIP('192.168.100.1') }, new AbortController().signal)).rejects.toThrow('out of subnets');
    expect(await metricValue('flannel_lease_acquisitions_total', { result: 'failure' })).toBe(bad + 1);
  });

  it('the recorders other modules call move their counters', async () => {
    const cases: Array<[() => void, string, Record<string, string>]> = [
      [() => recordRepair('route', 'restored'), 'flannel_repairs_total', { kind: 'route', action: 'restored' }],
      [() => recordRepair('fdb', 'removed'), 'flannel_repairs_total', { kind: 'fdb', action: 'removed' }],
      [() => recordLeaseRenewal('failure'), 'flannel_lease_renewals_total', { result: 'failure' }],
      [() => recordWatchResync(), 'flannel_datastore_watch_resyncs_total', {}],
      [() => recordTrafficResync('iptables', 'repaired'), 'flannel_traffic_rule_resyncs_total', { rules: 'iptables', result: 'repaired' }],
    ];
    for (const [record, name, labels] of cases) {
      const before = await metricValue(name, labels);
      record();
      expect(await metricValue(name, labels)).toBe(before + 1);
    }
  });
});

describe('process metrics', () => {
  it('pass promtool check metrics with every flannel_ metric and the process ones', async () => {
    const { spawnSync } = await import('node:child_process');
    if (spawnSync('promtool', ['--version']).status !== 0) return;
    const { enableProcessMetrics } = await import('../../../daemon/metrics/metrics.js');
    enableProcessMetrics();
    const text = await renderMetrics();
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
    expect(check.status).toBe(0);
  });
});
