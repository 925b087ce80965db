// Garbage input for the built dist/bin/flannel: every row must give valid CNI error JSON on stdout,
// exit status 1, the code the Go flannel gives for the same input (derived from flannel-io/cni-plugin and skel: the Go
// flannel is not packaged here), and no change in the host netns or the data dirs beyond what the
// reference itself does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { DIST, GO_CNI, ensureBuilt, hasGoPlugins, SUBNET_ENV, tempDir, writeSubnetEnv } from './helpers.js';
import { runPluginSync } from '../../helpers/run-plugin.js';

const FLANNEL = join(DIST, 'flannel');
const SUPPORTED = '["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]';
let work: string;
let host: Netns;
let pod: Netns;
let subnetFile: string;
let linksBefore: string;

beforeAll(() => {
  ensureBuilt('flannel');
  work = tempDir('flannel-garbage');
  host = createNetns('flgh');
  pod = createNetns('flgp');
  linksBefore = host.exec(['ip', '-br', 'link']).stdout;
  subnetFile = writeSubnetEnv(work, SUBNET_ENV.v4());
});
afterAll(() => {
  cleanupNetns();
  rmSync(work, { recursive: true, force: true });
});

let seq = 0;
interface Row {
  name: string;
  env?: Record<string, string | undefined>;
  stdin?: string | ((dir: string) => string);
  /** written as subnet.env for this row (absent: the valid v4 file) */
  subnetEnv?: string | null;
  code: number;
  msg: string | RegExp | ((dir: string) => string);
  details?: string | ((dir: string) => string);
}

const conf = (dir: string, extra: object = {}) =>
  JSON.stringify({ cniVersion: '0.3.1', name: 'cbr0', type: 'flannel', subnetFile: join(dir, 'subnet.env'), dataDir: join(dir, 'data'), ...extra });

const ROWS: Row[] = [
  { name: 'empty stdin', stdin: '', code: 6, msg: 'error unmarshall network config: unexpected end of JSON input' },
  { name: 'broken JSON', stdin: '{"name":"cbr0",', code: 6, msg: 'error unmarshall network config: unexpected end of JSON input' },
  { name: 'not an object', stdin: '[1]', code: 6, msg: /^error unmarshall network config: json: cannot unmarshal array/ },
  { name: 'no network name', stdin: '{"type":"flannel"}', code: 7, msg: 'missing network name' },
  { name: 'bad network name', stdin: '{"name":"../x","type":"flannel"}', code: 7, msg: 'invalid characters found in network name', details: '../x' },
  { name: 'unknown cniVersion', stdin: (d) => conf(d, { cniVersion: '9.9.9' }), code: 1, msg: 'incompatible CNI versions', details: `config is "9.9.9", plugin supports ${SUPPORTED}` },
  { name: 'missing env', env: { CNI_CONTAINERID: undefined, CNI_NETNS: undefined, CNI_IFNAME: undefined, CNI_PATH: undefined }, code: 4, msg: 'required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing' },
  { name: 'unknown command', env: { CNI_COMMAND: 'FROB' }, code: 4, msg: 'unknown CNI_COMMAND: FROB' },
  { name: 'hostile container ID', env: { CNI_CONTAINERID: '../../etc/passwd' }, code: 4, msg: 'invalid characters in containerID', details: '../../etc/passwd' },
  { name: 'hostile container ID on DEL', env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: '../x' }, code: 4, msg: 'invalid characters in containerID', details: '../x' },
  { name: 'hostile interface name', env: { CNI_IFNAME: 'eth0/../x' }, code: 4, msg: 'interface name contains / or : or whitespace characters' },
  { name: 'interface name too long', env: { CNI_IFNAME: 'a'.repeat(16) }, code: 4, msg: 'interface name is too long', details: 'interface name should be less than 16 characters' },
  { name: 'CHECK below 0.4.0', env: { CNI_COMMAND: 'CHECK' }, code: 1, msg: 'config version does not allow CHECK' },
  { name: 'missing subnet.env', subnetEnv: null, code: 999, msg: (d) => `failed to load flannel 'subnet.env' file: open ${join(d, 'subnet.env')}: no such file or directory. Check the flannel pod log for this node.`, details: (d) => `no flanneld is running on this node, and it is what writes ${join(d, 'subnet.env')}: start it (kube-flannel: kubectl -n kube-flannel get pods -o wide --field-selector spec.nodeName=<this node>, then its log; systemd: systemctl status flanneld, journalctl -u flanneld)` },
  { name: 'subnet.env missing keys', subnetEnv: 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_MTU=1450\n', code: 999, msg: (d) => `failed to load flannel 'subnet.env' file: ${join(d, 'subnet.env')} is missing FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_IPMASQ. Check the flannel pod log for this node.` },
  { name: 'garbled subnet.env', subnetEnv: 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.300/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n', code: 999, msg: "failed to load flannel 'subnet.env' file: invalid CIDR address: 10.244.1.300/24. Check the flannel pod log for this node." },
  { name: 'binary subnet.env', subnetEnv: '\u0000\u0001\u0002FLANNEL', code: 999, msg: /is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ/ },
  { name: 'subnet.env key without "="', subnetEnv: 'FLANNEL_MTU\n', code: 999, msg: /index out of range \[1\] with length 1/ },
  { name: 'delegate with a name', stdin: (d) => conf(d, { delegate: { name: 'x' } }), code: 999, msg: "'delegate' dictionary must not have 'name' field, it'll be set by flannel" },
  { name: 'delegate type not a string', stdin: (d) => conf(d, { delegate: { type: 7 } }), code: 999, msg: "'delegate' dictionary, if present, must have (string) 'type' field" },
  { name: 'delegate not an object', stdin: (d) => conf(d, { delegate: 'bridge' }), code: 999, msg: /^failed to load flannel netconf file: failed to load netconf: json: cannot unmarshal string into Go struct field/ },
];

describe.skipIf(!canUseNetns)('flannel garbage input', () => {
  it.each(ROWS.map((r) => [r.name, r] as const))('%s', (_name, row) => {
    const dir = join(work, `g${++seq}`);
    mkdirSync(dir);
    if (row.subnetEnv === undefined) writeSubnetEnv(dir, SUBNET_ENV.v4());
    else if (row.subnetEnv !== null) writeFileSync(join(dir, 'subnet.env'), row.subnetEnv);
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'ctr-g', CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_PATH: GO_CNI, ...row.env };
    const stdin = row.stdin === undefined ? conf(dir) : typeof row.stdin === 'function' ? row.stdin(dir) : row.stdin;
    const r = runPluginSync(FLANNEL, env, stdin, host);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { code: number; msg: string; details?: string };
    expect(Object.keys(out).every((k) => ['code', 'msg', 'details'].includes(k))).toBe(true);
    expect(out.code).toBe(row.code);
    const msg = typeof row.msg === 'function' ? row.msg(dir) : row.msg;
    if (msg instanceof RegExp) expect(out.msg).toMatch(msg);
    else expect(out.msg).toBe(msg);
    expect(out.details).toBe(typeof row.details === 'function' ? row.details(dir) : row.details);
    // nothing changed: no scratch file, no links in the host netns
    expect(existsSync(join(dir, 'data')) ? readdirSync(join(dir, 'data')) : []).toEqual([]);
    expect(host.exec(['ip', '-br', 'link']).stdout).toBe(linksBefore);
  });

  it.skipIf(!hasGoPlugins)('a netns path that does not exist: the Go bridge error passes through, as with the Go flannel', () => {
    // The flannel plugin never opens the netns; the delegate does. With HEAD skel the runtime gets the
    // delegate's own error. The reference chain creates cni0 before it opens the netns (the Go bridge
    // does, in its own host netns) and leaves the scratch file for the runtime's DEL; we compare with
    // the Go bridge run directly in a twin host.
    const dir = join(work, 'netns');
    mkdirSync(dir);
    writeSubnetEnv(dir, SUBNET_ENV.v4());
    const ownHost = createNetns('flgn');
    const twin = createNetns('flgt');
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'ctr-n', CNI_NETNS: '/var/run/netns/flannel-test-does-not-exist', CNI_IFNAME: 'eth0', CNI_PATH: GO_CNI };
    const r = runPluginSync(FLANNEL, env, conf(dir, { ipam: { dataDir: join(dir, 'ipam') } }), ownHost);
    expect(r.code).toBe(1);
    const direct = runPluginSync(join(GO_CNI, 'bridge'), env, readSubnetScratch(dir, 'ctr-n').replace(join(dir, 'ipam'), join(dir, 'ipam2')), twin);
    expect(r.stdout).toBe(direct.stdout);
    expect(JSON.parse(r.stdout)).toEqual({
      code: 999,
      msg: 'failed to open netns "/var/run/netns/flannel-test-does-not-exist": failed to Statfs "/var/run/netns/flannel-test-does-not-exist": no such file or directory',
    });
    expect(ownHost.exec(['ip', '-br', 'link']).stdout.replace(/[0-9a-f:]{17}/g, '')).toBe(twin.exec(['ip', '-br', 'link']).stdout.replace(/[0-9a-f:]{17}/g, ''));
    expect(existsSync(join(dir, 'ipam', 'cbr0', '10.244.1.2'))).toBe(false);
    // DEL afterwards (what the runtime does after a failed ADD) succeeds and removes the scratch file
    const d = runPluginSync(FLANNEL, { ...env, CNI_COMMAND: 'DEL' }, conf(dir), ownHost);
    expect(d.code, d.stdout).toBe(0);
    expect(readdirSync(join(dir, 'data'))).toEqual([]);
  });
});

function readSubnetScratch(dir: string, id: string): string {
  return readFileSync(join(dir, 'data', id), 'utf8');
}
