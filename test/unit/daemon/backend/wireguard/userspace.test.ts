// The wireguard-go supervisor against a stand-in wireguard-go (a small script that listens on the UAPI
// socket and answers as wireguard-go does): it waits for the socket, a killed process is started
// again and the network is told to re-apply, and stop() ends it. Also UapiControl over that socket.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WireguardGo } from '../../../../../daemon/backend/wireguard/userspace.js';
import { UapiControl } from '../../../../../daemon/backend/wireguard/control.js';
import { WgKey } from '../../../../../daemon/backend/wireguard/keys.js';
import { linesLogger } from '../../../../helpers/fake-subnet-manager.js';
import { until } from '../../../../helpers/until.js';

// argv: -f <dev>; socket under $H9_FAKE_WG_DIR; keeps peers; `get` lists them as wireguard-go does
const FAKE = `#!${process.execPath}
const net = require('node:net'); const fs = require('node:fs');
const dev = process.argv[3]; const path = process.env.H9_FAKE_WG_DIR + '/' + dev + '.sock';
try { fs.unlinkSync(path); } catch {}
const peers = new Map();
net.createServer((c) => { let buf = ''; c.on('data', (d) => { buf += d; if (!buf.endsWith('\\n\\n')) return;
  const lines = buf.trim().split('\\n'); buf = '';
  if (lines[0] === 'get=1') { c.end([...peers].map(([k, v]) => 'public_key=' + k + '\\n' + v.map((a) => 'allowed_ip=' + a + '\\n').join('')).join('') + 'errno=0\\n\\n'); return; }
  let cur; for (const l of lines.slice(1)) { const [k, v] = l.split('=');
    if (k === 'public_key') { cur = v; peers.set(v, peers.get(v) || []); }
    else if (k === 'remove') peers.delete(cur); else if (k === 'replace_allowed_ips') peers.set(cur, []);
    else if (k === 'allowed_ip') peers.get(cur).push(v); }
  c.end('errno=0\\n\\n'); }); }).listen(path);
`;

let dir: string;
let bin: string;
let sup: WireguardGo | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'h9-fake-wg-'));
  bin = join(dir, 'fake-wireguard-go');
  writeFileSync(bin, FAKE);
  chmodSync(bin, 0o755);
  process.env.H9_FAKE_WG_DIR = dir;
});

afterEach(async () => {
  await sup?.stop();
  sup = undefined;
  delete process.env.H9_FAKE_WG_DIR;
  rmSync(dir, { recursive: true, force: true });
});

describe('the wireguard-go supervisor', () => {
  it('starts it, restarts it when it is killed and asks for the peers again, and stops it', async () => {
    const logs: string[] = [];
    let reapplied = 0;
    sup = new WireguardGo({ binary: bin, dev: 'flannel-wg', logger: linesLogger(logs), socketDir: dir, onRestart: async () => void reapplied++ });
    await sup.start();
    const control = new UapiControl(dir);
    const key = WgKey.generatePrivate().publicKey();
    await control.configure('flannel-wg', { peers: [{ publicKey: key, allowedIPs: ['10.244.2.0/24'] }] });
    expect(await control.peers('flannel-wg')).toEqual([{ publicKey: key.toString(), allowedIPs: ['10.244.2.0/24'] }]);

    const first = sup.pid!;
    process.kill(first, 'SIGKILL');
    await until(() => reapplied === 1, 'the restart to be reported', { ms: 10_000 });
    expect(sup.pid).not.toBe(first);
    expect(sup.restartCount).toBe(1);
    expect(logs.join('\n')).toMatch(/wireguard-go for flannel-wg \(pid \d+\) exited \(SIGKILL\); restarting it/);
    // a new process: the peers are gone until the network re-applies them
    expect(await control.peers('flannel-wg')).toEqual([]);

    const last = sup.pid!;
    await sup.stop();
    expect(() => process.kill(last, 0)).toThrow();
  });

  it('fails clearly when the binary exits before it listens', async () => {
    sup = new WireguardGo({ binary: '/bin/false', dev: 'flannel-wg', logger: linesLogger([]), socketDir: dir, onRestart: async () => {} });
    await expect(sup.start()).rejects.toThrow(/\/bin\/false for flannel-wg exited \(status 1\) before it was ready/);
  });
});
