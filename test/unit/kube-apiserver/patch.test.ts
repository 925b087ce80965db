// The double's strategic merge patch (spec kube.md §5.5): flanneld's condition and annotation patches
// land as on a real server, merged lists keep their order rules, directives are honoured or refused.
import { describe, expect, it } from 'vitest';
import { PatchError, jsonPatch, mergePatch, strategicMerge, type Json } from '../../kube-apiserver/patch.js';

const cond = (type: string, status = 'False') => ({ type, status, reason: `R${type}` });
const node = { metadata: { name: 'a', annotations: { keep: 'k', drop: 'd' } }, spec: { podCIDRs: ['10.0.0.0/24'] }, status: { conditions: [cond('MemoryPressure'), cond('Ready', 'True')] } };

describe('strategic merge patch', () => {
  it('puts a new condition first and updates an existing one in place (merge key type)', () => {
    const added = strategicMerge(node, { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'FlannelIsUp' }] } }) as typeof node;
    expect(added.status.conditions.map((c) => c.type)).toEqual(['NetworkUnavailable', 'MemoryPressure', 'Ready']);
    const again = strategicMerge(added, { status: { conditions: [{ type: 'NetworkUnavailable', status: 'True' }] } }) as typeof node;
    expect(again.status.conditions.map((c) => c.type)).toEqual(['NetworkUnavailable', 'MemoryPressure', 'Ready']);
    expect(again.status.conditions[0]).toEqual({ type: 'NetworkUnavailable', status: 'True', reason: 'FlannelIsUp' });
    const ready = strategicMerge(node, { status: { conditions: [{ type: 'Ready', status: 'False' }] } }) as typeof node;
    expect(ready.status.conditions.map((c) => [c.type, c.status])).toEqual([['MemoryPressure', 'False'], ['Ready', 'False']]);
  });

  it('merges annotations as a map, null deletes; lists without a merge key are replaced; scalar sets are unions', () => {
    const out = strategicMerge(node, { metadata: { annotations: { add: 'x', drop: null } }, spec: { podCIDRs: ['10.0.0.0/24', 'fd00::/64'], taints: [{ key: 't' }] } }) as Record<string, Record<string, Json>>;
    expect(out.metadata!.annotations).toEqual({ keep: 'k', add: 'x' });
    expect(out.spec!.podCIDRs).toEqual(['10.0.0.0/24', 'fd00::/64']);
    expect(strategicMerge({ spec: { taints: [{ key: 'a' }, { key: 'b' }] } }, { spec: { taints: [{ key: 'c' }] } })).toEqual({ spec: { taints: [{ key: 'c' }] } });
  });

  it('honours $patch delete/replace, $setElementOrder, $retainKeys, $deleteFromPrimitiveList; refuses unknown directives', () => {
    const del = strategicMerge(node, { status: { conditions: [{ type: 'Ready', $patch: 'delete' }] } }) as typeof node;
    expect(del.status.conditions.map((c) => c.type)).toEqual(['MemoryPressure']);
    const order = strategicMerge(node, { status: { '$setElementOrder/conditions': [{ type: 'Ready' }, { type: 'MemoryPressure' }] } }) as typeof node;
    expect(order.status.conditions.map((c) => c.type)).toEqual(['Ready', 'MemoryPressure']);
    expect(strategicMerge({ v: { hostPath: { path: '/x' }, emptyDir: {} } }, { v: { $retainKeys: ['hostPath'], hostPath: { path: '/y' } } })).toEqual({ v: { hostPath: { path: '/y' } } });
    expect(strategicMerge({ metadata: { finalizers: ['a', 'b'] } }, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } })).toEqual({ metadata: { finalizers: ['b'] } });
    expect(strategicMerge({ m: { a: 1 } }, { m: { $patch: 'replace', b: 2 } })).toEqual({ m: { b: 2 } });
    expect(() => strategicMerge(node, { metadata: { $bogus: 1 } })).toThrow(PatchError);
  });
});

describe('JSON merge patch and JSON patch', () => {
  it('RFC 7386 and RFC 6902', () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, l: [1] }, { a: { b: null, d: 3 }, l: [2] })).toEqual({ a: { c: 2, d: 3 }, l: [2] });
    expect(jsonPatch({ metadata: { annotations: { 'a/b': 'x' } } }, [{ op: 'replace', path: '/metadata/annotations/a~1b', value: 'y' }, { op: 'add', path: '/l', value: [] }, { op: 'add', path: '/l/-', value: 1 }])).toEqual({
      metadata: { annotations: { 'a/b': 'y' } },
      l: [1],
    });
    expect(() => jsonPatch({}, [{ op: 'test', path: '/x', value: 1 }])).toThrow(PatchError);
  });
});
