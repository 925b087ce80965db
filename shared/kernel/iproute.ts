// Moved to iproute2/ (issue 10); this shim lives until every importer has switched.
export * from './iproute2/kernel.js';
export * from './iproute2/exec.js';
export * from './iproute2/batch.js';
