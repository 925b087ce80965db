// Two nodes with one identity (issue 9, item 2a): the VtepMAC of flannel.<VNI>. The live compatible
// device's MAC wins over the MAC file; the file is bound to the node that wrote it (a shared or cloned
// stateDir must not hand one node's MAC to another); a MAC another node's lease advertises is never used.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeKernel } from '../../../../../shared/kernel/fake/fake-kernel.js';
import { parseIP } from '../../../../../shared/net/ip.js';
import type { ExternalInterface } from '../../../../../daemon/backend/backend.js';
import { createVxlanBackend, macFilePath, macNodeFilePath, readStoredMac } from '../../../../../daemon/backend/vxlan/vxlan.js';
import { FakeSubnetManager, vxlanLease, linesLogger } from '../../../../helpers/fake-subnet-manager.js';

const EXT: ExternalInterface = {
  iface: { name: 'eth0', index: 2, mtu: 1500 },
  ifaceAddr: parseIP('192.168.100.1'),
  extAddr: parseIP('192.168.100.1'),
};
const DEV = 'flannel.100';
const FILE_MAC = '0a:bb:cc:dd:ee:ff';
const LIVE_MAC = '0a:11:22:33:44:55';

let stateDir: string;
let kernel: FakeKernel;
let manager: FakeSubnetManager;
let logs: string[];
const controllers: AbortController[] = [];

beforeEach(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'vxlan-mac-'));
  kernel = new FakeKernel();
  manager = new FakeSubnetManager('10.10.16.0/20');
  logs = [];
  // the underlay interface, whose MAC is part of the node's identity
  await kernel.batch([{ op: 'addBridge', name: 'eth0' }, { op: 'setLink', dev: 'eth0', mac: '52:54:00:00:00:01' }]);
});

afterEach(() => {
  for (const ac of controllers.splice(0)) ac.abort();
  rmSync(stateDir, { recursive: true, force: true });
});

async function register(): Promise<string> {
  const ac = new AbortController();
  controllers.push(ac);
  await createVxlanBackend({ subnetManager: manager, extIface: EXT, kernel, stateDir, logger: linesLogger(logs) }).registerNetwork(ac.signal, {
    enableIPv4: true,
    enableIPv6: false,
    backend: { Type: 'vxlan', VNI: 100 },
  });
  const mac = kernel.world.namespaces.get('/')!.links.get(DEV)!.mac;
  expect((manager.acquired.at(-1)!.backendData as { VtepMAC: string }).VtepMAC).toBe(mac);
  return mac;
}

const liveDevice = () =>
  kernel.ensureVxlan(DEV, { vni: 100, port: 8472, local: '192.168.100.1', dev: 'eth0', learning: false, mac: LIVE_MAC, mtu: 1450 });

describe('VtepMAC', () => {
  it('the live compatible device keeps its MAC over the MAC file (and the file follows it)', async () => {
    writeFileSync(macFilePath(stateDir, DEV), `${FILE_MAC}\n`);
    await liveDevice();
    const index = kernel.world.namespaces.get('/')!.links.get(DEV)!.index;
    expect(await register()).toBe(LIVE_MAC);
    expect(kernel.world.namespaces.get('/')!.links.get(DEV)!.index).toBe(index);
    expect(readFileSync(macFilePath(stateDir, DEV), 'utf8')).toBe(`${LIVE_MAC}\n`);
  });

  it('a MAC file written by another node (shared or cloned stateDir) is ignored, with a log line', async () => {
    writeFileSync(macFilePath(stateDir, DEV), `${FILE_MAC}\n`);
    writeFileSync(macNodeFilePath(stateDir, DEV), '192.168.100.2 52:54:00:00:00:02\n');
    const mac = await register();
    expect(mac).not.toBe(FILE_MAC);
    expect(logs.join('\n')).toMatch(/ignoring .*flannel\.100\.mac: it was written by another node \(192\.168\.100\.2 52:54:00:00:00:02, this node is 192\.168\.100\.1 52:54:00:00:00:01\)/);
    // now bound to this node
    expect(await readStoredMac(stateDir, DEV)).toEqual({ mac, node: '192.168.100.1 52:54:00:00:00:01' });
  });

  it('with no device and no MAC file, the VtepMAC the datastore recorded for this node is reused (kube backend-data, as Go)', async () => {
    manager.stored = { v4: '0A:CC:CC:CC:CC:01' };
    expect(await register()).toBe('0a:cc:cc:cc:cc:01');
    expect(logs.join('\n')).not.toMatch(/picking a new one/);
  });

  it('a recorded VtepMAC another node advertises now is not reused', async () => {
    manager.stored = { v4: '0a:cc:cc:cc:cc:01' };
    manager.others = [vxlanLease('10.10.32.0/20', '192.168.100.2', '0a:cc:cc:cc:cc:01')];
    const mac = await register();
    expect(mac).not.toBe('0a:cc:cc:cc:cc:01');
    expect(logs.join('\n')).toMatch(/VtepMAC 0a:cc:cc:cc:cc:01 from the VtepMAC this node advertised before .* is already advertised/);
  });

  it('the MAC file of this node is used when the device is gone (reboot), and stays a plain MAC line', async () => {
    const first = await register();
    await kernel.deleteLink(DEV);
    expect(await register()).toBe(first);
    // older versions of ours read the MAC file as one MAC line
    expect(readFileSync(macFilePath(stateDir, DEV), 'utf8')).toBe(`${first}\n`);
  });

  it('a MAC file of an older version (no node line) is used unless another lease advertises it', async () => {
    writeFileSync(macFilePath(stateDir, DEV), `${FILE_MAC}\n`);
    expect(await register()).toBe(FILE_MAC);
  });

  it('a MAC from the file that another node advertises is not used: a new one is picked and logged', async () => {
    writeFileSync(macFilePath(stateDir, DEV), `${FILE_MAC}\n`);
    manager.others = [vxlanLease('10.10.32.0/20', '192.168.100.2', FILE_MAC)];
    const mac = await register();
    expect(mac).not.toBe(FILE_MAC);
    expect(logs.join('\n')).toMatch(/VtepMAC 0a:bb:cc:dd:ee:ff from .* is already advertised by the lease 10\.10\.32\.0\/20 \(PublicIP 192\.168\.100\.2\): picking a new one/);
  });

  it('a live device whose MAC another node advertises is re-created with a new MAC', async () => {
    await liveDevice();
    manager.others = [vxlanLease('10.10.32.0/20', '192.168.100.2', LIVE_MAC)];
    const mac = await register();
    expect(mac).not.toBe(LIVE_MAC);
    expect(logs.join('\n')).toMatch(/VtepMAC 0a:11:22:33:44:55 from the existing device flannel\.100 is already advertised/);
  });

  it('our own lease from an earlier run (same PublicIP) is not another node', async () => {
    writeFileSync(macFilePath(stateDir, DEV), `${FILE_MAC}\n`);
    manager.others = [vxlanLease('10.10.16.0/20', '192.168.100.1', FILE_MAC)];
    expect(await register()).toBe(FILE_MAC);
  });
});
