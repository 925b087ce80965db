import { describe, expect, it } from 'vitest';
import { closeSync, openSync } from 'node:fs';
import { MAX_STDIN, readBounded, runPlugin, type PluginIo } from '../../../../shared/cni/skel.js';
import { CniError } from '../../../../shared/cni/errors.js';
import { SUPPORTED_VERSIONS } from '../../../../shared/cni/version.js';
import type { CmdArgs, PluginFuncs, Result } from '../../../../shared/cni/types.js';

const RESULT: Result = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'eth0', mac: '0a:58:0a:f4:01:02', sandbox: '/var/run/netns/x' }],
  ips: [{ interface: 0, address: '10.244.1.2/24', gateway: '10.244.1.1' }],
  routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }],
};

function io(env: Record<string, string>, stdin = ''): PluginIo & { out: string; err: string } {
  const s = {
    env,
    out: '',
    err: '',
    readStdin: () => Buffer.from(stdin),
    writeStdout: (t: string) => {
      s.out += t;
    },
    writeStderr: (t: string) => {
      s.err += t;
    },
  };
  return s;
}

const ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
const conf = (v?: string): string => JSON.stringify({ ...(v === undefined ? {} : { cniVersion: v }), name: 'net', type: 'x' });

function funcs(over: Partial<PluginFuncs> = {}): PluginFuncs & { calls: CmdArgs[] } {
  const calls: CmdArgs[] = [];
  return {
    calls,
    add: async (a) => {
      calls.push(a);
      return RESULT;
    },
    del: async (a) => {
      calls.push(a);
    },
    check: async (a) => {
      calls.push(a);
    },
    ...over,
  };
}

describe('runPlugin environment', () => {
  it('reports every missing variable in one code-4 error, in declared order', async () => {
    const s = io({ CNI_COMMAND: 'ADD' }, conf('1.0.0'));
    expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(1);
    expect(JSON.parse(s.out)).toEqual({ code: 4, msg: 'required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing' });
  });

  it('does not require CNI_NETNS for DEL', async () => {
    const { CNI_NETNS: _, ...env } = ENV;
    const s = io({ ...env, CNI_COMMAND: 'DEL' }, conf('1.0.0'));
    expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(0);
    expect(s.out).toBe('');
  });

  it('prints the about string to stderr when CNI_COMMAND is unset', async () => {
    const s = io({}, '');
    expect(await runPlugin(funcs(), { about: 'CNI test plugin v1' }, s)).toBe(0);
    expect(s.err).toBe(`CNI test plugin v1\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n`);
  });

  it.each(['FROB', 'toString', 'constructor', 'add'])('rejects an unknown command (%s) with code 4', async (cmd) => {
    const s = io({ ...ENV, CNI_COMMAND: cmd }, conf('1.0.0'));
    expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(1);
    expect(JSON.parse(s.out)).toEqual({ code: 4, msg: `unknown CNI_COMMAND: ${cmd}` });
  });

  it.each([
    ['../../etc', 4, 'invalid characters in containerID'],
    ['a/b', 4, 'invalid characters in containerID'],
    ['-abc', 4, 'invalid characters in containerID'],
  ])('rejects hostile container id %j', async (id, code, msg) => {
    const f = funcs();
    const s = io({ ...ENV, CNI_CONTAINERID: id }, conf('1.0.0'));
    expect(await runPlugin(f, { about: 'x' }, s)).toBe(1);
    expect(JSON.parse(s.out)).toMatchObject({ code, msg });
    expect(f.calls).toHaveLength(0);
  });

  it.each([
    ['averyveryverylongname', 'interface name is too long'],
    ['..', 'interface name is . or ..'],
    ['eth/0', 'interface name contains / or : or whitespace characters'],
    ['eth 0', 'interface name contains / or : or whitespace characters'],
  ])('rejects interface name %j', async (ifName, msg) => {
    const s = io({ ...ENV, CNI_IFNAME: ifName }, conf('1.0.0'));
    expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(1);
    expect(JSON.parse(s.out)).toMatchObject({ code: 4, msg });
  });
});

describe('runPlugin config and versions', () => {
  it('VERSION ignores stdin and prints compact JSON with a newline', async () => {
    const s = io({ CNI_COMMAND: 'VERSION' }, 'garbage');
    expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(0);
    expect(s.out).toBe(`{"cniVersion":"1.1.0","supportedVersions":${JSON.stringify(SUPPORTED_VERSIONS)}}\n`);
  });

  it.each([
    ['', 6, 'error unmarshall network config: unexpected end of JSON input'],
    ['{"name":', 6, 'error unmarshall network config: unexpected end of JSON input'],
    ['xyz', 6, "error unmarshall network config: invalid character 'x' looking for beginning of value"],
    ['{"cniVersion":"1.0.0"}', 7, 'missing network name'],
  ])('rejects config %j', async (stdin, code, msg) => {
    const s = io(ENV, stdin);
    expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(1);
    expect(JSON.parse(s.out)).toEqual({ code, msg });
  });

  it('rejects an unknown cniVersion with the supported list', async () => {
    const s = io(ENV, conf('9.9.9'));
    expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(1);
    expect(JSON.parse(s.out)).toEqual({
      code: 1,
      msg: 'incompatible CNI versions',
      details: 'config is "9.9.9", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]',
    });
  });

  it('refuses CHECK below 0.4.0', async () => {
    const s = io({ ...ENV, CNI_COMMAND: 'CHECK' }, conf('0.3.1'));
    expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(1);
    expect(JSON.parse(s.out)).toEqual({ code: 1, msg: 'config version does not allow CHECK' });
  });

  it('refuses STATUS and GC below 1.1.0', async () => {
    for (const cmd of ['STATUS', 'GC']) {
      const s = io({ ...ENV, CNI_COMMAND: cmd }, conf('1.0.0'));
      expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(1);
      expect(JSON.parse(s.out)).toEqual({ code: 1, msg: `config version does not allow ${cmd}` });
    }
  });

  it('passes a CniError through and turns anything else into 999', async () => {
    const s1 = io(ENV, conf('1.0.0'));
    await runPlugin(funcs({ add: async () => Promise.reject(new CniError(11, 'busy', 'later')) }), { about: 'x' }, s1);
    expect(s1.out).toBe('{\n    "code": 11,\n    "msg": "busy",\n    "details": "later"\n}');
    const s2 = io(ENV, conf('1.0.0'));
    await runPlugin(funcs({ add: async () => Promise.reject(new TypeError('boom <x>')) }), { about: 'x' }, s2);
    expect(s2.out).toBe('{\n    "code": 999,\n    "msg": "boom \\u003cx\\u003e"\n}');
  });
});

describe('runPlugin result conversion', () => {
  it('prints 1.0.0 in struct order with dns, 4-space indent, no newline', async () => {
    const s = io(ENV, conf('1.0.0'));
    expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(0);
    expect(s.out.endsWith('}')).toBe(true);
    expect(Object.keys(JSON.parse(s.out))).toEqual(['cniVersion', 'interfaces', 'ips', 'routes', 'dns']);
    expect(s.out).toContain('\n    "cniVersion": "1.0.0"');
  });

  it('adds ips[].version for 0.3.x/0.4.0', async () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
      const s = io(ENV, conf(v));
      await runPlugin(funcs(), { about: 'x' }, s);
      expect(JSON.parse(s.out)).toEqual({
        cniVersion: v,
        interfaces: RESULT.interfaces,
        ips: [{ version: '4', interface: 0, address: '10.244.1.2/24', gateway: '10.244.1.1' }],
        routes: RESULT.routes,
        dns: {},
      });
    }
  });

  it('renders ip4 for 0.1.0 (absent cniVersion) and 0.2.0', async () => {
    for (const v of [undefined, '0.2.0']) {
      const s = io(ENV, conf(v));
      await runPlugin(funcs(), { about: 'x' }, s);
      expect(JSON.parse(s.out)).toEqual({
        cniVersion: v ?? '0.1.0',
        ip4: { ip: '10.244.1.2/24', gateway: '10.244.1.1', routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }] },
        dns: {},
      });
    }
  });

  it('sorts keys and omits empty dns for 1.1.0', async () => {
    const s = io(ENV, conf('1.1.0'));
    await runPlugin(funcs(), { about: 'x' }, s);
    const out = JSON.parse(s.out);
    expect(Object.keys(out)).toEqual(['cniVersion', 'interfaces', 'ips', 'routes']);
    expect(Object.keys(out.ips[0])).toEqual(['address', 'gateway', 'interface']);
  });
});

describe('runPlugin error paths', () => {
  it('a stdin read failure is code 5', async () => {
    const s = io(ENV);
    s.readStdin = () => {
      throw new Error('EIO: i/o error, read');
    };
    expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(1);
    expect(JSON.parse(s.out)).toEqual({ code: 5, msg: 'error reading from stdin: EIO: i/o error, read' });
  });

  it('an empty CNI_CONTAINERID on a command that needs one is reported with the other missing variables', async () => {
    const s = io({ ...ENV, CNI_CONTAINERID: '' }, conf('1.0.0'));
    expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(1);
    expect(JSON.parse(s.out)).toEqual({ code: 4, msg: 'required env variables [CNI_CONTAINERID] missing' });
  });

  it('CNI_NETNS naming the plugin\'s own netns is ONE code-8 error before the handler runs (ADD/DEL), unless overridden', async () => {
    const own = { ...ENV, CNI_NETNS: '/proc/self/ns/net' };
    const add = io(own, conf('1.0.0'));
    const f = funcs();
    expect(await runPlugin(f, { about: 'x' }, add)).toBe(1);
    expect(f.calls).toHaveLength(0); // nothing allocated or configured
    // exactly one JSON document on stdout (skel HEAD prints the result, then this error)
    expect(JSON.parse(add.out)).toEqual({ code: 8, msg: "plugin's netns and netns from CNI_NETNS should not be the same" });

    const del = io({ ...own, CNI_COMMAND: 'DEL' }, conf('1.0.0'));
    const fd = funcs();
    expect(await runPlugin(fd, { about: 'x' }, del)).toBe(1);
    expect(fd.calls).toHaveLength(0);
    expect(JSON.parse(del.out).code).toBe(8);

    for (const override of ['1', 'true', 'TRUE']) {
      const s = io({ ...own, CNI_NETNS_OVERRIDE: override }, conf('1.0.0'));
      expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(0);
    }
    // another netns, or a path that is gone (DEL after the pod), is fine
    for (const netns of ['/proc/1/ns/mnt', '/var/run/netns/does-not-exist']) {
      const s = io({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: netns }, conf('1.0.0'));
      expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(0);
    }
  });
});

describe('stdin', () => {
  it('an endless stdin (/dev/zero) is a bounded read that fails with a clear error', () => {
    const fd = openSync('/dev/zero', 'r');
    try {
      expect(() => readBounded(fd)).toThrow(`more than ${MAX_STDIN} bytes (4 MiB): not a network config`);
      expect(() => readBounded(fd, 10)).toThrow('more than 10 bytes');
    } finally {
      closeSync(fd);
    }
  });

  it('reads a whole file up to the bound', () => {
    const fd = openSync(new URL(import.meta.url).pathname, 'r');
    try {
      expect(readBounded(fd).toString()).toContain("describe('stdin'");
    } finally {
      closeSync(fd);
    }
  });

  it('a read error is code 5 with skel\'s prefix', async () => {
    const s = io(ENV, '');
    s.readStdin = () => {
      throw new Error('more than 4194304 bytes (4 MiB): not a network config');
    };
    expect(await runPlugin(funcs(), { about: 'x' }, s)).toBe(1);
    expect(JSON.parse(s.out)).toEqual({ code: 5, msg: 'error reading from stdin: more than 4194304 bytes (4 MiB): not a network config' });
  });
});
