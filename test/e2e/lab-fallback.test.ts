// The lab without the native shim (FLANNEL_NATIVE=off, as on a build machine without a C compiler):
// flanneld and the CNI plugins fall back to iproute2 execs and flock(1), and pods still talk across
// hosts. The periodic reconcile is the only repair trigger there (no kernel events): a short interval
// shows it still heals a deleted peer route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/until.js';
import { labCanRun, newLab } from './lab-harness.js';

const canRun = labCanRun([], true);
process.env.FLANNEL_NATIVE = 'off';
process.env.LAB_FLANNELD_ARGS = '--reconcile-interval=300ms';
const L = newLab({ name: 'fallback', prefix: 'fl-fb', hosts: 2, pods: 1 });
const { run: lab } = L;

describe.skipIf(!canRun)('the lab on the iproute2 fallback', () => {
  beforeAll(() => {
    lab('lab_up');
  }, 180_000);

  afterAll(() => {
    L.down();
  });

  it('flanneld says it programs through iproute2, and every pod pings every pod', () => {
    for (const i of [1, 2]) expect(L.flanneldLog(i)).toContain('Kernel programming through iproute2 (native shim not available (disabled by FLANNEL_NATIVE=off))');
    const r = lab('lab_ping_matrix', true);
    expect(r.stdout).not.toContain('FAIL');
    expect(r.stdout.match(/\bok\b/g)).toHaveLength(4); // every pod to every pod, itself included
    expect(r.status).toBe(0);
  });

  it('a deleted peer route comes back through the periodic reconcile', async () => {
    const peer = L.host(2).subnet;
    expect(L.inHost(1, ['ip', 'route', 'del', peer]).status).toBe(0);
    await until(() => L.inHost(1, ['ip', 'route', 'show', peer]).stdout.includes('flannel.100'), 'the route back', { ms: 10_000, every: 50 });
    await until(() => L.flanneldLog(1).includes(`Repaired route ${peer}`), 'the repair logged', { ms: 5_000, every: 50 });
  });
});
