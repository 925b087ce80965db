import { describe, expect, it } from 'vitest';
import { DatastoreHealth, leaseOverdue } from '../../../daemon/health-checks.js';
import { HealthState, startHealthServer } from '../../../daemon/health.js';
import { Heartbeats } from '../../../daemon/metrics/heartbeat.js';
import { metricValue } from '../../../daemon/metrics/metrics.js';
import { memoryLogger } from '../../../shared/log.js';
import { parseNet } from '../../../shared/net/ip.js';
import type { Lease } from '../../../daemon/lease.js';

describe('health server', () => {
  it('/healthz follows liveness, /readyz readiness (with the reasons), /metrics serves the registry', async () => {
    const log = memoryLogger();
    const state = new HealthState(log);
    let written = false;
    let wedged: string | undefined;
    state.addReadiness('startup', () => (written ? undefined : 'subnet.env not written yet'));
    state.addLiveness('loops', () => wedged);
    const h = await startHealthServer('127.0.0.1', 0, state);
    try {
      const base = `http://127.0.0.1:${h.port()}`;
      const get = async (p: string) => {
        const r = await fetch(`${base}${p}`);
        return [r.status, await r.text()];
      };
      expect(await get('/healthz')).toEqual([200, 'flanneld is running']);
      expect(await get('/readyz')).toEqual([503, 'flanneld is not ready yet: subnet.env not written yet']);
      written = true;
      expect(await get('/readyz')).toEqual([200, 'flanneld is ready']);
      wedged = 'lease-watch: no progress for 200s';
      expect(await get('/healthz')).toEqual([500, 'flanneld is wedged: lease-watch: no progress for 200s']);
      const [status, text] = await get('/metrics');
      expect(status).toBe(200);
      expect(text).toContain('# TYPE flannel_ready gauge');
      expect(text).toMatch(/^flannel_ready 1$/m);
      expect(await get('/nope')).toEqual([404, '404 page not found\n']);
    } finally {
      await h.close();
    }
  });

  it('logs each readiness and liveness transition once, with the reason', async () => {
    const log = memoryLogger();
    const state = new HealthState(log);
    let reason: string | undefined = 'etcd unreachable for 31s (connect ECONNREFUSED)';
    let stuck: string | undefined;
    state.addReadiness('datastore', () => reason);
    state.addLiveness('loops', () => stuck);
    for (let i = 0; i < 3; i++) state.ready(); // not ready from the start: no transition, no line
    expect(log.lines).toEqual([]);
    reason = undefined;
    for (let i = 0; i < 3; i++) state.ready();
    reason = 'etcd unreachable for 31s (connect ECONNREFUSED)';
    for (let i = 0; i < 3; i++) state.ready();
    expect(await metricValue('flannel_ready')).toBe(0);
    reason = undefined;
    for (let i = 0; i < 3; i++) state.ready();
    expect(await metricValue('flannel_ready')).toBe(1);
    stuck = 'iptables-resync: no progress for 130s';
    for (let i = 0; i < 3; i++) state.live();
    stuck = undefined;
    state.live();
    expect(log.lines).toEqual([
      'I flanneld is ready',
      'W flanneld is not ready: etcd unreachable for 31s (connect ECONNREFUSED)',
      'I flanneld is ready',
      'E flanneld is wedged (/healthz fails, a restart may help): iptables-resync: no progress for 130s',
      'I flanneld is making progress again',
    ]);
  });
});

describe('heartbeats', () => {
  it('a loop busy past its period plus the stall is reported; one waiting on a watch never is', async () => {
    let now = 1_000_000;
    const hb = new Heartbeats(() => now);
    hb.register('iptables-resync', 5000);
    hb.register('lease-watch');
    let release!: () => void;
    const waiting = hb.idleWhile('lease-watch', new Promise<void>((r) => (release = r)));
    now += 5000 + 120_000; // exactly the allowance: still fine
    expect(hb.stalled(120_000)).toEqual([]);
    now += 1000;
    expect(hb.stalled(120_000)).toEqual(['iptables-resync: no progress for 126s']);
    hb.beat('iptables-resync');
    expect(hb.stalled(120_000)).toEqual([]);
    // the lease watch was idle all along (an hour with no lease event is healthy)
    now += 3600_000;
    hb.beat('iptables-resync');
    expect(hb.stalled(120_000)).toEqual([]);
    release();
    await waiting;
    // then busy with a batch (no next() for 121 s): wedged
    now += 121_000;
    hb.beat('iptables-resync');
    expect(hb.stalled(120_000)).toEqual(['lease-watch: no progress for 121s']);
    hb.unregister('lease-watch');
    expect(hb.stalled(120_000)).toEqual([]);
  });
});

describe('readiness conditions', () => {
  it('the datastore is not-ready only after the grace, and ready again when it answers', async () => {
    let now = 0;
    const d = new DatastoreHealth('etcd', 30_000, () => now);
    expect(await metricValue('flannel_datastore_up')).toBe(1);
    d.down('connect ECONNREFUSED 127.0.0.1:2379');
    expect(await metricValue('flannel_datastore_up')).toBe(0);
    now = 29_999;
    d.down('connect ECONNREFUSED 127.0.0.1:2379'); // still down: the outage started at 0
    expect(d.check()).toBeUndefined();
    now = 31_000;
    expect(d.check()).toBe('etcd unreachable for 31s (connect ECONNREFUSED 127.0.0.1:2379)');
    d.up();
    expect(d.check()).toBeUndefined();
    expect(await metricValue('flannel_datastore_up')).toBe(1);
  });

  it('the own lease is overdue once past expiration - margin by the allowance; reservations never are', () => {
    const h = 3600_000;
    const lease: Lease = { enableIPv4: true, enableIPv6: false, subnet: parseNet('10.5.16.0/20'), attrs: { publicIP: undefined as never }, expiration: 24 * h };
    expect(leaseOverdue(lease, h, 30_000, 23 * h + 29_000)).toBeUndefined();
    expect(leaseOverdue(lease, h, 30_000, 23 * h + 31_000)).toBe('lease 10.5.16.0/20 was due for renewal 31s ago (expires 1970-01-02T00:00:00.000Z)');
    expect(leaseOverdue({ ...lease, reservation: true }, h, 30_000, 30 * h)).toBeUndefined();
    expect(leaseOverdue({ ...lease, expiration: 0 }, h, 30_000, 30 * h)).toBeUndefined();
    expect(leaseOverdue(undefined, h, 30_000, 30 * h)).toBeUndefined();
  });
});
