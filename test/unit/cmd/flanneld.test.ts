// cmd/flanneld.ts, the entry of the compiled flanneld: which program a start runs, by argv[0]'s name.
import { describe, expect, it } from 'vitest';
import { programOf } from '../../../cmd/flanneld.js';

describe('the multi-call flanneld', () => {
  it('is flannelctl under that name (a path or found through PATH), the daemon under any other', () => {
    expect(programOf('/usr/local/bin/flannelctl')).toBe('flannelctl');
    expect(programOf('flannelctl')).toBe('flannelctl');
    expect(programOf('./dist/exe/flannelctl')).toBe('flannelctl');
    expect(programOf('/usr/local/bin/flanneld')).toBe('flanneld');
    expect(programOf('/opt/bin/flanneld-amd64')).toBe('flanneld'); // the single download, renamed or not
    expect(programOf('/usr/local/bin/flannelctl-old')).toBe('flanneld');
  });
});
