/**
 * AMQP Management (the subset qdmanage/qdstat use) on the router's `$management` address:
 * QUERY and READ of connectors, auto-links, link routes, addresses and the router itself, with
 * qdrouterd's entity type names and attribute names, and GET-TYPES. Requests arrive on a link
 * attached to `$management`; the reply goes to the request's reply-to, which must be a
 * receiving link of the same connection (as qdmanage does with its dynamic reply address).
 */
import type { ManagementRequest } from '../../amqp/management';
import type { ConnectorSettings, RouterSettings } from './server';
import type { RouteContainer } from './route-container';

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

/** What the agent reads: the running router's settings and connector states. */
export interface RouterView {
  settings: RouterSettings;
  routeContainers: readonly RouteContainer[];
  connectorUp(c: ConnectorSettings): boolean;
}

/** The router's entities of `type` as management shows them (qdrouterd attribute names); null for an unknown type. */
export function routerEntities(type: string, v: RouterView): EntityRecord[] | null {
  const s = v.settings;
  switch (type) {
    case ENTITY_TYPES.router:
      return [{ name: s.id, identity: s.id, id: s.id, mode: s.mode, linkRouteCount: (s.linkRoutes ?? []).length, autoLinkCount: v.routeContainers.reduce((n, r) => n + r.autoLinks.length, 0) + (s.unboundAutoLinks ?? []).length }];
    case ENTITY_TYPES.connector:
      return [
        ...(s.connectors ?? []).map((c) => ({ name: c.name, identity: c.name, host: c.host, port: String(c.port), role: 'inter-router', cost: c.cost, connectionStatus: v.connectorUp(c) ? 'SUCCESS' : 'CONNECTING' })),
        ...v.routeContainers.map((rc) => {
          const st = rc.status();
          return {
            name: st.name, identity: st.name, host: rc.settings.host, port: String(rc.settings.port), role: 'route-container',
            connectionStatus: st.state === 'active' ? 'SUCCESS' : st.state === 'failing-over' ? 'FAILED' : 'CONNECTING',
            connectionMsg: st.state === 'active' ? `Connection Opened: ${st.url}` : `${st.state}: next ${st.url}`,
            failoverUrls: st.candidates.join(', '), activeUrl: st.url, state: st.state,
          };
        }),
      ];
    case ENTITY_TYPES.autoLink:
      return [
        ...v.routeContainers.flatMap((rc) => rc.autoLinks.map((a) => ({
          name: a.settings.name, identity: a.settings.name, address: a.settings.address, direction: a.settings.direction, phase: a.settings.phase,
          connection: rc.settings.name, externalAddress: a.settings.externalAddress ?? null, operStatus: a.state, lastError: a.lastError,
        }))),
        // No route-container connector of that name (yet): inactive, as qdrouterd reports them.
        ...(s.unboundAutoLinks ?? []).map((a) => ({
          name: a.name, identity: a.name, address: a.address, direction: a.direction, phase: a.phase,
          connection: a.connection, externalAddress: a.externalAddress ?? null, operStatus: 'inactive', lastError: null,
        })),
      ];
    case ENTITY_TYPES.linkRoute:
      return (s.linkRoutes ?? []).map((l) => ({
        name: l.name, identity: l.name, prefix: l.prefix ?? null, pattern: l.pattern ?? null, direction: l.direction, connection: l.connection,
        operStatus: v.routeContainers.some((rc) => rc.settings.name === l.connection && rc.state === 'active') ? 'active' : 'inactive',
      }));
    case ENTITY_TYPES.address:
      return s.addresses.map((a, i) => ({
        name: `address/${i}`, identity: String(i), prefix: a.prefix ?? null, pattern: a.pattern ?? null, distribution: a.distribution,
        waypoint: !!a.waypoint, ingressPhase: a.ingressPhase ?? 0, egressPhase: a.egressPhase ?? (a.waypoint ? 1 : 0),
      }));
    default:
      return null;
  }
}
