// The Kubernetes API-server double for tests, the lab and benches: see ./main.ts for usage.
export { startApiServer, FLANNEL_USER, type ApiServerDouble, type ApiServerOptions, type Fault, type RequestRecord } from './server.js';
export { makeNode, makePod, rfc3339, type NodeSpecInput } from './fixtures.js';
export { strategicMerge, mergePatch, jsonPatch, PatchError, type Json } from './patch.js';
