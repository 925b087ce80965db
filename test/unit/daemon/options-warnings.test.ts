import { describe, expect, it } from 'vitest';
import { parseOptions, unimplementedFlagWarnings } from '../../../daemon/options.js';

const warnings = (argv: string[], env: Record<string, string> = {}) => {
  const r = parseOptions(argv, env, 'v9');
  if (r.kind !== 'run') throw new Error(`exited: ${r.stderr}`);
  return unimplementedFlagWarnings(r.options);
};

describe('flags accepted but not acted on', () => {
  it('warn only when they ask for something this build does not do', () => {
    expect(warnings(['--iptables-forward-rules=false'])).toEqual([]);
    const w = warnings(['--ip-masq', '--ip-blackhole-route']);
    expect(w).toHaveLength(3);
    expect(w[0]).toMatch(/^--ip-masq is not implemented .*pods get no outbound NAT/);
    expect(w[1]).toMatch(/^--iptables-forward-rules: /);
    expect(w[2]).toMatch(/^--ip-blackhole-route is not implemented/);
  });

  it('see FLANNELD_* variables like flags', () => {
    expect(warnings([], { FLANNELD_IP_MASQ: 'true', FLANNELD_IPTABLES_FORWARD_RULES: 'false' })).toHaveLength(1);
  });
});
