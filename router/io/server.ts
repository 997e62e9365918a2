/**
 * The router process's I/O: its listeners and connectors (amqp/transport), one {@link Connection}
 * engine per transport driven by the shared {@link ConnectionPump}, and the glue between engines
 * and the {@link RouterCore}. With the transport layer, the only router code that touches
 * sockets and timers.
 *
 * A transport whose queue passes the pump's high-water mark stops receiving deliveries until it
 * drains (backpressure reaches senders through credit).
 */
import { computeMetricsText } from '../management/metrics';
import type { Users } from '../../config/users';
import { Listener, openListeners } from '../../amqp/transport/listener';
import { VERSION } from '../../lib/version';
import { BACKOFF, Connector } from '../../amqp/transport/connector';
import { ConnIo, ConnectionPump } from '../../amqp/transport/pump';
import { acceptedConnectionOptions, type ServerListenerSettings } from '../../amqp/transport/accept';
import { PLAIN_CONNECTOR, type ConnectorTransport } from '../../amqp/transport/settings';
import type { Transport } from '../../amqp/transport/transport';
import { randomBytes } from 'node:crypto';
import { Connection, ConnectionHandler, CloseReason, InDelivery, Link, OutDelivery, LinkGoneReason, Session } from '../../amqp/engine/connection';
import { AmqpError, AttachFrame, STATE, encodeRejected, withDeliveryFailed } from '../../amqp/performatives';
import { scanMessage, writeMessageWithAnnotations } from '../protocol/message';
import { DecodeError, Writer } from '../../amqp/codec';
import { AddressTable, AddressRule, Distribution } from '../core/addresses';
import { checkAddress, normalizeAddress } from '../../amqp/address';
import { TREATMENT, hintForDistribution, mobileKey } from '../protocol/control';
import { Copy, CoreEffects, CoreLink, Delivery, EDGE_ADDRESS, Made, RouterCore } from '../core/core';
import { Logger } from '../../lib/log';
import { DATA_LINK_CREDIT, InterRouter } from './inter-router';
import { MESH_DEFAULTS, MeshSettings } from '../core/mesh';
import { AutoLinkSettings, RouteContainer, RouteContainerHost, RouteContainerSettings, UnboundAutoLink } from './route-container';
import { parsePhaseKey, phaseKey } from '../core/addresses';
import { LinkRouteSettings, LinkRouter, NO_ROUTE, RouteEnd } from './link-route';
import { RoutedDelivery } from './routed-delivery';
import { computeReloadDiff } from '../reload';
import { computeConnectionLinkRoute } from '../management/connection-link-route';
import { computeConfigChange, ConfigChangeError, configuredRecords, type ConfigChange, type ConfigState } from '../config-store';
import { configureLogger } from '../../config/logger';
import { ManagementAgent, type ManagementReply } from '../management/agent';
import type { ConnectionInfo, LinkInfo, ManagementControl, ManagementView, NodeInfo } from '../management/view';
import type { TLSSocket } from 'node:tls';
import { ManagementError, decodeRequest, encodeReply, type ManagementRequest } from '../../amqp/management';
import { FAILOVER_SERVER_LIST } from '../../amqp/failover';
import { EDGE_MGMT_LINK, EDGE_TRACKING_LINK, EdgeUplink } from './edge-uplink';
import { EdgeTracker } from './edge-tracker';
import { PolicyEngine, type PolicySettings } from '../../policy/engine';
import { PolicyConnection, PolicyGate } from '../../policy/gate';
import { POLICY_DEFAULTS } from '../../policy/config';
import { AuthGuard } from '../../amqp/transport/auth-guard';
import { splitHostPort } from '../../amqp/transport/transport';
import {
  ADDRESS_LOOKUP_ADDRESS, ADDRESS_LOOKUP_CREDIT, EDGE_DOWNLINK_CAPABILITY, EDGE_TRACKING_ADDRESS, EdgeProtocolError, LookupStatus,
  decodeLookupRequest, encodeLookupReply,
} from '../protocol/edge-protocol';


/** Marks a link attached to `$management` (requests in). */
const MANAGEMENT = { management: true };
/** The ctx of a qdrouterd edge's link to the address lookup service. */
const ADDRESS_LOOKUP = { addressLookup: true };
/**
 * The agent's own ends in the core (their `CoreLink.io`): a consumer of this router's
 * `_topo/0/<id>/$management` (requests routed from anywhere in the mesh) and an anonymous sender
 * its replies enter the core through, routed by their `to` (the request's reply-to).
 */
const AGENT_IN = { agent: 'in' };
const AGENT_OUT = { agent: 'out' };
/** The capabilities qdrouterd 1.19 offers and desires in its open to clients. */
const CLIENT_CAPABILITIES = ['ANONYMOUS-RELAY', 'qd.streaming-links'];

export { VERSION };

/** A listener's settings (qdrouterd `listener` attribute names). */
export interface ListenerSettings extends ServerListenerSettings {
  linkCapacity: number;
  stripAnnotations: 'in' | 'out' | 'both' | 'no';
  /**
   * `inter-router`: peers are routers of the mesh; `route-container`: brokers or services
   * connecting in; `edge`: edge routers (interior mode).
   */
  role?: 'normal' | 'inter-router' | 'route-container' | 'edge';
  /** Inter-router cost (listener `cost`). */
  cost?: number;
  /** Announced to clients in the open frame (`failover-server-list`, qdrouterd's form), if any. */
  failoverServerList?: Map<unknown, string>[];
  /** The vhost whose policy applies to this listener's connections (listener `policyVhost`). */
  policyVhost?: string;
  /** Addresses of this listener's clients live in their vhost's space (listener `multiTenant`). */
  multiTenant?: boolean;
}

/** An outgoing router connection (qdrouterd `connector`): inter-router (interior) or an edge router's uplink. */
export interface ConnectorSettings {
  role: 'inter-router' | 'edge';
  name: string;
  host: string;
  port: number;
  cost: number;
  maxFrameSize: number;
  idleTimeoutSeconds: number;
  sasl: { mechanism: 'ANONYMOUS' | 'PLAIN' | 'EXTERNAL' | null; user?: string; password?: string };
  /** TLS towards the peer (plain TCP when absent). */
  transport?: ConnectorTransport;
}

/** Everything the router process needs. */
export interface RouterSettings {
  id: string;
  mode: 'standalone' | 'interior' | 'edge';
  listeners: ListenerSettings[];
  addresses: AddressRule[];
  /** Largest message accepted, bytes. */
  maxMessageSize: number;
  /** Longest address accepted, characters. */
  maxAddressLength: number;
  /** SASL users (PLAIN, SCRAM). */
  users?: Users;
  /** Who may connect and do what (qdrouterd's policy and vhosts); none: everyone, everything. */
  policy?: PolicySettings;
  connectors?: ConnectorSettings[];
  /** Control-plane timing (interior mode). */
  mesh?: Omit<MeshSettings, 'id' | 'instance'>;
  /** Connections to brokers (connector role route-container) with their auto-links. */
  routeContainers?: RouteContainerSettings[];
  /** Route-container listeners and the auto-links their connections get (theirs, and those naming a container-id). */
  routeContainerListeners?: { name: string; autoLinks: AutoLinkSettings[] }[];
  /** Auto-links naming a connection no route-container connector has: inactive until one is added. */
  unboundAutoLinks?: UnboundAutoLink[];
  /** Link routes (linkRoute entities) bound to route-container connectors. */
  linkRoutes?: LinkRouteSettings[];
}

/** Per-connection router state. */
class ConnCtx extends ConnIo {
  readonly outLinks = new Set<Link>();
  /** When the transport was made (management's uptimeSeconds). */
  readonly createdAt = Date.now();
  /** Set on a route-container connection (to a broker). */
  routeContainer: RouteContainer | null = null;
  /** Set on an inter-router or edge connection we dialled. */
  connector: Connector | null = null;
  /** An edge connection: an edge router's (interior mode) or this edge router's uplink (edge mode). */
  edge = false;
  /** The router's clock (whole seconds) at the last delivery in or out (management's lastDlvSeconds); 0: none. */
  lastDeliveryAt = 0;
  /** A route container's connection (not a normal connector's, which is only kept up). */
  get isRouteContainer(): boolean {
    return this.routeContainer !== null && this.routeContainer.settings.role !== 'normal';
  }
  /** Closed through management (adminStatus deleted): gone from management at once, as in qdrouterd. */
  adminClosed = false;
  /** Its policy state (global count, vhost rules, counted links). */
  readonly policy: PolicyConnection;
  /** A multi-tenant listener's connection: its vhost's address space (`vhost/`), prefixed to mobile addresses. */
  tenant: string | null = null;
  constructor(transport: Transport, readonly listener: ListenerSettings, id: number) {
    super(transport, id);
    this.policy = new PolicyConnection(id);
  }
}
const REJECT_DECODE = encodeRejected({ condition: 'amqp:decode-error', description: 'malformed message sections' });
const REJECT_NO_TO = encodeRejected({ condition: 'amqp:invalid-field', description: 'anonymous relay: message has no "to" address' });
/** qdrouterd 1.19's outcome for an anonymous delivery to an `unavailable` address (transfer.c). */
const REJECT_UNAVAILABLE = encodeRejected({ condition: 'amqp:not-found', description: 'Deliveries cannot be sent to an unavailable address' });
/** qdrouterd 1.19's detach for an attach to an `unavailable` address (address_lookup_client.c). */
const NODE_NOT_FOUND: AmqpError = { condition: 'amqp:not-found', description: 'Node not found' };
const REJECT_BAD_TO = encodeRejected({ condition: 'amqp:invalid-field', description: 'anonymous relay: the message\'s "to" address is not valid UTF-8' });
/**
 * A mobile address in a tenant's space (`vhost/address`); the routers' own addresses are the
 * same in every space (qdrouterd's).
 */
function inSpace(tenant: string | null, key: string): string {
  return tenant === null || isRouterAddress(key) ? key : tenant + key;
}

/** An address of the routers themselves (management, router-local, topological, edge, qdrouterd's `_$qd.`): never a tenant's, never link-routed. */
function isRouterAddress(key: string): boolean {
  return key === '$management' || key.startsWith('_local/') || key.startsWith('_topo/') || key.startsWith('_edge/') || key.startsWith('_$qd.');
}

/** Policy when the configuration has none: qdrouterd's defaults (no vhost rules). */
const NO_POLICY: PolicySettings = { ...POLICY_DEFAULTS, vhosts: [] };

/** A running router. */
export class RouterServer implements ConnectionHandler, CoreEffects, RouteContainerHost, ManagementControl {
  readonly core: RouterCore;
  private readonly addressTable: AddressTable;
  /** Who may connect and do what; its counters (management's policy and vhostStats). */
  readonly policy: PolicyEngine;
  private readonly policyGate: PolicyGate;
  /** `_topo/0/<this router's id>/` (the id needs a restart to change). */
  private readonly topoSelf: string;
  /** Failed authentications: logged, counted by host; repeated failures slow that host's new connections. */
  readonly authGuard: AuthGuard;
  /** Edge mode: client attaches waiting for the interior's link-route lookup. */
  private readonly lookupHeld = new Set<Link>();
  /** Route-container connectors (to brokers). */
  readonly routeContainers: RouteContainer[] = [];
  readonly linkRouter: LinkRouter;
  /** Listening sockets, by their settings (a reload or management adds and removes them). */
  private readonly listeners = new Map<ListenerSettings, Listener>();
  private readonly pump: ConnectionPump;
  private tickTimer: NodeJS.Timeout | null = null;
  private nextConnId = 1;
  /** Identities of connection-scoped link routes (numbers, as qdrouterd's core agent gives). */
  private nextConnectionRouteId = 1;
  private readonly annotateWriter = new Writer(64 * 1024);
  /** Where each listener ended up (port 0 resolved). */
  readonly bound: { name: string; host: string; port: number }[] = [];
  private stopping = false;
  /** The mesh glue (interior mode). */
  readonly interRouter: InterRouter | null;
  /** The uplink to interior routers (edge mode). */
  readonly edgeUplink: EdgeUplink | null;
  /** Address tracking for the edge routers connected here (interior mode). */
  private readonly edgeTracker = new EdgeTracker((c) => this.touch(c));
  private meshTimer: NodeJS.Timeout | null = null;
  /** Inter-router connectors, by their settings. */
  private readonly connectors = new Map<ConnectorSettings, Connector>();
  settings: RouterSettings;
  /** The management agent: every `$management` request is answered there. */
  readonly agent: ManagementAgent;
  private readonly startedAt = Date.now();
  /** Whole seconds, updated by the 1 s tick: deliveries note it without reading the clock each time. */
  private clockSeconds = Math.floor(Date.now() / 1000);
  /** The agent's anonymous sender in the core (replies to requests that came through the core). */
  private readonly agentIn: CoreLink;
  /** Requests the core handed the agent, answered on the next turn (never inside the core's pump). */
  private agentQueue: Copy[] = [];
  /** Management identities of links (engine links carry none of their own). */
  private readonly linkIds = new WeakMap<Link, number>();
  private nextLinkIdentity = 1;

  /** The configuration entities behind {@link settings} (management's CREATE/UPDATE/DELETE change it). */
  configState: ConfigState;

  constructor(state: ConfigState, readonly logger: Logger) {
    this.configState = state;
    this.settings = state.settings;
    const settings = state.settings;
    this.pump = new ConnectionPump({ beforeWrite: () => this.core.flush(), onWritable: (c) => this.onWritable(c) }, logger);
    this.addressTable = new AddressTable(settings.addresses);
    this.topoSelf = `_topo/0/${settings.id}/`;
    this.authGuard = new AuthGuard(logger);
    this.policy = new PolicyEngine(settings.policy ?? NO_POLICY);
    this.policyGate = new PolicyGate(this.policy, (level, text) => this.logger.log('POLICY', level, text));
    this.core = new RouterCore(this.addressTable, this);
    this.agent = new ManagementAgent(this.managementView(), this);
    for (const rc of settings.routeContainers ?? []) this.routeContainers.push(new RouteContainer(rc, this, logger));
    this.interRouter = settings.mode === 'interior'
      ? new InterRouter({ id: settings.id, instance: Math.floor(Date.now() / 1000), ...MESH_DEFAULTS, ...settings.mesh }, {
        touch: (c) => this.touch(c),
        deliverLocally: (link, d) => this.deliverFromMesh(link, d),
        routerLink: (link) => {
          if (link.ctx === null) link.ctx = this.core.onRouterLinkAttached(250, link);
          return link.ctx as CoreLink;
        },
        routesChanged: () => this.core.onRoutesChanged(),
        neighbourLost: (irc) => {
          for (const link of irc.dataOut) {
            const cl = link.ctx as CoreLink | null;
            if (cl === null) continue;
            this.core.onRouterLinkFailed(cl);
            for (const od of link.takeUnsettledOut()) this.core.onCopyLost(od.ctx as Copy);
          }
          this.touchAll();
        },
        remoteAddress: (routerId, key, distribution, present) => this.core.onRemoteAddress(routerId, key, distribution, present),
        remoteLinkRoute: (routerId, key, present) => this.linkRouter.onRemoteKey(routerId, key, present),
      }, logger)
      : null;
    if (this.interRouter) this.core.setRemoteView(this.interRouter);
    if (settings.mode === 'edge') {
      this.core.setEdgeMode(settings.id);
      this.edgeUplink = new EdgeUplink(settings.id, this.core, {
        touch: (c) => this.touch(c),
        outLinkOpened: (link) => (link.conn.ctx as ConnCtx).outLinks.add(link),
      }, logger);
    } else this.edgeUplink = null;
    this.agentIn = this.core.onSenderAttached(null, 250, AGENT_IN);
    this.agentIn.inProcess = true;
    // Anonymous senders reach the agent too (qdrouterd's `$management` and `_local/$management`
    // are router-local addresses; the _topo one is how other routers reach it).
    // An edge router's agent is also `_edge/<id>/$management`: the mesh reaches it through the
    // interior router it uplinks to (qdstat --edge-router).
    // (`_topo/0/<id>/$management` is `_local/$management` here: see ownKey.)
    const agentKeys = ['$management', '_local/$management'];
    if (settings.mode === 'edge') agentKeys.push(`_edge/${settings.id}/$management`);
    for (const key of agentKeys) this.core.onConsumerAttached(key, 250, false, AGENT_OUT);
    this.linkRouter = new LinkRouter(settings.linkRoutes ?? [], {
      touch: (c) => this.touch(c),
      interRouter: this.interRouter,
      routeContainer: (name) => this.routeContainers.find((r) => r.settings.name === name),
      routePresence: (key, present) => this.edgeUplink?.onRoutePresence(key, present),
    }, logger);
  }

  /** Opens every listener; resolves when all listen. */
  async start(): Promise<void> {
    const opened = await openListeners(this.settings.listeners, (t, deadline, l) => this.accept(t, deadline, l), this.logger, this.metricsText);
    this.settings.listeners.forEach((l, i) => {
      this.listeners.set(l, opened[i]);
      this.bound.push({ name: l.name, host: opened[i].host, port: opened[i].port });
    });
    this.tickTimer = setInterval(() => {
      const now = Date.now();
      this.clockSeconds = Math.floor(now / 1000);
      this.pump.tick(now);
    }, 1000);
    if (this.interRouter) {
      const ir = this.interRouter;
      // The control plane ticks often so a lost neighbour is routed around quickly.
      this.meshTimer = setInterval(() => {
        ir.onTick(Date.now());
        this.touchAll();
      }, 100);
    }
    for (const c of this.settings.connectors ?? []) this.connect(c);
    for (const rc of this.routeContainers) rc.start();
  }

  /** Opens (and keeps re-opening, with backoff) an inter-router connector, or an edge router's edge connector. */
  private connect(c: ConnectorSettings): void {
    const edge = c.role === 'edge';
    if (this.stopping || (edge ? this.edgeUplink === null : this.interRouter === null)) return;
    const ir = this.interRouter;
    const listener: ListenerSettings = {
      name: c.name, host: c.host, port: c.port, maxFrameSize: c.maxFrameSize, maxSessions: 32768, idleTimeoutSeconds: c.idleTimeoutSeconds,
      linkCapacity: 250, saslMechanisms: [], authenticatePeer: false, stripAnnotations: 'no', role: c.role, cost: c.cost,
    };
    let conn: Connection | null = null;
    const connector = new Connector(c.name, [{ host: c.host, port: c.port }], c.transport ?? PLAIN_CONNECTOR, BACKOFF, {
      onDial: (t) => {
        conn = new Connection(
          {
            containerId: this.settings.id, maxFrameSize: c.maxFrameSize, channelMax: 32767, idleTimeoutMs: c.idleTimeoutSeconds * 1000,
            maxMessageSize: this.settings.maxMessageSize, handleMax: 65535, saslMechanisms: [], requireSasl: false,
            offeredCapabilities: ['ANONYMOUS-RELAY'], incomingWindow: 65536, client: { ...c.sasl, hostname: c.host },
            properties: edge ? { product: 'amqp-mesh', version: VERSION } : InterRouter.openProperties(c.cost, VERSION),
          },
          this,
          Date.now(),
        );
        if (!edge) ir?.register(conn, c.cost, true);
        const ctx = new ConnCtx(t, listener, this.nextConnId++);
        ctx.connector = connector;
        ctx.edge = edge;
        this.traceIfEnabled(conn);
        this.pump.attach(conn, ctx);
      },
      onUp: () => {
        const cn = conn!;
        this.logger.log('SERVER', 'info', `[C${(cn.ctx as ConnCtx).id}] connector ${c.name} connected to ${c.host}:${c.port}${c.transport?.tls ? ' (TLS)' : ''}`);
        cn.start();
        this.touch(cn);
      },
      onDown: (_target, wasUp, _next, delay) => {
        if (conn) {
          if (!conn.closed) conn.onSocketClosed('socket-closed');
          ir?.onClosed(conn);
          this.edgeUplink?.onClosed(conn);
        }
        conn = null;
        this.logger.log('SERVER', 'info', `connector ${c.name}: ${wasUp ? 'connection lost' : 'cannot connect'} to ${c.host}:${c.port}; retrying in ${delay} ms`);
      },
      onError: (_target, e, wasUp) => this.logger.log('SERVER', wasUp || c.transport?.tls ? 'info' : 'debug', `connector ${c.name}: ${e.message}`),
    });
    this.connectors.set(c, connector);
    connector.start();
  }

  /**
   * Applies a new configuration to the running router (SIGHUP, management): listeners,
   * inter-router connectors and route-container connectors are added and removed (a changed one
   * is replaced), auto-links and link routes follow, address rules apply to addresses first used
   * from now on. The router's identity needs a restart. Returns what it did, for the log.
   */
  applyConfigState(next: ConfigState): string[] {
    const failed = configureLogger(this.logger, next.config.logs);
    if (failed.length > 0) {
      // As qdrouterd: the change is refused and the old log settings stay.
      configureLogger(this.logger, this.configState.config.logs);
      throw new ConfigChangeError(500, `CError: Configuration: Failed to open log file '${failed[0].log.outputFile}': ${failed[0].error.message}`);
    }
    this.configState = next;
    return this.reconfigure(next.settings);
  }

  /**
   * A management CREATE, UPDATE or DELETE of a configuration entity: the new configuration is
   * validated as a whole, as a file is, then applied as a reload is.
   * @throws ConfigChangeError refused, nothing changed.
   */
  changeConfig(change: ConfigChange): string {
    const { state, identity } = computeConfigChange(this.configState, change);
    const notes = this.applyConfigState(state);
    this.logger.log('AGENT', 'info', `${change.op} ${identity}${notes.length ? `: ${notes.join('; ')}` : ''}`);
    return identity;
  }

  /** Closes a connection by its management identity (`connection` UPDATE adminStatus=deleted). */
  createConnectionLinkRoute(requester: unknown, attributes: Record<string, unknown>): string {
    if (!(requester instanceof Connection)) throw new ConfigChangeError(400, 'A connection link route is created over the connection it routes to (its own management link)');
    // qdrouterd's policy: a group may forbid its connections their own link routes.
    if ((requester.ctx as ConnCtx).policy.policy?.settings.allowDynamicLinkRoutes === false) throw new ConfigChangeError(403, 'Forbidden');
    const names = new Set(this.linkRouter.connectionRoutes(requester).map((r) => r.name));
    const route = computeConnectionLinkRoute(attributes, String(this.nextConnectionRouteId++), names);
    this.linkRouter.addConnectionRoute(requester, route);
    this.logger.log('ROUTER', 'info', `[C${(requester.ctx as ConnCtx).id}] connection link route ${route.name}: ${route.direction} ${route.pattern}`);
    return route.identity;
  }

  deleteConnectionLinkRoute(requester: unknown, identity: string): boolean {
    return requester instanceof Connection && this.linkRouter.removeConnectionRoute(requester, identity);
  }

  mayUpdateAdminStatus(requester: unknown): boolean {
    if (!(requester instanceof Connection)) return true;
    return (requester.ctx as ConnCtx).policy.policy?.settings.allowAdminStatusUpdate ?? true;
  }

  closeConnection(identity: string): boolean {
    for (const conn of this.pump.conns) {
      const ctx = conn.ctx as ConnCtx | null;
      if (ctx === null || ctx.adminClosed || String(ctx.id) !== identity) continue;
      ctx.adminClosed = true;
      conn.close({ condition: 'amqp:connection:forced', description: 'Connection closed by management' }, 'admin-closed');
      this.touch(conn);
      return true;
    }
    return false;
  }

  /** Removes and adds listeners; a new one listens asynchronously (a failure is logged). */
  private reconfigureListeners(removed: readonly ListenerSettings[], added: readonly ListenerSettings[], notes: string[]): void {
    for (const l of removed) {
      this.listeners.get(l)?.close();
      this.listeners.delete(l);
      const i = this.bound.findIndex((b) => b.name === l.name);
      if (i >= 0) this.bound.splice(i, 1);
      notes.push(`listener ${l.name} removed`);
    }
    for (const l of added) {
      notes.push(`listener ${l.name} added (${l.host}:${l.port})`);
      openListeners([l], (t, deadline, s) => this.accept(t, deadline, s), this.logger, this.metricsText).then(([opened]) => {
        if (this.stopping || !this.settings.listeners.includes(l)) return opened.close();
        this.listeners.set(l, opened);
        this.bound.push({ name: l.name, host: opened.host, port: opened.port });
      }, (e: Error) => this.logger.log('SERVER', 'error', `listener ${l.name}: cannot listen on ${l.host}:${l.port}: ${e.message}`));
    }
  }

  /** Applies new settings (see {@link applyConfigState}). */
  private reconfigure(next: RouterSettings): string[] {
    const running = this.routeContainers.filter((rc) => !rc.retiring && !rc.accepted);
    // Connections accepted on route-container listeners keep going; their auto-links follow the listener's.
    for (const rc of this.routeContainers) {
      if (rc.accepted) rc.setAutoLinks(next.routeContainerListeners?.find((r) => r.name === rc.settings.name)?.autoLinks ?? []);
    }
    const diff = computeReloadDiff(this.settings, next, running.map((rc) => rc.settings));
    const notes = [...diff.needRestart];
    this.reconfigureListeners(diff.listenersRemoved, diff.listenersAdded, notes);
    for (const c of diff.connectorsRemoved) {
      this.connectors.get(c)?.stop();
      this.connectors.delete(c);
      notes.push(`connector ${c.name} removed`);
    }
    for (const n of diff.connectorsAdded) {
      notes.push(`connector ${n.name} added (${n.host}:${n.port}, cost ${n.cost})`);
      if (this.interRouter) this.connect(n);
    }
    for (const { old, next: n } of diff.routeContainersKept) running.find((rc) => rc.settings === old)?.setAutoLinks(n.autoLinks);
    for (const old of diff.routeContainersRemoved) {
      const rc = running.find((r) => r.settings === old)!;
      notes.push(`route-container connector ${old.name} removed (draining)`);
      rc.onRetired = () => {
        const i = this.routeContainers.indexOf(rc);
        if (i >= 0) this.routeContainers.splice(i, 1);
      };
      rc.retireAll();
    }
    for (const n of diff.routeContainersAdded) {
      const rc = new RouteContainer(n, this, this.logger);
      this.routeContainers.push(rc);
      notes.push(`route-container connector ${n.name} added (${n.host}:${n.port})`);
      rc.start();
    }
    this.linkRouter.setRoutes(next.linkRoutes ?? []);
    this.addressTable.setRules(next.addresses);
    this.policy.setSettings(next.policy ?? NO_POLICY);
    this.settings = { ...next, connectors: [...diff.connectorsKept, ...diff.connectorsAdded] };
    return notes;
  }

  /**
   * This router's own topological addresses are its local ones (qdrouterd's hash: `_topo/0/<id>/x`
   * at router <id> is `Lx`), so a message to `_topo/0/B/x` reaches B's `_local/x` consumers.
   */
  private ownKey(key: string): string {
    const own = this.topoSelf;
    return key.charCodeAt(0) === 0x5f && key.startsWith(own) ? `_local/${key.slice(own.length)}` : key;
  }

  /**
   * This router's management node: `$management`, `_local/$management`, or its own topological
   * `_topo/0/<id>/$management` (`qdstat -r <id>`, `qdmanage -r <id>` on the router itself).
   */
  private isOwnManagementAddress(key: string): boolean {
    return key === '$management' || key === '_local/$management' || key === `_topo/0/${this.settings.id}/$management`;
  }

  /** A `$management` request: answered on the requester's reply link on this connection. */
  private onManagementRequest(link: Link, d: InDelivery): void {
    const conn = link.conn;
    this.core.onInProcessDelivery();
    try {
      const req = decodeRequest(d.payload);
      if (req.replyTo === null) throw new ManagementError('a request needs a reply-to', 400);
      // Routed like any message (the core holds it until the reply link has credit).
      this.routeReply(req.replyTo, encodeReply(req, this.answer(req, conn)));
      if (!d.settled) conn.updateIn(d, STATE.accepted, true);
    } catch (e) {
      if (!(e instanceof ManagementError) && !(e instanceof DecodeError)) throw e;
      if (!d.settled) conn.updateIn(d, encodeRejected({ condition: 'amqp:invalid-field', description: `management: ${(e as Error).message}` }), true);
    }
    if (link.credit < 50) conn.setCredit(link, 100);
    this.touch(conn);
  }

  /**
   * Requests routed to this router's `_topo/0/<id>/$management` through the core (from a client
   * here or from another router): answered, and the reply routed through the core to the
   * request's reply-to, wherever in the mesh it lives (qdrouterd's dynamic `_topo/0/<router>/temp.*`).
   */
  private answerRouted(): void {
    const q = this.agentQueue;
    this.agentQueue = [];
    for (const copy of q) {
      const payload = (copy.delivery.io as RoutedDelivery).d.payload;
      let outcome: Buffer = STATE.accepted;
      let code = 0x24;
      try {
        const req = decodeRequest(payload);
        if (req.replyTo === null) throw new ManagementError('a request needs a reply-to', 400);
        this.routeReply(req.replyTo, encodeReply(req, this.answer(req)));
      } catch (e) {
        if (!(e instanceof ManagementError) && !(e instanceof DecodeError)) throw e;
        this.logger.log('AGENT', 'warning', `management request refused: ${(e as Error).message}`);
        outcome = encodeRejected({ condition: 'amqp:invalid-field', description: `management: ${(e as Error).message}` });
        code = 0x25;
      }
      this.core.onCopyOutcome(copy, code, outcome, true);
    }
    this.touchAll();
    this.pump.schedule();
  }

  /** The agent's answer, logged as qdrouterd's agent logs (each request at debug, a refusal as an error). */
  private answer(req: ManagementRequest, requester: Connection | null = null): ManagementReply {
    if (this.logger.enabled('AGENT', 'debug')) {
      this.logger.log('AGENT', 'debug', `Agent request: operation=${req.operation} type=${req.type ?? ''} name=${req.name ?? ''} identity=${req.identity ?? ''} entityType=${req.entityType ?? ''} reply-to=${req.replyTo}`);
    }
    const reply = this.agent.handle(req, requester);
    if (reply.statusCode >= 400) this.logger.log('AGENT', 'error', `Error performing ${req.operation}: ${reply.statusDescription}`);
    return reply;
  }

  /** Sends a reply into the core, pre-settled, to `replyTo`. */
  private routeReply(replyTo: string, reply: Buffer): void {
    const rd = new RoutedDelivery({ payload: reply, settled: true, link: null } as unknown as InDelivery);
    scanMessage(reply, 0, reply.length, rd, false);
    let to = this.ownKey(normalizeAddress(replyTo));
    to = phaseKey(to, this.addressTable.computePhases(to).ingress);
    this.core.onDelivery(this.agentIn, true, to, rd, null, null, 4);
  }

  /** What the management agent sees of this router: snapshots made on request, never kept. */
  private managementView(): ManagementView {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    return {
      get settings() {
        return self.settings;
      },
      get policy() {
        return self.policy;
      },
      version: VERSION,
      get uptimeSeconds() {
        return Math.floor((Date.now() - self.startedAt) / 1000);
      },
      get memoryUsage() {
        return process.memoryUsage().rss;
      },
      get stats() {
        return self.core.stats;
      },
      bound: this.bound,
      routeContainers: this.routeContainers,
      connectorUp: (c) => this.connectors.get(c)?.isUp ?? false,
      connections: () => this.connectionInfos(),
      links: () => this.linkInfos(),
      addresses: () => this.core.queryAddresses(),
      nodes: () => this.nodeInfos(),
      recentLogs: (limit) => this.logger.recent(limit),
      configured: (schemaType) => configuredRecords(this.configState, schemaType),
      get connectionsAccepted() {
        return self.nextConnId - 1;
      },
      logCounts: (module) => this.logger.countsOf(module),
      linkRouteAddresses: () => this.linkRouter.addressRows(),
      requester: null,
      connectionLinkRoutes: (requester) => !(requester instanceof Connection) ? [] : this.linkRouter.connectionRoutes(requester)
        .map((r) => ({ ...r, containerId: requester.remoteOpen?.containerId ?? null })),
    };
  }

  private connectionInfos(): ConnectionInfo[] {
    const now = Date.now();
    const out: ConnectionInfo[] = [];
    for (const conn of this.pump.conns) {
      const ctx = conn.ctx as ConnCtx | null;
      if (ctx === null || ctx.adminClosed) continue;
      const t = ctx.transport;
      const tls = t.kind === 'tls' || t.kind === 'wss' ? (t.stream as Partial<TLSSocket>) : null;
      const dialled = ctx.connector !== null || (ctx.routeContainer !== null && !ctx.routeContainer.accepted);
      const interRouter = (ctx.connector !== null && !ctx.edge) || (!dialled && ctx.listener.role === 'inter-router');
      const mech = conn.saslMechanism;
      out.push({
        identity: String(ctx.id), host: t.peer, container: conn.remoteOpen?.containerId ?? null,
        role: ctx.edge ? 'edge' : ctx.isRouteContainer ? 'route-container' : interRouter ? 'inter-router' : 'normal', dir: dialled ? 'out' : 'in',
        sasl: mech, user: conn.user, isAuthenticated: mech !== null && mech !== 'ANONYMOUS' && conn.user !== null,
        isEncrypted: tls !== null, sslProto: tls?.getProtocol?.() ?? null, sslCipher: tls?.getCipher?.()?.name ?? null,
        opened: conn.remoteOpen !== null, uptimeSeconds: Math.floor((now - ctx.createdAt) / 1000), lastDlvSeconds: ctx.lastDeliveryAt === 0 ? null : Math.max(0, Math.floor(now / 1000) - ctx.lastDeliveryAt),
        properties: (conn.remoteOpen?.properties as Record<string, unknown> | undefined) ?? {},
      });
    }
    return out;
  }

  private linkInfos(): LinkInfo[] {
    const out: LinkInfo[] = [];
    for (const conn of this.pump.conns) {
      const ctx = conn.ctx as ConnCtx | null;
      if (ctx === null) continue;
      const interRouterConn = this.interRouter?.isInterRouter(conn) ?? false;
      for (const link of conn.allLinks()) {
        const id = this.linkIdentity(link);
        const cl = link.ctx instanceof CoreLink ? link.ctx : null;
        const out1 = link.isSender;
        out.push({
          identity: String(id), linkName: link.name,
          linkType: interRouterConn ? (this.interRouter?.isControlLink(link) ? 'router-control' : 'inter-router')
            // An edge router's downlink, as qdrouterd names it.
            : ctx.edge && out1 && this.edgeUplink === null && cl?.address?.key.startsWith('_edge/') ? 'edge-downlink' : 'endpoint',
          linkDir: out1 ? 'out' : 'in', connectionId: String(ctx.id),
          owningAddr: cl?.address?.key ?? (link.ctx === MANAGEMENT ? '$management' : this.linkRouter.routedAddress(link) ?? link.address),
          capacity: cl?.capacity ?? 250,
          undeliveredCount: cl === null ? 0 : out1 ? cl.undeliveredCount : cl.held,
          unsettledCount: cl === null ? 0 : out1 ? cl.unsettled : 0,
          deliveryCount: cl?.deliveryCount ?? link.deliveryCount, presettledCount: cl?.presettledCount ?? 0,
          acceptedCount: cl?.acceptedCount ?? 0, rejectedCount: cl?.rejectedCount ?? 0, releasedCount: cl?.releasedCount ?? 0, modifiedCount: cl?.modifiedCount ?? 0,
          creditAvailable: link.credit,
          // Inter-router data links carry one priority each (0..9); others the default, 4.
          priority: interRouterConn ? this.interRouter?.dataLinkPriority(link) ?? 4 : 4,
        });
      }
    }
    return out;
  }

  private linkIdentity(link: Link): number {
    let id = this.linkIds.get(link);
    if (id === undefined) this.linkIds.set(link, (id = this.nextLinkIdentity++));
    return id;
  }

  private nodeInfos(): NodeInfo[] {
    const ir = this.interRouter;
    if (ir === null) return [];
    // This router first, as qdrouterd lists it (nextHop "(self)").
    const self: NodeInfo = {
      id: this.settings.id, self: true, instance: ir.mesh.settings.instance, linkState: ir.mesh.ownNeighbours(), nextHop: null, cost: null, validOrigins: [],
      neighbour: false, routerLink: null,
    };
    return [self, ...ir.mesh.queryNodes().filter((n) => n.id !== this.settings.id).map((n) => {
      const control = n.neighbour ? ir.controlLinkTo(n.id) : null;
      return {
        id: n.id, self: false, instance: n.instance, linkState: n.linkState, nextHop: n.nextHop, cost: n.cost, validOrigins: n.validOrigins, neighbour: n.neighbour,
        routerLink: control === null ? null : String(this.linkIdentity(control)),
      };
    })];
  }

  /** Connectors' and auto-links' states (management, logs). */
  routeContainerStatus(): ReturnType<RouteContainer['status']>[] {
    return this.routeContainers.map((rc) => rc.status());
  }

  /** A message from another router: routed on by its x-opt-qd.to (or properties.to). */
  private deliverFromMesh(link: Link, d: InDelivery): void {
    let cl = link.ctx as CoreLink | null;
    if (cl === null) {
      cl = this.core.onSenderAttached(null, DATA_LINK_CREDIT, link);
      cl.interRouter = true;
      link.ctx = cl;
    }
    this.core.onCreditConsumed(cl, link.credit);
    const rd = new RoutedDelivery(d);
    try {
      scanMessage(d.payload, 0, d.payload.length, rd, true);
    } catch {
      if (!d.settled) link.conn.updateIn(d, REJECT_DECODE, true);
      return;
    }
    // qdrouterd's loop guard: a message that has travelled farther than the mesh is wide is looping.
    const radius = this.interRouter?.mesh.routes.radius ?? 0;
    if (radius > 0 && rd.trace !== null && rd.trace.length > radius + 1) {
      if (!d.settled) link.conn.updateIn(d, STATE.released, true);
      return;
    }
    const to = rd.routerTo ?? rd.to;
    if (to === null) {
      if (!d.settled) link.conn.updateIn(d, rd.toInvalid ? REJECT_BAD_TO : REJECT_NO_TO, true);
      return;
    }
    const origin = rd.ingress ? rd.ingress.replace(/^0\//, '') : null;
    d.ctx = this.core.onDelivery(cl, d.settled, phaseKey(this.ownKey(normalizeAddress(to)), rd.phase), rd, origin, rd.trace, rd.priority);
  }

  private accept(t: Transport, deadline: number, l: ListenerSettings, throttled = false): void {
    if (this.stopping) {
      t.stream.destroy();
      return;
    }
    // A host whose authentications keep failing is served, later.
    if (!throttled && this.authGuard.holdBack(t.peer, l.name, (waited) => this.accept(t, deadline + waited, l, true))) return;
    const ctx = new ConnCtx(t, l, this.nextConnId++);
    if (!this.policyGate.onAccept(ctx.policy, t.peer)) {
      // As qdrouterd: over the global limit the socket is closed before any AMQP.
      t.stream.destroy();
      return;
    }
    const conn = new Connection(
      acceptedConnectionOptions(l, t, {
        containerId: this.settings.id,
        maxMessageSize: this.settings.maxMessageSize,
        users: this.settings.users,
        // As qdrouterd 1.19 opens towards clients (offered and desired alike); inter-router
        // connections keep to ANONYMOUS-RELAY, so a qdrouterd peer opens no streaming links to us.
        offeredCapabilities: l.role === 'inter-router' ? ['ANONYMOUS-RELAY'] : CLIENT_CAPABILITIES,
        desiredCapabilities: l.role === 'inter-router' ? undefined : CLIENT_CAPABILITIES,
        properties: l.role === 'inter-router'
          ? InterRouter.openProperties(l.cost ?? 1, VERSION)
          : { product: 'amqp-mesh', version: VERSION, ...(l.failoverServerList ? { [FAILOVER_SERVER_LIST]: l.failoverServerList } : {}) },
      }),
      this,
      Date.now(),
    );
    ctx.edge = l.role === 'edge';
    if (l.role === 'inter-router' && this.interRouter) this.interRouter.register(conn, l.cost ?? 1, false);
    this.traceIfEnabled(conn);
    this.pump.attach(conn, ctx, deadline);
    this.logger.log('SERVER', 'info', `[C${ctx.id}] Accepted connection from ${t.peer} on ${l.name}${t.kind === 'tcp' ? '' : ` (${t.kind}${t.externalId ? `, certificate ${t.externalId}` : ''})`}`);
  }

  /** `/metrics` of http listeners: the router's counters in qdrouterd's Prometheus names. */
  private readonly metricsText = (): string => computeMetricsText(this.managementView());

  /**
   * With the PROTOCOL module at trace (qdrouterd's `enable: trace+`), every frame of the
   * connection is logged as Proton shows it; otherwise nothing is formatted.
   */
  private traceIfEnabled(conn: Connection): void {
    if (!this.logger.enabled('PROTOCOL', 'trace')) return;
    conn.opts.traceFrames = (line) => this.logger.log('PROTOCOL', 'trace', `[C${(conn.ctx as ConnCtx | null)?.id ?? '?'}]:FRAME: ${line}`);
  }

  /** Marks a connection as having output; schedules one flush for the batch. */
  touch(conn: Connection): void {
    this.pump.touch(conn);
  }

  /** A blocked connection's transport drained: its outgoing links may send again. */
  private onWritable(conn: Connection): void {
    const ctx = conn.ctx as ConnCtx;
    for (const link of ctx.outLinks) if (link.ctx) this.core.onWritable(link.ctx as CoreLink);
    this.linkRouter.onWritable(conn);
  }

  /** Closes every connection with a close frame and stops listening. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.meshTimer) clearInterval(this.meshTimer);
    for (const c of this.connectors.values()) c.stopRetrying();
    for (const rc of this.routeContainers) rc.stopReconnecting();
    for (const l of this.listeners.values()) l.close();
    await this.pump.stop({ condition: 'amqp:connection:forced', description: 'router shutting down' });
  }

  /**
   * A connection on a route-container listener opened: a broker or service connecting in, served
   * as a route container (link routes naming the listener or its container-id; the listener's
   * auto-links and those naming its container-id) until it closes.
   */
  private acceptRouteContainer(conn: Connection, ctx: ConnCtx): void {
    const l = ctx.listener;
    const autoLinks = this.settings.routeContainerListeners?.find((r) => r.name === l.name)?.autoLinks ?? [];
    const [host, port] = splitHostPort(ctx.transport.peer);
    const rc = RouteContainer.accepted({
      name: l.name, host, port, failoverUrls: [], maxFrameSize: l.maxFrameSize, idleTimeoutSeconds: l.idleTimeoutSeconds,
      linkCapacity: l.linkCapacity, sasl: { mechanism: null }, autoLinks,
    }, this, this.logger, conn);
    ctx.routeContainer = rc;
    this.routeContainers.push(rc);
  }

  // ------------------------------------------------------------------ ConnectionHandler

  /**
   * A peer's open on an accepted connection (not inter-router): its vhost (the listener's
   * policyVhost, else the open's hostname) and user decide, as qdrouterd's policy does.
   */
  decideOpen(conn: Connection): { refuse: AmqpError } | { maxFrameSize?: number; channelMax?: number } | null {
    const ctx = conn.ctx as ConnCtx;
    const rc = ctx.routeContainer;
    if (rc !== null && !rc.accepted) {
      // A connection we made: its connector's policyVhost, if any, limits what the peer may do.
      return rc.settings.policyVhost === undefined ? null : this.policyGate.decideConnectorOpen(ctx.policy, conn, rc.settings.policyVhost);
    }
    if (ctx.connector !== null || ctx.listener.role === 'inter-router') return null;
    const [host] = splitHostPort(ctx.transport.peer);
    return this.policyGate.decideOpen(ctx.policy, conn, host, ctx.listener.policyVhost ?? conn.remoteOpen?.hostname ?? '');
  }

  decideBegin(conn: Connection, open: number): AmqpError | null {
    return this.policyGate.decideBegin((conn.ctx as ConnCtx).policy, open);
  }

  onAuthFailed(conn: Connection, mechanism: string, user: string | null, reason: string): void {
    const ctx = conn.ctx as ConnCtx;
    this.authGuard.onFailure(ctx.id, ctx.transport.peer, ctx.listener.name, mechanism, user, reason);
  }

  onOversize(link: Link): void {
    this.policyGate.onOversize((link.conn.ctx as ConnCtx).policy, link);
  }

  onOpen(conn: Connection): void {
    this.interRouter?.onOpen(conn);
    const ctx = conn.ctx as ConnCtx;
    if (conn.saslMechanism !== null && conn.saslMechanism !== 'ANONYMOUS' && ctx.connector === null && ctx.routeContainer === null) {
      this.authGuard.onSuccess(ctx.transport.peer);
    }
    if (ctx.listener.multiTenant && ctx.connector === null) {
      // The vhost policy resolved (an alias, the default vhost), else the open's hostname (qdrouterd's).
      const vhost = ctx.policy.policy?.vhost ?? conn.remoteOpen?.hostname ?? '';
      ctx.tenant = vhost === '' ? null : `${vhost}/`;
    }
    if (ctx.routeContainer === null && ctx.connector === null && ctx.listener.role === 'route-container') this.acceptRouteContainer(conn, ctx);
    ctx.routeContainer?.onOpen(conn);
    ctx.connector?.onOpened();
    if (ctx.edge && ctx.connector !== null) this.edgeUplink?.onOpened(conn);
    this.logger.log('SERVER', 'info', `[C${ctx.id}] Connection open: container-id ${conn.remoteOpen?.containerId}, user ${conn.user}`);
  }

  onLinkOpened(link: Link, a: AttachFrame): void {
    if (link.ctx instanceof RouteEnd) return this.linkRouter.onLinkOpened(link, a);
    const rc = (link.conn.ctx as ConnCtx).routeContainer;
    if (rc !== null && rc.onLinkOpened(link, a)) return;
    if (this.edgeUplink?.onLinkOpened(link, a)) return;
    this.interRouter?.onLinkOpened(link);
  }

  // ------------------------------------------------------------------ RouteContainerHost

  newConnection(c: RouteContainerSettings, t: Transport, host: string): Connection {
    const listener: ListenerSettings = {
      name: c.name, host, port: 0, maxFrameSize: c.maxFrameSize, maxSessions: 32768, idleTimeoutSeconds: c.idleTimeoutSeconds,
      linkCapacity: c.linkCapacity, saslMechanisms: [], authenticatePeer: false, stripAnnotations: 'both', role: 'normal',
    };
    const conn = new Connection(
      {
        containerId: this.settings.id, maxFrameSize: c.maxFrameSize, channelMax: 32767, idleTimeoutMs: c.idleTimeoutSeconds * 1000,
        maxMessageSize: this.settings.maxMessageSize, handleMax: 65535, saslMechanisms: [], requireSasl: false,
        offeredCapabilities: [], properties: { product: 'amqp-mesh', version: VERSION }, incomingWindow: 65536,
        client: { ...c.sasl, hostname: host },
        // Brokers: some count credit loosely (RabbitMQ 3.10); a link routed to one must survive it.
        tolerateCreditOverrun: true,
      },
      this,
      Date.now(),
    );
    const ctx = new ConnCtx(t, listener, this.nextConnId++);
    ctx.routeContainer = this.routeContainers.find((r) => r.settings === c) ?? null;
    this.traceIfEnabled(conn);
    this.pump.attach(conn, ctx);
    return conn;
  }

  containerState(rc: RouteContainer, active: boolean, containerId: string | null): void {
    this.linkRouter.onContainer(rc, active, containerId);
  }

  autoLinkOpened(link: Link, a: AutoLinkSettings, capacity: number): void {
    const key = phaseKey(normalizeAddress(a.address), a.phase);
    const ctx = link.conn.ctx as ConnCtx;
    if (a.direction === 'out') {
      // The broker is this address's consumer: the router sends it what producers send.
      link.ctx = this.core.onConsumerAttached(key, capacity, false, link);
      ctx.outLinks.add(link);
      this.core.onConsumerFlow(link.ctx as CoreLink, link.drain);
    } else {
      // The broker is a producer into the egress phase: credit follows the consumers.
      link.ctx = this.core.onSenderAttached(key, capacity, link);
    }
    (link.ctx as CoreLink).routeContainer = true;
    this.touch(link.conn);
  }

  connectionLost(conn: Connection): void {
    if (!conn.closed) conn.onSocketClosed('socket-closed');
    this.touchAll();
  }

  onAttach(link: Link, a: AttachFrame): void {
    // A routed attach from a neighbour router continues toward its route (or is refused).
    if (this.interRouter?.isRoutedAttach(link, a)) {
      this.linkRouter.onAttach(link, a, true);
      return;
    }
    if (this.interRouter?.onAttach(link, a)) return;
    const conn = link.conn;
    const ctx = conn.ctx as ConnCtx;
    const refused = this.policyGate.decideAttach(ctx.policy, link, a);
    if (refused !== null) return this.refuse(link, a, refused);
    const space = ctx.tenant === null ? null : (key: string) => inSpace(ctx.tenant, key);
    // An edge asks its interior whether an address no local route serves is link-routed there.
    if (this.edgeUplink !== null && !ctx.edge && this.lookUpBeforeServing(link, a, space)) return;
    if (this.linkRouter.onAttach(link, a, false, space)) return;
    this.serveAttach(link, a);
  }

  /**
   * Edge mode: holds a client's attach while the interior says whether its address is
   * link-routed (qdrouterd's address_lookup_client): then it is relayed up the edge connection,
   * refused (a route without destinations), or served here. False when no lookup is made
   * (router-local addresses, no terminus address, or no active uplink).
   */
  private lookUpBeforeServing(link: Link, a: AttachFrame, space: ((key: string) => string) | null): boolean {
    const t = link.isSender ? a.source : a.target;
    if (t === null || t.type === 'coordinator') return false;
    const raw = t.dynamic ? t.dynamicAddress : t.address;
    if (raw === null) return false;
    const key = space === null ? normalizeAddress(raw) : space(normalizeAddress(raw));
    if (isRouterAddress(key)) return false;
    if (this.linkRouter.hasLocalRoute(key, link.isSender ? 'out' : 'in')) return false;
    // The attach outlives this frame: keep its termini's bytes.
    const held: AttachFrame = {
      ...a,
      source: a.source === null ? null : { ...a.source, raw: Buffer.from(a.source.raw) },
      target: a.target === null ? null : { ...a.target, raw: Buffer.from(a.target.raw) },
    };
    const asked = this.edgeUplink!.lookup(key, !link.isSender, (outcome) => {
      // The client gave up (detached, or its connection went) while we asked.
      if (!this.lookupHeld.delete(link)) return;
      const up = this.edgeUplink?.activeConnection ?? null;
      if (outcome === 'route' && up !== null) this.linkRouter.onAttach(link, held, false, space, up);
      else if (outcome === 'no-route') this.refuse(link, held, NO_ROUTE);
      else if (!this.linkRouter.onAttach(link, held, false, space)) this.serveAttach(link, held);
      this.touch(link.conn);
      if (up !== null) this.touch(up);
    });
    if (asked) this.lookupHeld.add(link);
    return asked;
  }

  /** A client's attach that no link route takes: a consumer, a producer, management, or an edge's own links. */
  private serveAttach(link: Link, a: AttachFrame): void {
    const conn = link.conn;
    const ctx = conn.ctx as ConnCtx;
    const capacity = ctx.listener.linkCapacity;
    const edgeConn = ctx.edge ? conn : null;
    if (edgeConn !== null && link.isSender && a.source !== null && this.edgeUplink === null && this.onEdgeAttach(link, a, capacity)) return;
    if (edgeConn !== null && !link.isSender && this.edgeUplink === null && a.target?.address === ADDRESS_LOOKUP_ADDRESS) {
      // A qdrouterd edge asks whether its clients' addresses are link-routed before serving them.
      link.address = ADDRESS_LOOKUP_ADDRESS;
      link.accept({}, a);
      link.ctx = ADDRESS_LOOKUP;
      conn.setCredit(link, ADDRESS_LOOKUP_CREDIT);
      return;
    }
    if (link.isSender) {
      // The peer receives: a consumer.
      const src = a.source;
      if (src === null) return this.refuse(link, a, { condition: 'amqp:invalid-field', description: 'a receiving link needs a source' });
      let key: string;
      let replySource: Parameters<Link['accept']>[0]['source'];
      if (src.dynamic) {
        // An edge router's dynamic addresses are `_edge/<id>/...`: the interior routes them down to it.
        const addr = this.edgeUplink !== null
          ? `amqp:/_edge/${this.settings.id}/temp.${randomBytes(9).toString('base64url')}`
          : `amqp:/_topo/0/${this.settings.id}/temp.${randomBytes(9).toString('base64url')}`;
        key = this.ownKey(normalizeAddress(addr));
        replySource = { type: 'source', address: addr, dynamic: true };
      } else {
        if (src.address === null) return this.refuse(link, a, { condition: 'amqp:invalid-field', description: 'a receiving link needs a source address or a dynamic source' });
        const problem = checkAddress(src.address, this.settings.maxAddressLength);
        if (problem) return this.refuse(link, a, { condition: 'amqp:invalid-field', description: `invalid source address: ${problem}` });
        key = this.ownKey(inSpace(ctx.tenant, normalizeAddress(src.address)));
        if (this.addressTable.isUnavailable(key)) return this.refuse(link, a, NODE_NOT_FOUND);
        // A waypoint's consumers receive what comes back from the broker (the egress phase).
        key = phaseKey(key, this.addressTable.computePhases(key).egress);
      }
      link.address = key;
      link.accept({ source: replySource }, a);
      link.ctx = this.core.onConsumerAttached(key, capacity, a.sndSettleMode === 1, link, edgeConn);
      (link.ctx as CoreLink).routeContainer = ctx.isRouteContainer;
      ctx.outLinks.add(link);
      this.logger.log('ROUTER', 'debug', `[C${ctx.id}] consumer link ${link.name} on ${key}`);
      return;
    }
    // The peer sends.
    const tgt = a.target;
    if (tgt !== null && tgt.type === 'coordinator') {
      // qdrouterd 1.19's words (QDR_CONDITION_COORDINATOR_PRECONDITION_FAILED), which clients match.
      return this.refuse(link, a, { condition: 'amqp:precondition-failed', description: "The router can't coordinate transactions by itself, a linkRoute to a coordinator must be configured to use transactions." });
    }
    let key: string | null = null;
    let replyTarget: Parameters<Link['accept']>[0]['target'];
    if (tgt !== null && tgt.dynamic) {
      // As qdrouterd: a dynamic target gets a new mobile address (`_$temp.*`), reachable from
      // anywhere in the mesh once someone consumes it.
      const addr = `amqp:/_$temp.${randomBytes(9).toString('base64url')}`;
      key = normalizeAddress(addr);
      replyTarget = { type: 'target', address: addr, dynamic: true };
    }
    if (replyTarget === undefined && tgt !== null && tgt.address !== null && this.isOwnManagementAddress(normalizeAddress(tgt.address))) {
      link.address = '$management';
      link.accept({}, a);
      link.ctx = MANAGEMENT;
      link.conn.setCredit(link, 100);
      return;
    }
    if (replyTarget === undefined && tgt !== null && tgt.address !== null) {
      const problem = checkAddress(tgt.address, this.settings.maxAddressLength);
      if (problem) return this.refuse(link, a, { condition: 'amqp:invalid-field', description: `invalid target address: ${problem}` });
      key = this.ownKey(inSpace(ctx.tenant, normalizeAddress(tgt.address)));
      if (this.addressTable.isUnavailable(key)) return this.refuse(link, a, NODE_NOT_FOUND);
      key = phaseKey(key, this.addressTable.computePhases(key).ingress);
    }
    link.address = key;
    // Our outcomes are settled (rcv-settle-mode first), whatever the sender asked: as qdrouterd,
    // and clients that ask for second but never settle (uAMQP) complete their sends.
    link.accept(replyTarget === undefined ? { rcvSettleMode: 0 } : { rcvSettleMode: 0, target: replyTarget }, a);
    link.ctx = this.core.onSenderAttached(key, capacity, link, edgeConn);
    (link.ctx as CoreLink).routeContainer = ctx.isRouteContainer;
    this.logger.log('ROUTER', 'debug', `[C${ctx.id}] sender link ${link.name} on ${key ?? '(anonymous)'}`);
  }

  /**
   * Interior mode: an edge router's own links (qdrouterd's): its address-tracking link, and its
   * downlink, which consumes `_edge/<edge id>`. Returns false for the edge's other links.
   */
  private onEdgeAttach(link: Link, a: AttachFrame, capacity: number): boolean {
    const src = a.source!;
    if (src.address === EDGE_TRACKING_ADDRESS) {
      link.address = EDGE_TRACKING_ADDRESS;
      link.accept({}, a);
      link.ctx = EDGE_TRACKING_LINK;
      this.edgeTracker.onAttached(link);
      return true;
    }
    if (!src.capabilities.includes(EDGE_DOWNLINK_CAPABILITY) || src.address === null) return false;
    const key = `_edge/${src.address}`;
    link.address = key;
    link.accept({}, a);
    link.ctx = this.core.onConsumerAttached(key, capacity, false, link, link.conn);
    (link.conn.ctx as ConnCtx).outLinks.add(link);
    this.logger.log('ROUTER', 'info', `[C${(link.conn.ctx as ConnCtx).id}] edge router ${src.address}: downlink attached`);
    return true;
  }

  /**
   * A qdrouterd edge's link-route lookup (its interior's address_lookup_server): answered through
   * the core to the request's reply-to, as management replies are; a malformed one is rejected.
   */
  private onAddressLookup(link: Link, d: InDelivery): void {
    const conn = link.conn;
    let outcome: Buffer = STATE.accepted;
    try {
      const req = decodeLookupRequest(d.payload);
      const r = this.linkRouter.lookup(req.address, req.receiver ? 'in' : 'out');
      this.routeReply(req.replyTo, encodeLookupReply(req, r.routed ? LookupStatus.Ok : LookupStatus.NotFound, r.routed, r.reachable));
    } catch (e) {
      if (!(e instanceof EdgeProtocolError)) throw e;
      this.logger.log('ROUTER', 'warning', `[C${(conn.ctx as ConnCtx).id}] ${e.message}; rejected`);
      outcome = encodeRejected({ condition: 'amqp:decode-error', description: e.message });
    }
    if (!d.settled) conn.updateIn(d, outcome, true);
    conn.setCredit(link, ADDRESS_LOOKUP_CREDIT);
    this.touch(conn);
  }

  private refuse(link: Link, a: AttachFrame, error: AmqpError): void {
    const ctx = link.conn.ctx as ConnCtx;
    this.logger.log('ROUTER', 'warning', `[C${ctx.id}] refused link ${link.name}: ${error.condition}: ${error.description}`);
    link.refuse(error, a);
  }

  onFlow(link: Link, drain: boolean): void {
    if (link.ctx instanceof RouteEnd) return this.linkRouter.onFlow(link);
    if (link.ctx === EDGE_TRACKING_LINK) return this.edgeTracker.onFlow(link);
    if (link.ctx === EDGE_MGMT_LINK) return this.edgeUplink?.onManagementFlow(link);
    if (link.ctx instanceof CoreLink) this.core.onConsumerFlow(link.ctx, drain);
  }

  onSenderFlow(link: Link, deliveryCount: number | null, credit: number | null, drain: boolean): void {
    if (link.ctx instanceof RouteEnd) return this.linkRouter.onSenderFlow(link, deliveryCount, credit, drain);
    // After a drain the link's credit is what the sender says: the core tops it up from there.
    if (drain && link.ctx instanceof CoreLink) {
      this.core.onCreditConsumed(link.ctx as CoreLink, link.credit);
      this.touch(link.conn);
    }
    const rc = (link.conn.ctx as ConnCtx).routeContainer;
    if (rc !== null && rc.draining) rc.onSenderFlow(link, drain, credit);
  }

  onDelivery(link: Link, d: InDelivery): void {
    (link.conn.ctx as ConnCtx).lastDeliveryAt = this.clockSeconds;
    if (link.ctx instanceof RouteEnd) return this.linkRouter.onDelivery(link, d);
    if (link.ctx === MANAGEMENT) return this.onManagementRequest(link, d);
    if (link.ctx === EDGE_TRACKING_LINK) return this.edgeUplink?.onTracking(link, d);
    if (link.ctx === EDGE_MGMT_LINK) return this.edgeUplink?.onManagementReply(link, d);
    if (link.ctx === ADDRESS_LOOKUP) return this.onAddressLookup(link, d);
    if (this.interRouter?.onDelivery(link, d)) return;
    const cl = link.ctx as CoreLink | null;
    if (cl === null) return;
    const rcx = (link.conn.ctx as ConnCtx).routeContainer;
    if (rcx !== null && rcx.draining) rcx.onDelivery(link);
    this.core.onCreditConsumed(cl, link.credit);
    const rd = new RoutedDelivery(d);
    const ctx = link.conn.ctx as ConnCtx;
    const keepInbound = ctx.edge || ctx.listener.stripAnnotations === 'out' || ctx.listener.stripAnnotations === 'no';
    try {
      scanMessage(d.payload, 0, d.payload.length, rd, keepInbound);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.logger.log('ROUTER', 'warning', `[C${ctx.id}] rejected a malformed message on ${link.name}: ${e.message}`);
      if (!d.settled) link.conn.updateIn(d, REJECT_DECODE, true);
      return;
    }
    if (ctx.policy.policy !== null) {
      const rejected = this.policyGate.checkMessage(ctx.policy, d.payload, cl.address === null ? (ctx.edge ? rd.routerTo ?? rd.to : rd.to) : null);
      if (rejected !== null) {
        if (!d.settled) link.conn.updateIn(d, rejected, true);
        return;
      }
    }
    let to: string | null = null;
    if (cl.address === null) {
      // Between an edge and its interior router the router's own to-override wins, as on the mesh.
      const rto = ctx.edge ? rd.routerTo ?? rd.to : rd.to;
      if (rto === null) {
        if (!d.settled) link.conn.updateIn(d, rd.toInvalid ? REJECT_BAD_TO : REJECT_NO_TO, true);
        return;
      }

      to = this.ownKey(inSpace(ctx.tenant, normalizeAddress(rto)));
      to = phaseKey(to, this.addressTable.computePhases(to).ingress);
    }
    // An address rule's priority overrides the message's (qdrouterd's address `priority`).
    const priority = this.addressTable.anyPriority ? this.addressTable.computePriority(parsePhaseKey(to ?? cl.address?.key ?? '').address, rd.priority) : rd.priority;
    d.ctx = this.core.onDelivery(cl, d.settled, to, rd, null, null, priority);
  }

  onOutcome(od: OutDelivery, code: number, state: Buffer | null, settled: boolean): void {
    if (od.link.ctx instanceof RouteEnd) return this.linkRouter.onOutcome(od, state, settled);
    this.core.onCopyOutcome(od.ctx as Copy, code, state, settled);
  }

  onSessionWritable(session: Session): void {
    for (const link of session.links.values()) {
      if (!link.isSender || !link.ctx) continue;
      if (link.ctx instanceof RouteEnd) this.linkRouter.onFlow(link);
      else this.core.onWritable(link.ctx as CoreLink);
    }
    this.touch(session.conn);
  }

  onInSettled(d: InDelivery): void {
    // The sender settled after our unsettled outcome (3-ack); a routed link passes it on.
    if (d.link.ctx instanceof RouteEnd) this.linkRouter.onInSettled(d);
    else if (d.ctx instanceof Delivery) {
      this.core.onDeliverySettled(d.ctx);
      this.touchAll();
    }
  }

  onLinkGone(link: Link, error: AmqpError | null, reason: LinkGoneReason): void {
    this.policyGate.onLinkGone((link.conn.ctx as ConnCtx).policy, link);
    // Waiting for an edge lookup: nothing was made for it yet.
    if (this.lookupHeld.delete(link)) return;
    if (link.ctx instanceof RouteEnd) return this.linkRouter.onLinkGone(link, error, reason);
    if (link.ctx === MANAGEMENT || link.ctx === ADDRESS_LOOKUP) return;
    const ctx = link.conn.ctx as ConnCtx;
    if (ctx.edge) {
      this.edgeUplink?.onLinkGone(link);
      if (link.ctx === EDGE_TRACKING_LINK) return this.edgeTracker.onLinkGone(link);
      if (link.ctx === EDGE_MGMT_LINK) return;
    }
    const cl = link.ctx as CoreLink | null;
    if (error) this.logger.log('ROUTER', 'info', `[C${ctx.id}] link ${link.name} gone (${reason}): ${error.condition} ${error.description ?? ''}`);
    // The auto-link's lastError, as qdrouterd reports it: the peer's description (else its condition).
    ctx.routeContainer?.onLinkGone(link, error ? error.description ?? error.condition : null);
    if (cl === null) return;
    if (link.isSender) {
      ctx.outLinks.delete(link);
      // The link's own list, not a scan of the session's: a connection closing with many links
      // must not cost links x unsettled.
      for (const od of link.takeUnsettledOut()) this.core.onCopyLost(od.ctx as Copy);
    }
    this.core.onLinkGone(cl);
    this.touchAll();
  }

  onClosed(conn: Connection, reason: CloseReason, error: AmqpError | null): void {
    const pc = conn.ctx as ConnCtx;
    this.policyGate.onClosed(pc.policy, pc.transport.peer);
    this.interRouter?.onClosed(conn);
    this.edgeUplink?.onClosed(conn);
    this.edgeTracker.onClosed(conn);
    this.linkRouter.onConnectionClosed(conn);
    const ctx = conn.ctx as ConnCtx;
    const rc = ctx.routeContainer;
    if (rc !== null && rc.accepted) {
      rc.onAcceptedClosed();
      const i = this.routeContainers.indexOf(rc);
      if (i >= 0) this.routeContainers.splice(i, 1);
    }
    const lvl = reason === 'client-closed' || reason === 'router-shutdown' ? 'info' : 'warning';
    this.logger.log('SERVER', lvl, `[C${ctx.id}] Connection closed (${reason})${error ? `: ${error.condition} ${error.description ?? ''}` : ''}`);
    // A broker that sent past its credit was tolerated (route containers only): say how often.
    if (conn.creditOverruns > 0) this.logger.log('SERVER', 'info', `[C${ctx.id}] the peer sent ${conn.creditOverruns} transfers past the credit granted (tolerated on route-container connections)`);
    this.touch(conn);
  }

  log(level: 'error' | 'warning' | 'info' | 'debug' | 'trace', msg: string): void {
    this.logger.log('PROTOCOL', level, msg);
  }

  /**
   * Outcomes made by a departing link can touch any connection: flush them all. Deferred to the
   * next flush, which looks at every connection once: a connection closing with N links calls
   * this N times, and a scan each time would cost links x connections.
   */
  touchAll(): void {
    this.pump.touchAll();
  }

  // ------------------------------------------------------------------ CoreEffects

  grantCredit(cl: CoreLink, credit: number): void {
    if (cl.io === AGENT_IN) return;
    const link = cl.io as Link;
    link.conn.setCredit(link, credit);
    this.touch(link.conn);
  }

  drainCredit(cl: CoreLink, credit: number): void {
    if (cl.io === AGENT_IN) return;
    const link = cl.io as Link;
    link.conn.setCredit(link, credit, true);
    this.touch(link.conn);
  }

  canSend(cl: CoreLink): boolean {
    if (cl.io === AGENT_OUT) return true;
    const link = cl.io as Link;
    return link.conn.canSend(link);
  }

  transmit(copy: Copy, settled: boolean): unknown {
    if (copy.out.io === AGENT_OUT) {
      if (this.agentQueue.length === 0) setImmediate(() => this.answerRouted());
      this.agentQueue.push(copy);
      return AGENT_OUT;
    }
    const link = copy.out.io as Link;
    const conn = link.conn;
    const d = copy.delivery.io as RoutedDelivery;
    const strip = (conn.ctx as ConnCtx).listener.stripAnnotations;
    const annotate = strip === 'in' || strip === 'no';
    let payload: Buffer;
    if ((this.interRouter !== null && this.interRouter.isInterRouter(conn)) || (conn.ctx as ConnCtx).edge) {
      if (d.forMesh === null) {
        let key = copy.delivery.address?.key ?? null;
        // Up an edge router's uplink, or towards an edge's summary address (`_edge/<id>`): the
        // address the sender named travels as qdrouterd's to-override.
        if (key !== null && (key === EDGE_ADDRESS || key.startsWith('_edge/'))) key = copy.delivery.link.key ?? d.routerTo ?? d.to;
        if (key === null) d.forMesh = this.annotate(d, d.to, 0);
        else if (key.charCodeAt(0) !== 1) d.forMesh = this.annotate(d, key, 0);
        else {
          // A waypoint phase travels as x-opt-qd.phase (rare: no allocation on the common path above).
          const k = parsePhaseKey(key);
          d.forMesh = this.annotate(d, k.address, k.phase);
        }
      }
      payload = d.forMesh;
    } else if (annotate) {
      // The router annotations the message came with go on too (qdrouterd's: a client-set or
      // mesh-set x-opt-qd.to and phase stay, ingress and trace gain this router).
      if (d.annotated === null) d.annotated = this.annotate(d, d.routerTo, d.phase);
      payload = d.annotated;
    } else if (d.hasRouterKeys) {
      if (d.stripped === null) d.stripped = this.strip(d);
      payload = d.stripped;
    } else payload = d.d.payload;
    // The sender's own transfer state (an extension state) travels on with the message (qdrouterd's).
    const od = conn.send(link, payload, settled, copy, d.d.state);
    (conn.ctx as ConnCtx).lastDeliveryAt = this.clockSeconds;
    this.touch(conn);
    return od;
  }

  private annotate(rd: RoutedDelivery, to: string | null = null, phase = 0): Buffer {
    const w = this.annotateWriter;
    w.reset();
    const me = `0/${this.settings.id}`;
    const trace = rd.trace ? [...rd.trace, me] : [me];
    const payload = rd.d.payload;
    writeMessageWithAnnotations(w, payload, 0, payload.length, rd, rd.ingress ?? me, trace, to, phase);
    return w.take();
  }

  private strip(rd: RoutedDelivery): Buffer {
    const w = this.annotateWriter;
    w.reset();
    const payload = rd.d.payload;
    writeMessageWithAnnotations(w, payload, 0, payload.length, rd, null, null);
    return w.take();
  }

  settleIn(del: Delivery, state: Buffer | null, made: Made | 0): void {
    this.outcomeIn(del, state, made, true);
  }

  updateIn(del: Delivery, state: Buffer | null, made: Made | 0): void {
    this.outcomeIn(del, state, made, false);
  }

  private outcomeIn(del: Delivery, state: Buffer | null, made: Made | 0, settled: boolean): void {
    const d = (del.io as RoutedDelivery).d;
    const link = d.link;
    if (link === null || !link.attached || d.settled) return;
    const s = made === Made.Released ? STATE.released
      : made === Made.ModifiedFailed ? STATE.modifiedFailed
      : made === Made.RejectedUnavailable ? REJECT_UNAVAILABLE
      // A consumer's modified reaches the producer with delivery-failed set (qdrouterd's).
      : state !== null ? withDeliveryFailed(state)
      : state;
    link.conn.updateIn(d, s, settled);
    this.touch(link.conn);
  }

  settleOut(copy: Copy): void {
    if (copy.out.io === AGENT_OUT) return;
    const od = copy.io as OutDelivery;
    if (!od.link.attached) return;
    od.link.conn.updateOut(od, null, true);
    this.touch(od.link.conn);
  }

  addressPresence(key: string, distribution: Distribution, present: boolean): void {
    // Dynamic addresses are reached through _topo; `$management` and `_local/...` are this router's own.
    if (!this.interRouter || key.startsWith('_topo/') || key.startsWith('_local/') || key === '$management') return;
    if (key.startsWith('_edge/')) {
      // An edge router's downlink: its summary address goes to the mesh as qdrouterd's H key.
      this.interRouter.mesh.onLocalAddress(`H${key.slice(6)}`, TREATMENT.ANYCAST_BALANCED, present);
      return;
    }
    const k = parsePhaseKey(key);
    this.interRouter.mesh.onLocalAddress(mobileKey(k.address, k.phase), hintForDistribution(distribution), present);
  }

  edgePresence(key: string, consumer: boolean, present: boolean): void {
    this.edgeUplink?.onPresence(key, consumer, present);
  }

  edgeDestinations(cl: CoreLink, present: boolean): void {
    const link = cl.io as Link;
    const a = cl.address;
    if (a === null || !link.attached) return;
    const k = parsePhaseKey(a.key);
    if (k.phase > 9) return;
    this.edgeTracker.send(link.conn, mobileKey(k.address, k.phase), present);
  }

  drainComplete(cl: CoreLink): void {
    if (cl.io === AGENT_OUT) return;
    const link = cl.io as Link;
    link.conn.drainComplete(link);
    this.touch(link.conn);
  }
}

