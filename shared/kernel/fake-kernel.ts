// Moved to fake/ (issue 10); this shim lives until every importer has switched.
export * from './fake/fake-kernel.js';
