import type { PolicyEngine } from '../../policy/engine';
/**
 * What the management agent reads: plain snapshots of the running router, made by the I/O layer
 * (router/io/server.ts) from the routing core, the mesh engine and the connection objects. Tests
 * give the agent a fake one; the agent never sees sockets, engines or the core itself.
 */
import type { AddressSnapshot, CoreStats } from '../core/core';
import type { RouterSettings } from '../io/server';
import type { RouteContainer } from '../io/route-container';
import type { ConnectorSettings } from '../io/server';
import type { ConfigChange } from '../config-store';

/** One attribute name → value map, as management shows an entity. */
export type EntityRecord = Record<string, unknown>;

/** A live connection (qdrouterd's `connection` entity). */
export interface ConnectionInfo {
  identity: string;
  /** `host:port` of the peer. */
  host: string;
  container: string | null;
  role: 'normal' | 'inter-router' | 'route-container' | 'edge';
  dir: 'in' | 'out';
  /** SASL mechanism the peer used, or null without SASL. */
  sasl: string | null;
  user: string | null;
  isAuthenticated: boolean;
  isEncrypted: boolean;
  sslProto: string | null;
  sslCipher: string | null;
  opened: boolean;
  uptimeSeconds: number;
  lastDlvSeconds: number | null;
  properties: Record<string, unknown>;
}

/** A live link (qdrouterd's `router.link` entity). */
export interface LinkInfo {
  identity: string;
  linkName: string;
  linkType: 'endpoint' | 'inter-router' | 'router-control' | 'edge-downlink';
  linkDir: 'in' | 'out';
  connectionId: string;
  /** The routing key of the address the link is bound to (null: anonymous, link-routed). */
  owningAddr: string | null;
  capacity: number;
  undeliveredCount: number;
  unsettledCount: number;
  deliveryCount: number;
  presettledCount: number;
  acceptedCount: number;
  rejectedCount: number;
  releasedCount: number;
  modifiedCount: number;
  creditAvailable: number;
  /** qdrouterd's link priority: an inter-router data link's 0..9, else 4. */
  priority: number;
}

/** A router of the mesh as this one knows it (qdrouterd's `router.node`). */
export interface NodeInfo {
  id: string;
  /** This router (listed first on an interior router, as qdrouterd does). */
  self: boolean;
  instance: number;
  /** The neighbours it advertises. */
  linkState: string[];
  /** Null when it is our neighbour (or unreachable). */
  nextHop: string | null;
  cost: number | null;
  validOrigins: string[];
  neighbour: boolean;
  /** A neighbour's: the identity of our control link to it (router.link), else null. */
  routerLink: string | null;
}

/** Everything the agent can see. */
export interface ManagementView {
  settings: RouterSettings;
  /** The policy engine: its counters and vhost stats (read only). */
  readonly policy: PolicyEngine;
  version: string;
  uptimeSeconds: number;
  /** Resident memory, bytes. */
  memoryUsage: number;
  /** Where each listener ended up (port 0 resolved). */
  bound: readonly { name: string; host: string; port: number }[];
  /** The last `limit` log lines (all kept when negative), oldest first (GET-LOG). */
  recentLogs(limit: number): { module: string; level: string; text: string; time: number }[];
  stats: CoreStats;
  routeContainers: readonly RouteContainer[];
  connectorUp(c: ConnectorSettings): boolean;
  connections(): ConnectionInfo[];
  links(): LinkInfo[];
  addresses(): AddressSnapshot[];
  /** The routers of the mesh, this one first (empty when standalone). */
  nodes(): NodeInfo[];
  /** Connections accepted or made since the router started. */
  readonly connectionsAccepted: number;
  /** Lines a log module has logged, by level. */
  logCounts(module: string): Readonly<Record<string, number>>;
  /** Link-route addresses (qdrouterd's C/D/E/F keys): configured here or advertised by other routers. */
  linkRouteAddresses(): { key: string; containerCount: number; remoteRouters: string[] }[];
  /**
   * The configured entities of a config-file type (`listener`, `address`, ...): every attribute
   * set or defaulted, with `name` and `identity`; secrets left out.
   */
  configured(schemaType: string): EntityRecord[];
  /** Who asks: the connection a request came in on (opaque), or null (routed from elsewhere). */
  readonly requester: unknown;
  /** The connection-scoped link routes of `requester` (none for null): name, identity, pattern, direction, containerId. */
  connectionLinkRoutes(requester: unknown): EntityRecord[];
}

/** What the agent may change: the configuration (through the reload path) and connections. */
export interface ManagementControl {
  /**
   * Applies a CREATE, UPDATE or DELETE of a configuration entity; returns its identity.
   * @throws ConfigChangeError (router/config-store.ts) refused, nothing changed.
   */
  changeConfig(change: ConfigChange): string;
  /** Closes the connection with this management identity; false when there is none. */
  closeConnection(identity: string): boolean;
  /** Whether the requesting connection's policy allows changing a connection's adminStatus (qdrouterd's allowAdminStatusUpdate); absent: yes. */
  mayUpdateAdminStatus?(requester: unknown): boolean;
  /**
   * Creates a link route scoped to the requesting connection; returns its identity.
   * @throws ConfigChangeError 400 for a bad pattern or direction, or a name it already uses.
   */
  createConnectionLinkRoute(requester: unknown, attributes: Record<string, unknown>): string;
  /** Deletes the requesting connection's route with that identity; false when it has none. */
  deleteConnectionLinkRoute(requester: unknown, identity: string): boolean;
}

/** An attribute as qdrouterd's schema describes it (GET-SCHEMA). */
export interface AttributeFacts {
  /** A type name (`integer`, `boolean`, `map`, `list`, `entityId`...) or an enumeration's values. */
  readonly type: string | readonly string[];
  readonly default?: unknown;
  readonly required?: boolean;
  /** A counter consoles chart. */
  readonly graph?: boolean;
}

/** Facts for counters: integers consoles chart. */
export function counters(names: readonly string[]): Record<string, AttributeFacts> {
  return Object.fromEntries(names.map((n) => [n, { type: 'integer', graph: true }]));
}

/** Facts for attributes of one type. */
export function typed(type: AttributeFacts['type'], names: readonly string[]): Record<string, AttributeFacts> {
  return Object.fromEntries(names.map((n) => [n, { type }]));
}

/** One entity type: its name, qdrouterd's attribute names and operations, and a reader of live state. */
export interface EntityModule {
  /** The short name qdrouter.json uses (`router.link`); the full type is PREFIX + '.' + name. */
  readonly name: string;
  /** Base types (short names), nearest first. */
  readonly bases: readonly string[];
  /** qdrouterd's attribute names, own first, then `name`, `identity`, `type` (as qdrouterd lists them). */
  readonly attributes: readonly string[];
  /** Operations qdrouterd lists for the type (GET-OPERATIONS). */
  readonly operations: readonly string[];
  /**
   * How GET-SCHEMA describes the attributes that are not plain strings, as qdrouterd's schema
   * does (type or enumeration values, default, required, graph). A configuration attribute not
   * named here is described by its config table.
   */
  readonly schema?: Readonly<Record<string, AttributeFacts>>;
  /** Columns the agent answers that qdrouterd's schema does not list (its C agent's extra and old names): not in GET-SCHEMA. */
  readonly unlisted?: readonly string[];
  /** Every entity of the type, now. */
  read(v: ManagementView): EntityRecord[];
}

/** qdrouterd's entity type prefix. */
export const PREFIX = 'org.apache.qpid.dispatch';

/** The full type name of a module. */
export function fullType(m: { name: string }): string {
  return `${PREFIX}.${m.name}`;
}

/**
 * A record with every attribute of `attributes` present (null when unset), as qdrouterd's core
 * agent answers for the entities it owns (addresses, link routes, auto-links).
 */
export function withAllAttributes(attributes: readonly string[], record: EntityRecord): EntityRecord {
  const out: EntityRecord = {};
  for (const a of attributes) out[a] = null;
  return Object.assign(out, record);
}

/** The base entity attributes every type ends with. */
export const ENTITY_ATTRIBUTES = ['name', 'identity', 'type'] as const;

/** A type's own attributes as qdrouterd's schema lists them: neither the inherited ones nor the agent's extra columns. */
export function listedAttributes(m: { readonly attributes: readonly string[]; readonly unlisted?: readonly string[] }): string[] {
  return m.attributes.filter((a) => !(ENTITY_ATTRIBUTES as readonly string[]).includes(a) && !(m.unlisted ?? []).includes(a));
}
