// A real Prometheus scrapes the lab's flanneld daemons: 2 vxlan hosts serving /metrics on their
// healthz address (192.168.100.i:9102), Prometheus on 127.0.0.1 inside the lab's underlay namespace,
// which reaches every host. The scrape target is `up == 1` for each daemon (asked through
// Prometheus's HTTP API), the daemons' own series arrive (peers by backend and family, the own
// lease's expiry), and `promtool check metrics` accepts what a daemon serves.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/until.js';
import { labCanRun, newLab } from './lab-harness.js';

const PORT = 9102;
const canRun = labCanRun([], false) && spawnSync('prometheus', ['--version']).status === 0 && spawnSync('which', ['curl', 'promtool']).status === 0;
const L = newLab({ name: 'metrics', prefix: 'fl-e2m', hosts: 2, pods: 0 });
const { run: lab } = L;

/** curl inside the underlay namespace (the hosts and Prometheus' loopback are reachable there). */
function curlUl(url: string): { status: number; body: string } {
  const r = spawnSync('ip', ['netns', 'exec', L.ns('ul'), 'curl', '-s', '-m', '5', '-w', '\n%{http_code}', url], { encoding: 'utf8' });
  const out = r.stdout ?? '';
  const i = out.lastIndexOf('\n');
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

function query(promql: string): Sample[] {
  const r = curlUl(`http://127.0.0.1:9090/api/v1/query?query=${encodeURIComponent(promql)}`);
  if (r.status !== 200) return [];
  const doc = JSON.parse(r.body) as { status: string; data: { result: Sample[] } };
  return doc.status === 'success' ? doc.data.result : [];
}

describe.skipIf(!canRun)('Prometheus scrapes the lab', () => {
  let prom: ChildProcess | undefined;
  let promLog = '';

  beforeAll(() => {
    L.env.LAB_FLANNELD_ARGS = `--healthz-ip=0.0.0.0 --healthz-port=${PORT} -v=2`;
    lab('lab_up');
    const dir = join(L.dir, 'prometheus');
    mkdirSync(dir, { recursive: true });
    const targets = [1, 2].map((i) => `'192.168.100.${i}:${PORT}'`).join(', ');
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: flannel\n    static_configs:\n      - targets: [${targets}]\n`,
    );
    // on the underlay namespace's loopback only; killed by its PID (ip netns exec execs it in place)
    prom = spawn(
      'ip',
      ['netns', 'exec', L.ns('ul'), 'prometheus', `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--web.listen-address=127.0.0.1:9090'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prom.stderr!.on('data', (b: Buffer) => (promLog = (promLog + b.toString()).slice(-20_000)));
  }, 180_000);
  afterAll(() => {
    if (prom && prom.exitCode === null && prom.signalCode === null) prom.kill('SIGKILL');
    L.down();
  });

  it('every daemon is up == 1 for Prometheus, with its peers and lease series', async () => {
    const ups = await until(
      () => {
        const r = query('up{job="flannel"}');
        return r.length === 2 && r.every((s) => s.value[1] === '1') ? r : undefined;
      },
      'up == 1 for both daemons',
      { ms: 60_000, every: 500 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${query('up').map((s) => JSON.stringify(s)).join('\n')}\n${promLog}`);
    });
    expect(ups.map((s) => s.metric.instance).sort()).toEqual([`192.168.100.1:${PORT}`, `192.168.100.2:${PORT}`]);

    // each host programs its one peer; both leases expire in the future
    const peers = await until(() => {
      const r = query('flannel_peers{backend="vxlan",family="ipv4"}');
      return r.length === 2 ? r : undefined;
    }, 'flannel_peers from both', { ms: 30_000, every: 500 });
    expect(peers.map((s) => s.value[1])).toEqual(['1', '1']);
    const expiry = query('flannel_lease_expiration_timestamp_seconds - time()');
    expect(expiry).toHaveLength(2);
    for (const s of expiry) expect(Number(s.value[1])).toBeGreaterThan(3600);
    expect(query('flannel_ready').map((s) => s.value[1])).toEqual(['1', '1']);
    expect(query('flannel_kernel_programming_duration_seconds_count').length).toBeGreaterThan(0);

    // what Prometheus scraped passes its own linter
    const m = curlUl(`http://192.168.100.1:${PORT}/metrics`);
    expect(m.status).toBe(200);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: m.body, encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
    expect(check.status).toBe(0);
  });
});
