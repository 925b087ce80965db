// metav1.Status error bodies exactly as kube-apiserver writes them (spec kube.md §5.6: field order
// kind, apiVersion, metadata, status, message, reason, details, code; client-go needs kind/apiVersion).
import type { Json } from './patch.js';

export interface StatusBody {
  [k: string]: Json;
}

export function status(code: number, reason: string | undefined, message: string, details?: { [k: string]: Json }): StatusBody {
  const s: StatusBody = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message };
  if (reason) s.reason = reason;
  if (details) s.details = details;
  s.code = code;
  return s;
}

export const notFound = (resource: string, name: string): StatusBody => status(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
export const pathNotFound = (): StatusBody => status(404, 'NotFound', 'the server could not find the requested resource', {});
export const unauthorized = (): StatusBody => status(401, 'Unauthorized', 'Unauthorized');
export const badRequest = (message: string): StatusBody => status(400, 'BadRequest', message);
export const alreadyExists = (resource: string, name: string): StatusBody => status(409, 'AlreadyExists', `${resource} "${name}" already exists`, { name, kind: resource });
export const conflict = (resource: string, name: string): StatusBody =>
  status(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: resource });
export const methodNotAllowed = (verb: string, resource: string): StatusBody =>
  status(405, 'MethodNotAllowed', `${verb} is not supported on resources of kind "${resource}"`, { kind: resource });
export const expired = (message: string): StatusBody => status(410, 'Expired', message);
export const unsupportedMediaType = (): StatusBody =>
  status(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml');
export const internalError = (err: string): StatusBody => status(500, 'InternalError', `Internal error occurred: ${err}`, { causes: [{ message: err }] });
export const tooLargeRV = (rv: string, cur: number): StatusBody =>
  status(504, 'Timeout', `Timeout: Too large resource version: ${rv}, current: ${cur}`, {
    causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
    retryAfterSeconds: 1,
  });

/** 403 in RBAC's words: `nodes "n" is forbidden: User "u" cannot patch resource "nodes" in API group "" at the cluster scope` */
export function forbidden(user: string, verb: string, resource: string, sub: string | undefined, group: string, name: string | undefined, namespace: string | undefined): StatusBody {
  const what = name ? `${resource} "${name}"` : resource;
  const res = sub ? `${resource}/${sub}` : resource;
  const scope = namespace ? `in the namespace "${namespace}"` : 'at the cluster scope';
  const details: { [k: string]: Json } = name ? { name, kind: resource } : { kind: resource };
  if (group) details.group = group;
  return status(403, 'Forbidden', `${what} is forbidden: User "${user}" cannot ${verb} resource "${res}" in API group "${group}" ${scope}`, details);
}

/** A node validation failure (422). */
export function invalid(kind: string, name: string, field: string, causeReason: string, detail: string, typ: string): StatusBody {
  return status(422, 'Invalid', `${kind} "${name}" is invalid: ${field}: ${typ}: ${detail}`, {
    name,
    kind,
    causes: [{ reason: causeReason, message: `${typ}: ${detail}`, field }],
  });
}
