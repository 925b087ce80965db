// flannelctl's command line: commands, Go flag syntax, flanneld's FLANNELD_* variables.
import { describe, expect, it } from 'vitest';
import { parseCtlArgs } from '../../../ctl/flags.js';

describe('flannelctl flags', () => {
  it('takes the command and flanneld-style flags; FLANNELD_* fill what is not given; NODE_NAME names the node', () => {
    const p = parseCtlArgs(['doctor', '-subnet-file', '/t/s.env', '--skip=probe', '--skip', 'cni', '--kube-subnet-mgr'], { FLANNELD_SUBNET_FILE: '/x', FLANNELD_ETCD_PREFIX: '/p', NODE_NAME: 'n1' });
    expect(p.kind).toBe('run');
    if (p.kind !== 'run') return;
    expect(p.command).toBe('doctor');
    expect(p.options).toMatchObject({ subnetFile: '/t/s.env', etcdPrefix: '/p', skip: ['probe', 'cni'], kubeSubnetMgr: true, nodeName: 'n1', cniConfDir: '/etc/cni/net.d', cniBinDir: '/opt/cni/bin' });
  });

  it('-o json or table only; unknown commands and flags exit 2 with the usage', () => {
    expect(parseCtlArgs(['leases', '-o', 'json'], {})).toMatchObject({ kind: 'run', options: { output: 'json' } });
    expect(parseCtlArgs(['leases', '-o', 'yaml'], {})).toMatchObject({ kind: 'exit', code: 2 });
    const bad = parseCtlArgs(['leases', '--nope'], {});
    expect(bad).toMatchObject({ kind: 'exit', code: 2 });
    if (bad.kind === 'exit') expect(bad.stderr).toMatch(/^flannelctl leases: flag provided but not defined: -nope\nUsage: flannelctl <command>/);
    expect(parseCtlArgs(['status'], {})).toMatchObject({ kind: 'exit', code: 2 });
    expect(parseCtlArgs([], {})).toMatchObject({ kind: 'exit', code: 2 });
    expect(parseCtlArgs(['--help'], {})).toMatchObject({ kind: 'exit', code: 0 });
  });
});
