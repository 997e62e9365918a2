import type { PolicySettings } from '../../policy/engine';
/**
 * The validated, typed configuration the router runs from.
 *
 * Attribute names are qdrouterd's camelCase names; defaults are filled in; numbers are numbers.
 * Attributes qdrouterd defines but amqp-mesh does not act on yet are kept, converted to their
 * schema type, in each entity's `unimplemented` record when the file sets them (and are reported
 * in {@link RouterConfig.warnings}), so that nothing the operator wrote is silently dropped.
 */

import type { ConnectorTransport, ListenerTransport } from '../../amqp/transport/settings';
import type { ConfigWarning } from '../../config/errors';
import type { ValidatedEntity } from '../../config/validate';
import type { SaslMechanism } from '../../config/listener';
import type { LogEntity } from '../../config/log';
import type { SslProfileEntity } from '../../config/ssl-profile';
import type { ConfigValue, EntityCommon, EntitySource } from '../../config/types';

export type { ConfigValue, EntityCommon, EntitySource } from '../../config/types';
export type { LogEntity, LogLevel, LogModule } from '../../config/log';
export type { SaslMechanism } from '../../config/listener';
export type { SslProfileEntity } from '../../config/ssl-profile';

/**
 * Router modes, qdrouterd's: `standalone` (no other routers), `interior` (a router of the mesh)
 * and `edge` (one uplink to an interior router, which serves it).
 */
export type RouterMode = 'standalone' | 'interior' | 'edge';

/** The `router` entity: exactly one per configuration, created from defaults if the file has none. */
export interface RouterEntity extends EntityCommon {
  type: 'router';
  /** The router's identity; generated as qdrouterd does (`Standalone_…`/`Interior_…`) when not set. */
  id: string;
  mode: RouterMode;
  /** Accepted for compatibility (default 4); amqp-mesh's event loop does not use it. */
  workerThreads: number;
  /**
   * Where SASL PLAIN users live (qdrouterd's attribute). amqp-mesh reads
   * `<saslConfigDir>/<saslConfigName>.users`: one `user:password` per line, `#` comments.
   */
  saslConfigDir?: string;
  saslConfigName: string;
  /** Seconds between HELLO messages to neighbour routers (default 1). Interior mode only. */
  helloIntervalSeconds: number;
  /** Seconds without a HELLO after which a neighbour is declared lost (default 3). Interior mode only. */
  helloMaxAgeSeconds: number;
  /** Seconds between router advertisements in a stable network (default 30). Interior mode only. */
  raIntervalSeconds: number;
  /** Seconds between router advertisements while the topology changes (default 4). Interior mode only. */
  raIntervalFluxSeconds: number;
  /** Seconds without an advertisement after which a remote router's link state is stale (default 60). Interior mode only. */
  remoteLsMaxAgeSeconds: number;
}

/**
 * Connection roles on listeners and connectors: `normal` (clients), `inter-router` (another
 * interior router of the mesh; needs router mode `interior`), `route-container` (a broker or other
 * container that {@link LinkRouteEntity link routes} and {@link AutoLinkEntity auto-links} use; any
 * router mode) and `edge` (an edge router's uplink: a listener of an interior router, a connector
 * of an edge router).
 */
export type ConnectionRole = 'normal' | 'inter-router' | 'route-container' | 'edge';

/** Listener roles amqp-mesh supports. */
export type ListenerRole = ConnectionRole;

/** Connector roles amqp-mesh supports. */
export type ConnectorRole = ConnectionRole;

/** Which router-specific message annotations (`x-opt-qd.*`) are removed: on ingress, egress, both or neither. */
export type StripAnnotations = 'in' | 'out' | 'both' | 'no';

/** A `listener` entity: where the router accepts AMQP connections. */
export interface ListenerEntity extends EntityCommon {
  type: 'listener';
  /** Host or address to listen on; "" (qdrouterd's default) means all local addresses. */
  host: string;
  /** TCP port; 0 asks for an ephemeral port. `amqp` and `amqps` are resolved to 5672 and 5671. */
  port: number;
  role: ListenerRole;
  /**
   * Cost of inter-router connections accepted here, for path computation (default and minimum 1).
   * As in qdrouterd, it only applies to the `inter-router` role; elsewhere it is ignored (with a warning if set).
   */
  cost: number;
  /** Require SASL authentication of the peer. */
  authenticatePeer: boolean;
  /**
   * Offered SASL mechanisms, upper-case; default `['PLAIN']` if authenticatePeer, else `['ANONYMOUS']`.
   * EXTERNAL (the client's certificate) only with an sslProfile that has a caCertFile.
   */
  saslMechanisms: SaslMechanism[];
  /** Largest frame the router accepts, in octets (default 16384). */
  maxFrameSize: number;
  /** Most sessions per connection (default 32768; a configured 0 also means 32768, as in qdrouterd). */
  maxSessions: number;
  /** Close a connection after this many seconds without a frame; 0 disables (default 16). */
  idleTimeoutSeconds: number;
  /** Credit issued per incoming link (default 250; a configured 0 also means 250, as in qdrouterd). */
  linkCapacity: number;
  stripAnnotations: StripAnnotations;
  /** TLS (sslProfile, requireSsl), WebSocket (http, websockets) and the handshake deadline: see config/transport.ts. */
  transport: ListenerTransport;
  /** Announced to clients in the open frame's `failover-server-list`, as qdrouterd does (not inter-router). */
  failoverUrls?: FailoverUrl[];
  /** The vhost whose policy applies to this listener's connections, whatever their open's hostname. */
  policyVhost?: string;
  /** Clients' addresses live in their vhost's space (`vhost/address`). */
  multiTenant: boolean;
}

/** URL schemes of a failover list entry, as qdrouterd documents them. */
export type FailoverScheme = 'amqp' | 'amqps' | 'ws' | 'wss';

/**
 * One entry of a connector's `failoverUrls`, written `[scheme://]host[:port]` as qdrouterd
 * parses failover lists: the scheme defaults to `amqp` and the port to 5672.
 */
export interface FailoverUrl {
  /** Always `amqp` for now: failing over to TLS or WebSocket URLs is not implemented yet, so the other schemes are refused as not supported yet. */
  scheme: FailoverScheme;
  /** Host name or IPv4 address (qdrouterd's failover lists have no IPv6 form: the port follows the first `:`). */
  host: string;
  /** 1-65535; `amqp` and `amqps` are resolved to 5672 and 5671. */
  port: number;
  /** The entry named its scheme (`amqps://...`): a listener announces it, as qdrouterd does. */
  schemeWritten?: boolean;
}

/**
 * A `connector` entity: an outgoing connection the router makes and keeps up: to another router
 * (`inter-router`), to a broker or service (`route-container`), or only kept up (`normal`).
 */
export interface ConnectorEntity extends EntityCommon {
  type: 'connector';
  /** Host name or IP address to connect to (default 127.0.0.1). */
  host: string;
  /** TCP port, 1-65535; `amqp` (qdrouterd's default) and `amqps` are resolved to 5672 and 5671. */
  port: number;
  role: ConnectorRole;
  /** Cost of this inter-router connection, for path computation (default and minimum 1); only applies to the `inter-router` role. */
  cost: number;
  /**
   * SASL mechanisms the router may use, upper-case, in the order written; unset means any
   * mechanism amqp-mesh implements that the peer offers (PLAIN only with saslUsername and saslPassword).
   */
  saslMechanisms?: SaslMechanism[];
  /** User name for SASL PLAIN; set together with saslPassword. */
  saslUsername?: string;
  /**
   * Password for SASL PLAIN, exactly as written. qdrouterd reads `env:VAR` from an environment
   * variable, `file:/path` from a file and `pass:secret` literally; this loader does not resolve
   * those forms. Keep it out of logs.
   */
  saslPassword?: string;
  /** Largest frame the router accepts, in octets (default 16384). */
  maxFrameSize: number;
  /** Most sessions per connection (default 32768; a configured 0 also means 32768, as in qdrouterd). */
  maxSessions: number;
  /** Close the connection after this many seconds without a frame; 0 disables (default 16). */
  idleTimeoutSeconds: number;
  /** Credit issued per incoming link (default 250; a configured 0 also means 250, as in qdrouterd). */
  linkCapacity: number;
  stripAnnotations: StripAnnotations;
  /**
   * Where to connect when `host:port` fails, in order, after it (set only when the file sets it).
   * Written as a comma-separated list such as `amqp://broker-b:5672, broker-c:5673`.
   * qdrouterd 1.19 only reports this attribute (the list it learns from the peer's open frame);
   * amqp-mesh also reads it from the file. Used by `route-container` connectors; an
   * `inter-router` connector ignores it (with a warning).
   */
  /** The vhost whose `$connector` group limits what the peer may do on this connection. */
  policyVhost?: string;
  failoverUrls?: FailoverUrl[];
  /** TLS (sslProfile, verifyHostname): see config/transport.ts. */
  transport: ConnectorTransport;
}

/**
 * Address distributions. `unavailable` (qdrouterd 1.19): attaches to matching addresses are
 * refused (detach with amqp:not-found "Node not found") and anonymous deliveries to them are
 * rejected (amqp:not-found).
 */
export type AddressDistribution = 'multicast' | 'closest' | 'balanced' | 'unavailable';

/** An `address` entity: how messages to matching addresses are distributed. Exactly one of prefix and pattern is set. */
export interface AddressEntity extends EntityCommon {
  type: 'address';
  /** Matches addresses that start with these tokens (tokens are separated by `.` or `/`). */
  prefix?: string;
  /** Matches addresses against a wildcard pattern: `*` is one token, `#` is zero or more. */
  pattern?: string;
  distribution: AddressDistribution;
  /** The addresses are waypoints (a broker queue in the path): sets the default phases (default false). */
  waypoint: boolean;
  /**
   * Phase of messages entering the router on these addresses, 0-9. qdrouterd's default when
   * neither phase is set: 0. Setting only one of ingressPhase and egressPhase is refused, as qdrouterd does.
   */
  ingressPhase: number;
  /** Phase of messages leaving the router to consumers, 0-9. Default when neither phase is set: 1 with waypoint, else 0. */
  egressPhase: number;
  /**
   * Undeliverable messages go to a fallback destination (an autoLink with `fallback`, or a link
   * with the `qd.fallback` capability) instead of being released (default false). qdrouterd's
   * name; refused together with waypoint or a non-zero phase, as qdrouterd does.
   */
  enableFallback: boolean;
  /** Priority (0-9) messages to these addresses travel the mesh with; -1 (default): the message's own. */
  priority: number;
}

/** Directions of link routes and auto-links. */
export type LinkDirection = 'in' | 'out';

/**
 * A `linkRoute` entity: link attaches whose address matches are routed, end to end, to a
 * route-container (a broker) instead of being terminated by the router. Exactly one of prefix
 * and pattern is set; at most one of connection and containerId (neither on a router that only
 * passes the attaches on towards the router that has the container).
 */
export interface LinkRouteEntity extends EntityCommon {
  type: 'linkRoute';
  /** Matches link addresses that start with these tokens (tokens are separated by `.` or `/`). */
  prefix?: string;
  /** Matches link addresses against a wildcard pattern: `*` is one token, `#` is zero or more. */
  pattern?: string;
  /** Added in front of the address of the terminus sent to the route-container. */
  addExternalPrefix?: string;
  /** Removed from the front of the address of the terminus sent to the route-container. */
  delExternalPrefix?: string;
  /** Which links are routed: `in` client senders (links into the router), `out` client receivers. Required. */
  direction: LinkDirection;
  /** Name of the connector or listener whose connections carry the routed links. */
  connection?: string;
  /** Container id (from its open frame) of the route-container that receives the routed links. */
  containerId?: string;
  /** The only distribution qdrouterd has for link routes (the default). */
  distribution: 'linkBalanced';
}

/**
 * An `autoLink` entity: a link the router itself attaches to a route-container (typically a
 * broker queue used as a waypoint) for an address, and re-attaches whenever that connection
 * comes back. At most one of connection and containerId; with neither it never attaches (a warning).
 */
export interface AutoLinkEntity extends EntityCommon {
  type: 'autoLink';
  /** The router address the link serves. Required. */
  address: string;
  /** `in`: messages come from the container into the router; `out`: the router sends them to the container. Required. */
  direction: LinkDirection;
  /** Address phase, 0-9. qdrouterd's default: 0 for `out` (and for fallback auto-links), 1 for `in`. */
  phase: number;
  /** Name of the connector or listener whose connections the link is attached on. */
  connection?: string;
  /** Container id (from its open frame) of the route-container the link is attached to. */
  containerId?: string;
  /** The node's address on the container, when it differs from `address`. */
  externalAddress?: string;
  /** The link is attached to the address's fallback destination (default false). */
  fallback: boolean;
}

/** An entity of a type amqp-mesh accepts but does not act on yet (sslProfile, exchange, vhost, ...). */
export interface GenericEntity {
  /** The config-file entity type, e.g. `sslProfile` or `exchange`. */
  type: string;
  name?: string;
  /** All attributes, converted, with qdrouterd's defaults filled in (status attributes excluded). */
  attributes: { [attributeName: string]: ConfigValue };
  source: EntitySource;
}

/** A whole validated configuration. */
export interface RouterConfig {
  router: RouterEntity;
  /** The `policy` entity (or its defaults) and every vhost, compiled. */
  policy: PolicySettings;
  listeners: ListenerEntity[];
  /** In file order, whatever their role. */
  connectors: ConnectorEntity[];
  addresses: AddressEntity[];
  /**
   * In file order. Each `connection`, if set, is non-empty and not another entity's name; it may
   * name no listener or connector of this configuration (an info: inactive until one exists).
   */
  linkRoutes: LinkRouteEntity[];
  /** In file order. `connection` as for {@link linkRoutes}. */
  autoLinks: AutoLinkEntity[];
  logs: LogEntity[];
  /** In file order; listeners and connectors carry theirs in `transport`. */
  sslProfiles: SslProfileEntity[];
  /** Entities of types amqp-mesh does not act on yet, in file order. */
  other: GenericEntity[];
  /** Everything accepted with a remark, in file order; the router should log these at startup. */
  warnings: ConfigWarning[];
  /** Every entity of the file as validated (all attributes with defaults), in file order: what management shows. */
  entities: ValidatedEntity[];
}
