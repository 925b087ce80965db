import { describe, expect, it } from 'vitest';
import { parseOptions } from '../../../daemon/options.js';

describe('traffic manager flags', () => {
  it('the traffic flags parse as Go defines them (forward rules on by default, resync 5 s)', () => {
    const r = parseOptions([], {}, 'v9');
    if (r.kind !== 'run') throw new Error('exited');
    expect(r.options).toMatchObject({ ipMasq: false, ipMasqFullyRandomDisable: false, iptablesForwardRules: true, ipBlackholeRoute: false, iptablesResync: 5 });
    const e = parseOptions(['-iptables-resync=1'], { FLANNELD_IP_MASQ: 'true', FLANNELD_IPTABLES_FORWARD_RULES: 'false' }, 'v9');
    if (e.kind !== 'run') throw new Error('exited');
    expect(e.options).toMatchObject({ ipMasq: true, iptablesForwardRules: false, iptablesResync: 1 });
  });
});
