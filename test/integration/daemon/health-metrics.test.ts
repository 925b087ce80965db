// The built flanneld's operability endpoints through a real etcd outage: /readyz goes 503 only after
// --datastore-down-grace once etcd is stopped (SIGSTOP by its PID), comes back when etcd does, and
// each transition is logged once with its reason; /healthz stays 200 (an unreachable etcd is not a
// wedged daemon); /metrics is valid for `promtool check metrics` and says what happened; systemd's
// READY=1 arrives on a NOTIFY_SOCKET the test owns, from the daemon's pid.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasEtcd, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { canUseNetns, cleanupNetns, type Netns } from '../../helpers/netns.js';
import { listenNotifySocket, type NotifySocket } from '../../helpers/notify-socket.js';
import { buildFlanneld, createDaemonNetns, daemonRunner, SEED_ALLOC, until } from './daemon-harness.js';

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

describe.skipIf(!hasEtcd || !canUseNetns)('flanneld health, readiness and metrics (built, etcd)', () => {
  let ns: Netns;
  let etcd: TestEtcd;
  let dir: string;
  let sock: NotifySocket | undefined;
  const daemons = daemonRunner(() => ns);

  beforeAll(async () => {
    buildFlanneld();
    ns = createDaemonNetns('fhm');
    etcd = await startEtcd({ netns: ns.name });
    dir = mkdtempSync(join(tmpdir(), `flanneld-health-${process.pid}-`));
  });
  afterEach(async () => {
    etcd.resume();
    sock?.close();
    await daemons.killAll();
  });
  afterAll(async () => {
    await etcd?.stop();
    ns?.delete();
    cleanupNetns();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const get = (port: number, path: string): [number, string] => {
    const r = ns.exec(['curl', '-s', '-m', '5', '-w', '\n%{http_code}', `http://127.0.0.1:${port}${path}`], { allowFail: true });
    const i = r.stdout.lastIndexOf('\n');
    return [Number(r.stdout.slice(i + 1)), r.stdout.slice(0, i)];
  };
  const count = (text: string, s: string) => text.split(s).length - 1;

  it('readiness follows an etcd outage after the grace, liveness does not; metrics and READY=1', async () => {
    etcd.ctl(['put', '/coreos.com/network/config', SEED_ALLOC]);
    sock = await listenNotifySocket();
    const file = join(dir, 'subnet.env');
    const port = 18090 + Math.floor(Math.random() * 800);
    const d = daemons.run(
      ['--etcd-endpoints', etcd.endpoint, '--iface', 'ext0', '--subnet-file', file, '--healthz-ip', '127.0.0.1', '--healthz-port', String(port), '--datastore-down-grace', '2', '-v', '2'],
      { NOTIFY_SOCKET: sock.path },
    );
    await until(() => existsSync(file), 'subnet.env');
    await until(() => get(port, '/readyz')[0] === 200, '/readyz 200');
    expect(get(port, '/readyz')).toEqual([200, 'flanneld is ready']);
    expect(get(port, '/healthz')).toEqual([200, 'flanneld is running']);

    // systemd's READY=1 from the daemon itself, once subnet.env is there
    const ready = await until(() => sock!.messages().find((m) => m.message === 'READY=1'), 'READY=1');
    expect(ready.pid).toBe(d.proc.pid);
    // the lines runbooks grep for, in klog form (file:line)
    const log = d.stderr();
    expect(log).toMatch(/^I\d{4} \d{2}:\d{2}:\d{2}\.\d{6} +\d+ [\w.-]+:\d+\] Found network config - Backend type: alloc$/m);
    expect(log).toMatch(new RegExp(`^I\\d{4} \\S+ +\\d+ [\\w.-]+:\\d+\\] Wrote subnet file to ${file.replace(/[.]/g, '\\.')}$`, 'm'));

    let [status, metrics] = get(port, '/metrics');
    expect(status).toBe(200);
    expect(metrics).toMatch(/^flannel_lease_acquisitions_total\{result="success"\} 1$/m);
    expect(metrics).toMatch(/^flannel_datastore_up 1$/m);
    expect(metrics).toMatch(/^flannel_ready 1$/m);
    expect(metrics).toMatch(/^flannel_lease_expiration_timestamp_seconds \d{10}/m);
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);
    if (hasPromtool) {
      const check = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
      expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
      expect(check.status).toBe(0);
    }

    // etcd stops answering (SIGSTOP by its PID): not ready, but only after the 2 s grace
    const stoppedAt = Date.now();
    etcd.pause();
    const down = await until(() => {
      const r = get(port, '/readyz');
      return r[0] === 503 ? r : undefined;
    }, '/readyz 503 during the outage');
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(2000);
    expect(down[1]).toMatch(/^flanneld is not ready yet: etcd unreachable for \d+s/);
    expect(get(port, '/healthz')).toEqual([200, 'flanneld is running']);
    [, metrics] = get(port, '/metrics');
    expect(metrics).toMatch(/^flannel_datastore_up 0$/m);
    expect(metrics).toMatch(/^flannel_ready 0$/m);

    // etcd back: ready again
    etcd.resume();
    await until(() => get(port, '/readyz')[0] === 200, '/readyz 200 after etcd is back', { ms: 20_000 });
    [, metrics] = get(port, '/metrics');
    expect(metrics).toMatch(/^flannel_datastore_up 1$/m);
    // each transition logged once, with the reason (the daemon's stderr reaches us a little after its answers)
    await until(() => count(d.stderr(), '] flanneld is ready\n') === 2, 'the second "flanneld is ready"');
    const after = d.stderr();
    expect(count(after, '] flanneld is not ready: etcd unreachable for ')).toBe(1);
    expect(after).not.toContain('wedged');
  });
});
