// The three PATCH flavours a kube-apiserver accepts, on plain JSON values (spec kube.md §5.5):
// strategic merge (with the merge keys of the Kubernetes types this double stores), JSON merge patch
// (RFC 7386, kubectl annotate/label) and JSON patch (RFC 6902). Errors are PatchError (→ 400).

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

export class PatchError extends Error {}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Merge keys by field name (Go struct tags `patchMergeKey` in k8s.io/api; the field names below are
 * unique enough across Node, Pod, DaemonSet and RBAC objects that a name-keyed table is exact for them).
 * `null` = a list of scalars merged as a set; absent = the list is replaced.
 */
const MERGE_KEYS: Record<string, string | null> = {
  conditions: 'type', // NodeCondition, PodCondition
  addresses: 'type', // NodeAddress
  ownerReferences: 'uid',
  finalizers: null,
  podCIDRs: null,
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  env: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  ports: 'containerPort',
  imagePullSecrets: 'name',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
  containerStatuses: 'name',
  initContainerStatuses: 'name',
};

const clone = <T extends Json>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

/** Strategic merge patch (apimachinery strategicpatch semantics, the subset kubectl and flanneld send). */
export function strategicMerge(original: Json, patch: Json): Json {
  if (!isObj(patch)) throw new PatchError('strategic merge patch must be a JSON object');
  return mergeMap(isObj(original) ? original : {}, patch);
}

function mergeMap(orig: Obj, patch: Obj): Obj {
  if (patch.$patch !== undefined) {
    if (patch.$patch === 'replace') {
      const { $patch: _, ...rest } = patch;
      return clone(rest);
    }
    if (patch.$patch === 'delete') return {};
    throw new PatchError(`unknown patch type: ${JSON.stringify(patch.$patch)} in map`);
  }
  const out: Obj = clone(orig);
  const retainKeys = patch.$retainKeys;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$retainKeys') continue;
    if (k.startsWith('$setElementOrder/') || k.startsWith('$deleteFromPrimitiveList/')) continue; // below
    if (k.startsWith('$')) throw new PatchError(`unknown patch directive: ${k}`);
    if (v === null) {
      delete out[k];
      continue;
    }
    const cur = out[k];
    if (isObj(v)) out[k] = mergeMap(isObj(cur) ? cur : {}, v);
    else if (Array.isArray(v)) out[k] = mergeList(k, Array.isArray(cur) ? cur : [], v);
    else out[k] = v;
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const f = k.slice('$deleteFromPrimitiveList/'.length);
      if (!Array.isArray(v)) throw new PatchError(`${k} must be a list`);
      const del = new Set(v.map((x) => JSON.stringify(x)));
      const cur = out[f];
      if (Array.isArray(cur)) out[f] = cur.filter((x) => !del.has(JSON.stringify(x)));
    }
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$setElementOrder/')) {
      const f = k.slice('$setElementOrder/'.length);
      if (!Array.isArray(v)) throw new PatchError(`${k} must be a list`);
      const cur = out[f];
      if (Array.isArray(cur)) out[f] = setElementOrder(f, cur, v);
    }
  }
  if (retainKeys !== undefined) {
    if (!Array.isArray(retainKeys)) throw new PatchError('$retainKeys must be a list');
    const keep = new Set(retainKeys.map(String));
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  return out;
}

function identity(field: string, item: Json): string | undefined {
  const key = MERGE_KEYS[field];
  if (key === null) return JSON.stringify(item);
  if (key === undefined || !isObj(item)) return undefined;
  return item[key] === undefined ? undefined : JSON.stringify(item[key]);
}

function mergeList(field: string, orig: Json[], patch: Json[]): Json[] {
  if (!(field in MERGE_KEYS)) {
    // replace strategy; a lone {"$patch":"replace"} element is harmless here
    return clone(patch.filter((e) => !(isObj(e) && e.$patch === 'replace')));
  }
  if (patch.some((e) => isObj(e) && e.$patch === 'replace')) {
    return clone(patch.filter((e) => !(isObj(e) && e.$patch === 'replace')));
  }
  const origIdx = new Map<string, number>();
  orig.forEach((e, i) => {
    const id = identity(field, e);
    if (id !== undefined) origIdx.set(id, i);
  });
  const deleted = new Set<string>();
  const patchItems: { id: string | undefined; value: Json }[] = [];
  for (const p of patch) {
    if (isObj(p) && p.$patch === 'delete') {
      const { $patch: _, ...rest } = p;
      const id = identity(field, MERGE_KEYS[field] === null ? (rest as Json) : rest);
      if (id === undefined) throw new PatchError(`$patch: delete on ${field} without its merge key`);
      deleted.add(id);
      continue;
    }
    if (isObj(p) && p.$patch !== undefined) throw new PatchError(`unknown patch type: ${JSON.stringify(p.$patch)} in ${field}`);
    const id = identity(field, p);
    if (id === undefined) throw new PatchError(`map: ${JSON.stringify(p)} does not contain declared merge key: ${String(MERGE_KEYS[field])}`);
    const o = origIdx.get(id);
    const value = MERGE_KEYS[field] === null || o === undefined || !isObj(orig[o]) || !isObj(p) ? clone(p) : mergeMap(orig[o] as Obj, p);
    const dup = patchItems.findIndex((x) => x.id === id);
    if (dup >= 0) patchItems[dup] = { id, value };
    else patchItems.push({ id, value });
  }
  const inPatch = new Set(patchItems.map((x) => x.id));
  const serverOnly = orig.filter((e) => {
    const id = identity(field, e);
    return id === undefined || (!inPatch.has(id) && !deleted.has(id));
  });
  // mergeSortedSlice: take the server item only when both are in the original list and it comes first
  const out: Json[] = [];
  let i = 0;
  let j = 0;
  while (i < serverOnly.length && j < patchItems.length) {
    const s = origIdx.get(identity(field, serverOnly[i]!) ?? '');
    const p = patchItems[j]!.id === undefined ? undefined : origIdx.get(patchItems[j]!.id!);
    if (s !== undefined && p !== undefined && s < p) out.push(serverOnly[i++]!);
    else out.push(patchItems[j++]!.value);
  }
  while (i < serverOnly.length) out.push(serverOnly[i++]!);
  while (j < patchItems.length) out.push(patchItems[j++]!.value);
  return out;
}

/** `$setElementOrder/<field>`: the listed items first in that order, the others after, in their order. */
function setElementOrder(field: string, cur: Json[], order: Json[]): Json[] {
  const rank = new Map<string, number>();
  order.forEach((e, i) => {
    const id = identity(field, e);
    if (id !== undefined) rank.set(id, i);
  });
  const listed = cur.filter((e) => rank.has(identity(field, e) ?? '\0'));
  const rest = cur.filter((e) => !rank.has(identity(field, e) ?? '\0'));
  listed.sort((a, b) => rank.get(identity(field, a)!)! - rank.get(identity(field, b)!)!);
  return [...listed, ...rest];
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObj(patch)) return clone(patch);
  const out: Obj = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

/** RFC 6902 JSON patch (add, remove, replace, test, move, copy). */
export function jsonPatch(doc: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('error decoding patch: a JSON patch must be a list of operations');
  let root: Json = clone(doc);
  const parse = (p: Json): string[] => {
    if (typeof p !== 'string' || (p !== '' && !p.startsWith('/'))) throw new PatchError(`invalid JSON pointer: ${JSON.stringify(p)}`);
    return p === '' ? [] : p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  };
  const parentOf = (path: string[]): [Json, string] => {
    let cur: Json = root;
    for (const seg of path.slice(0, -1)) {
      if (Array.isArray(cur)) cur = cur[Number(seg)] ?? null;
      else if (isObj(cur)) cur = cur[seg] ?? null;
      else cur = null;
      if (cur === null) throw new PatchError(`doc is missing path: /${path.join('/')}`);
    }
    return [cur, path[path.length - 1]!];
  };
  const get = (path: string[]): Json | undefined => {
    if (path.length === 0) return root;
    const [par, k] = parentOf(path);
    return Array.isArray(par) ? par[Number(k)] : isObj(par) ? par[k] : undefined;
  };
  const remove = (path: string[]): Json => {
    const [par, k] = parentOf(path);
    if (Array.isArray(par)) {
      const i = Number(k);
      if (!(i >= 0 && i < par.length)) throw new PatchError(`doc is missing path: /${path.join('/')}`);
      return par.splice(i, 1)[0]!;
    }
    if (!isObj(par) || !(k in par)) throw new PatchError(`doc is missing path: /${path.join('/')}`);
    const v = par[k]!;
    delete par[k];
    return v;
  };
  const add = (path: string[], v: Json): void => {
    if (path.length === 0) {
      root = v;
      return;
    }
    const [par, k] = parentOf(path);
    if (Array.isArray(par)) par.splice(k === '-' ? par.length : Number(k), 0, v);
    else if (isObj(par)) par[k] = v;
    else throw new PatchError(`doc is missing path: /${path.join('/')}`);
  };
  for (const op of ops) {
    if (!isObj(op)) throw new PatchError('error decoding patch: operation is not an object');
    const path = parse(op.path ?? null);
    switch (op.op) {
      case 'add':
        add(path, clone(op.value ?? null));
        break;
      case 'remove':
        remove(path);
        break;
      case 'replace':
        remove(path);
        add(path, clone(op.value ?? null));
        break;
      case 'test':
        if (JSON.stringify(get(path)) !== JSON.stringify(op.value)) throw new PatchError(`testing value /${path.join('/')} failed`);
        break;
      case 'move':
        add(path, remove(parse(op.from ?? null)));
        break;
      case 'copy':
        add(path, clone(get(parse(op.from ?? null)) ?? null));
        break;
      default:
        throw new PatchError(`Unexpected kind: ${String(op.op)}`);
    }
  }
  return root;
}
