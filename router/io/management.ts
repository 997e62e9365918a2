/**
 * AMQP Management (the subset qdmanage/qdstat use) on the router's `$management` address:
 * QUERY and READ of connectors, auto-links, link routes, addresses and the router itself, with
 * qdrouterd's entity type names and attribute names, and GET-TYPES. Requests arrive on a link
 * attached to `$management`; the reply goes to the request's reply-to, which must be a
 * receiving link of the same connection (as qdmanage does with its dynamic reply address).
 */
import type { ManagementRequest } from '../../amqp/management';

/** qdrouterd's entity type names. */
export const ENTITY_TYPES = {
  router: 'org.apache.qpid.dispatch.router',
  connector: 'org.apache.qpid.dispatch.connector',
  autoLink: 'org.apache.qpid.dispatch.router.config.autoLink',
  linkRoute: 'org.apache.qpid.dispatch.router.config.linkRoute',
  address: 'org.apache.qpid.dispatch.router.config.address',
} as const;

/** One entity as management shows it: attribute name → value. */
export type EntityRecord = Record<string, unknown>;

/** Where management reads from (the router's state, through its own accessors). */
export interface ManagementSource {
  entities(type: string): EntityRecord[] | null;
}

/** Answers a request: status code, description and body. */
export function answer(req: ManagementRequest, src: ManagementSource): { statusCode: number; statusDescription: string; body: unknown } {
  switch (req.operation) {
    case 'GET-TYPES':
      return { statusCode: 200, statusDescription: 'OK', body: Object.fromEntries(Object.values(ENTITY_TYPES).map((t) => [t, []])) };
    case 'QUERY': {
      const type = req.entityType;
      const list = type === null ? null : src.entities(type);
      if (list === null) return { statusCode: 404, statusDescription: `Not Found: entity type ${type ?? '(none)'}`, body: null };
      const names = req.attributeNames.length > 0 ? req.attributeNames : [...new Set(list.flatMap((e) => Object.keys(e)))];
      return { statusCode: 200, statusDescription: 'OK', body: { attributeNames: names, results: list.map((e) => names.map((n) => e[n] ?? null)) } };
    }
    case 'READ': {
      const want = req.name ?? req.identity;
      for (const t of req.type && src.entities(req.type) ? [req.type] : Object.values(ENTITY_TYPES)) {
        const e = src.entities(t)?.find((x) => x.name === want || x.identity === want);
        if (e) return { statusCode: 200, statusDescription: 'OK', body: { ...e, type: t } };
      }
      return { statusCode: 404, statusDescription: `Not Found: ${want ?? '(no name or identity)'}`, body: null };
    }
    case 'CREATE':
    case 'UPDATE':
    case 'DELETE':
      // Configuration changes go through the file and SIGHUP (README: live changes).
      return { statusCode: 501, statusDescription: `Not Implemented: ${req.operation}; edit the configuration file and send SIGHUP`, body: null };
    default:
      return { statusCode: 400, statusDescription: `Bad Request: unknown operation ${req.operation || '(none)'}`, body: null };
  }
}
