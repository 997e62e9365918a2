/**
 * The router process's I/O: TCP listeners, one {@link Connection} engine per socket, and the
 * glue between engines and the {@link RouterCore}. The only module (with the CLI) that touches
 * sockets and timers.
 *
 * Output is batched: engines write frames into their own buffers while a batch of socket reads
 * is processed; one setImmediate later every touched connection writes once. A socket whose
 * write buffer passes its high-water mark stops receiving deliveries until it drains
 * (backpressure reaches senders through credit).
 */
import * as net from 'node:net';
import { listen } from './listen';
import { randomBytes } from 'node:crypto';
import { Connection, ConnectionHandler, CloseReason, InDelivery, Link, OutDelivery, LinkGoneReason, Session } from '../protocol/connection';
import { AmqpError, AttachFrame, STATE, encodeRejected } from '../protocol/performatives';
import { scanMessage, writeMessageWithAnnotations } from '../protocol/message';
import { DecodeError, Writer } from '../protocol/codec';
import { AddressTable, AddressRule, Distribution, checkAddress, normalizeAddress } from '../core/addresses';
import { hintForDistribution, mobileKey } from '../protocol/control';
import { Copy, CoreEffects, CoreLink, Delivery, Made, RouterCore } from '../core/core';
import { Logger } from './log';
import { DATA_LINK_CREDIT, InterRouter } from './inter-router';
import { MESH_DEFAULTS, MeshSettings } from '../core/mesh';
import { AutoLinkSettings, RouteContainer, RouteContainerHost, RouteContainerSettings } from './route-container';
import { parsePhaseKey, phaseKey } from '../core/addresses';
import { LinkRouteSettings, LinkRouter, RouteEnd } from './link-route';
import { ENTITY_TYPES, EntityRecord, ManagementError, answer, decodeRequest, encodeReply } from './management';

/** Marks a link attached to `$management` (requests in). */
const MANAGEMENT = { management: true };

export const VERSION = '0.1.0';

/** A listener's settings (qdrouterd `listener` attribute names). */
export interface ListenerSettings {
  name: string;
  host: string;
  port: number;
  maxFrameSize: number;
  maxSessions: number;
  idleTimeoutSeconds: number;
  linkCapacity: number;
  saslMechanisms: string[];
  authenticatePeer: boolean;
  stripAnnotations: 'in' | 'out' | 'both' | 'no';
  /** `inter-router`: peers are routers of the mesh. */
  role?: 'normal' | 'inter-router';
  /** Inter-router cost (listener `cost`). */
  cost?: number;
}

/** An outgoing inter-router connection (qdrouterd `connector`). */
export interface ConnectorSettings {
  name: string;
  host: string;
  port: number;
  cost: number;
  maxFrameSize: number;
  idleTimeoutSeconds: number;
  sasl: { mechanism: 'ANONYMOUS' | 'PLAIN' | null; user?: string; password?: string };
}

/** Everything the router process needs. */
export interface RouterSettings {
  id: string;
  mode: 'standalone' | 'interior';
  listeners: ListenerSettings[];
  addresses: AddressRule[];
  /** Largest message accepted, bytes. */
  maxMessageSize: number;
  /** Longest address accepted, characters. */
  maxAddressLength: number;
  /** Users for SASL PLAIN: user -> password. */
  plainUsers?: Record<string, string>;
  connectors?: ConnectorSettings[];
  /** Control-plane timing (interior mode). */
  mesh?: Omit<MeshSettings, 'id' | 'instance'>;
  /** Connections to brokers (connector role route-container) with their auto-links. */
  routeContainers?: RouteContainerSettings[];
  /** Link routes (linkRoute entities) bound to route-container connectors. */
  linkRoutes?: LinkRouteSettings[];
}

/** Per-connection router state. */
class ConnCtx {
  dirty = false;
  readonly outLinks = new Set<Link>();
  /** Set on a route-container connection (to a broker). */
  routeContainer: RouteContainer | null = null;
  constructor(readonly socket: net.Socket, readonly listener: ListenerSettings, readonly id: number) {}
}

const HIGH_WATER = 1 << 20;
const REJECT_DECODE = encodeRejected({ condition: 'amqp:decode-error', description: 'malformed message sections' });
const REJECT_NO_TO = encodeRejected({ condition: 'amqp:invalid-field', description: 'anonymous relay: message has no "to" address' });
const REJECT_BAD_TO = encodeRejected({ condition: 'amqp:invalid-field', description: 'anonymous relay: the message\'s "to" address is not valid UTF-8' });

/** A running router. */
export class RouterServer implements ConnectionHandler, CoreEffects, RouteContainerHost {
  readonly core: RouterCore;
  private readonly addressTable: AddressTable;
  /** Route-container connectors (to brokers). */
  readonly routeContainers: RouteContainer[] = [];
  readonly linkRouter: LinkRouter;
  private readonly servers: net.Server[] = [];
  private readonly conns = new Set<Connection>();
  private readonly dirty: Connection[] = [];
  private flushScheduled = false;
  /** {@link touchAll} was asked for: done once, in the next flush. */
  private touchAllPending = false;
  private tickTimer: NodeJS.Timeout | null = null;
  private nextConnId = 1;
  private readonly annotateWriter = new Writer(64 * 1024);
  /** Where each listener ended up (port 0 resolved). */
  readonly bound: { name: string; host: string; port: number }[] = [];
  private stopping = false;
  /** The mesh glue (interior mode). */
  readonly interRouter: InterRouter | null;
  private meshTimer: NodeJS.Timeout | null = null;
  private readonly connectorTimers = new Set<NodeJS.Timeout>();

  /** Inter-router connectors removed by a reconfiguration: no reconnect. */
  private readonly removedConnectors = new Set<ConnectorSettings>();
  private readonly connectorSockets = new Map<ConnectorSettings, net.Socket>();

  constructor(public settings: RouterSettings, readonly logger: Logger) {
    this.addressTable = new AddressTable(settings.addresses);
    this.core = new RouterCore(this.addressTable, this);
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
    this.linkRouter = new LinkRouter(settings.linkRoutes ?? [], {
      touch: (c) => this.touch(c),
      interRouter: this.interRouter,
      routeContainer: (name) => this.routeContainers.find((r) => r.settings.name === name),
    }, logger);
  }

  /** Opens every listener; resolves when all listen. */
  async start(): Promise<void> {
    for (const l of this.settings.listeners) {
      const bound = await listen(l, (socket) => this.accept(socket, l), this.logger);
      this.bound.push({ name: bound.name, host: bound.host, port: bound.port });
      this.servers.push(bound.server);
    }
    this.tickTimer = setInterval(() => this.tick(), 1000);
    if (this.interRouter) {
      const ir = this.interRouter;
      // The control plane ticks often so a lost neighbour is routed around quickly.
      this.meshTimer = setInterval(() => {
        ir.onTick(Date.now());
        this.touchAll();
      }, 100);
      for (const c of this.settings.connectors ?? []) this.connect(c, 0);
    }
    for (const rc of this.routeContainers) rc.start();
  }

  /** Opens (and keeps re-opening) an inter-router connector, with backoff. */
  private connect(c: ConnectorSettings, attempt: number): void {
    if (this.stopping || !this.interRouter || this.removedConnectors.has(c)) return;
    const socket = net.connect({ host: c.host, port: c.port, noDelay: true });
    this.connectorSockets.set(c, socket);
    const listener: ListenerSettings = {
      name: c.name, host: c.host, port: c.port, maxFrameSize: c.maxFrameSize, maxSessions: 32768, idleTimeoutSeconds: c.idleTimeoutSeconds,
      linkCapacity: 250, saslMechanisms: [], authenticatePeer: false, stripAnnotations: 'no', role: 'inter-router', cost: c.cost,
    };
    const conn = new Connection(
      {
        containerId: this.settings.id, maxFrameSize: c.maxFrameSize, channelMax: 32767, idleTimeoutMs: c.idleTimeoutSeconds * 1000,
        maxMessageSize: this.settings.maxMessageSize, handleMax: 65535, saslMechanisms: [], requireSasl: false,
        offeredCapabilities: ['ANONYMOUS-RELAY'], properties: InterRouter.openProperties(c.cost, VERSION), incomingWindow: 65536,
        client: { ...c.sasl, hostname: c.host },
      },
      this,
      Date.now(),
    );
    const ctx = new ConnCtx(socket, listener, this.nextConnId++);
    conn.ctx = ctx;
    this.interRouter.register(conn, c.cost, true);
    this.conns.add(conn);
    let opened = false;
    socket.on('connect', () => {
      opened = true;
      this.logger.log('SERVER', 'info', `[C${ctx.id}] connector ${c.name} connected to ${c.host}:${c.port}`);
      conn.start();
      this.touch(conn);
    });
    this.wireSocket(conn, socket);
    socket.on('error', (e) => this.logger.log('SERVER', opened ? 'info' : 'debug', `[C${ctx.id}] connector ${c.name}: ${e.message}`));
    socket.on('close', () => {
      if (!conn.closed) conn.onSocketClosed('socket-closed');
      this.interRouter?.onClosed(conn);
      this.conns.delete(conn);
      this.connectorSockets.delete(c);
      if (this.stopping || this.removedConnectors.has(c)) return;
      // 1 s, 2 s, 4 s, then every 5 s; a connection that opened starts over.
      const next = opened ? 0 : attempt + 1;
      const delay = opened ? 1000 : Math.min(5000, 1000 * 2 ** Math.min(attempt, 3));
      this.logger.log('SERVER', 'info', `connector ${c.name}: ${opened ? 'connection lost' : 'cannot connect'} to ${c.host}:${c.port}; retrying in ${delay} ms`);
      const t = setTimeout(() => {
        this.connectorTimers.delete(t);
        this.connect(c, next);
      }, delay);
      this.connectorTimers.add(t);
    });
  }

  /**
   * Applies a new configuration to the running router (SIGHUP): inter-router connectors and
   * route-container connectors are added and removed (a changed one is replaced), auto-links
   * and link routes follow, address rules apply to addresses first used from now on. Listeners
   * and the router's identity need a restart. Returns what it did, for the log.
   */
  reconfigure(next: RouterSettings): string[] {
    const notes: string[] = [];
    const cur = this.settings;
    if (next.id !== cur.id || next.mode !== cur.mode) notes.push('router id/mode changes need a restart (ignored)');
    const lkey = (l: ListenerSettings) => `${l.name}|${l.host}|${l.port}|${l.role}|${l.cost}`;
    if (next.listeners.map(lkey).join() !== cur.listeners.map(lkey).join()) notes.push('listener changes need a restart (ignored)');
    // Inter-router connectors: by everything that defines them (a cost change reconnects).
    const ckey = (c: ConnectorSettings) => `${c.name}|${c.host}|${c.port}|${c.cost}`;
    const oldC = cur.connectors ?? [];
    const newC = next.connectors ?? [];
    const kept: ConnectorSettings[] = [];
    for (const c of oldC) {
      if (newC.some((n) => ckey(n) === ckey(c))) {
        kept.push(c);
        continue;
      }
      this.removedConnectors.add(c);
      this.connectorSockets.get(c)?.destroy();
      notes.push(`connector ${c.name} removed`);
    }
    for (const n of newC) {
      if (oldC.some((c) => ckey(c) === ckey(n))) continue;
      kept.push(n);
      notes.push(`connector ${n.name} added (${n.host}:${n.port}, cost ${n.cost})`);
      if (this.interRouter) this.connect(n, 0);
    }
    // Route-container connectors: same endpoint → only their auto-links change.
    const rkey = (r: RouteContainerSettings) => `${r.name}|${r.host}|${r.port}|${r.failoverUrls.map((u) => `${u.host}:${u.port}`).join(',')}`;
    const newR = next.routeContainers ?? [];
    for (const rc of [...this.routeContainers]) {
      const match = newR.find((n) => rkey(n) === rkey(rc.settings));
      if (match) {
        rc.setAutoLinks(match.autoLinks);
        continue;
      }
      notes.push(`route-container connector ${rc.settings.name} removed (draining)`);
      rc.onRetired = () => {
        const i = this.routeContainers.indexOf(rc);
        if (i >= 0) this.routeContainers.splice(i, 1);
      };
      rc.retireAll();
    }
    for (const n of newR) {
      if (this.routeContainers.some((rc) => !rc.retiring && rkey(rc.settings) === rkey(n))) continue;
      const rc = new RouteContainer(n, this, this.logger);
      this.routeContainers.push(rc);
      notes.push(`route-container connector ${n.name} added (${n.host}:${n.port})`);
      rc.start();
    }
    this.linkRouter.setRoutes(next.linkRoutes ?? []);
    this.addressTable.setRules(next.addresses);
    this.settings = { ...next, connectors: kept };
    return notes;
  }

  /** A `$management` request: answered on the requester's reply link on this connection. */
  private onManagementRequest(link: Link, d: InDelivery): void {
    const conn = link.conn;
    const ctx = conn.ctx as ConnCtx;
    try {
      const req = decodeRequest(d.payload);
      const replyKey = req.replyTo === null ? null : normalizeAddress(req.replyTo);
      const out = [...ctx.outLinks].find((l) => l.address === replyKey);
      if (out === undefined) throw new ManagementError('reply-to must name a receiving link of this connection (e.g. a dynamic source)', 400);
      const reply = encodeReply(req, answer(req, { entities: (t) => this.managementEntities(t) }));
      if (conn.canSend(out)) conn.send(out, reply, true, null);
      if (!d.settled) conn.updateIn(d, STATE.accepted, true);
    } catch (e) {
      if (!(e instanceof ManagementError) && !(e instanceof DecodeError)) throw e;
      if (!d.settled) conn.updateIn(d, encodeRejected({ condition: 'amqp:invalid-field', description: `management: ${(e as Error).message}` }), true);
    }
    if (link.credit < 50) conn.setCredit(link, 100);
    this.touch(conn);
  }

  /** The router's entities as management shows them (qdrouterd attribute names). */
  managementEntities(type: string): EntityRecord[] | null {
    const s = this.settings;
    switch (type) {
      case ENTITY_TYPES.router:
        return [{ name: s.id, identity: s.id, id: s.id, mode: s.mode, linkRouteCount: (s.linkRoutes ?? []).length, autoLinkCount: this.routeContainers.reduce((n, r) => n + r.autoLinks.length, 0) }];
      case ENTITY_TYPES.connector:
        return [
          ...(s.connectors ?? []).map((c) => ({ name: c.name, identity: c.name, host: c.host, port: String(c.port), role: 'inter-router', cost: c.cost, connectionStatus: this.connectorSockets.has(c) ? 'SUCCESS' : 'CONNECTING' })),
          ...this.routeContainers.map((rc) => {
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
        return this.routeContainers.flatMap((rc) => rc.autoLinks.map((a) => ({
          name: a.settings.name, identity: a.settings.name, address: a.settings.address, direction: a.settings.direction, phase: a.settings.phase,
          connection: rc.settings.name, externalAddress: a.settings.externalAddress ?? null, operStatus: a.state, lastError: a.lastError,
        })));
      case ENTITY_TYPES.linkRoute:
        return (s.linkRoutes ?? []).map((l) => ({
          name: l.name, identity: l.name, prefix: l.prefix ?? null, pattern: l.pattern ?? null, direction: l.direction, connection: l.connection,
          operStatus: this.routeContainers.some((rc) => rc.settings.name === l.connection && rc.state === 'active') ? 'active' : 'inactive',
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

  /** Connectors' and auto-links' states (management, logs). */
  routeContainerStatus(): ReturnType<RouteContainer['status']>[] {
    return this.routeContainers.map((rc) => rc.status());
  }

  /** A message from another router: routed on by its x-opt-qd.to (or properties.to). */
  private deliverFromMesh(link: Link, d: InDelivery): void {
    let cl = link.ctx as CoreLink | null;
    if (cl === null) {
      cl = this.core.onSenderAttached(null, DATA_LINK_CREDIT, false, link);
      link.ctx = cl;
    }
    this.core.onCreditConsumed(cl, link.credit);
    try {
      scanMessage(d.payload, 0, d.payload.length, d.scan, true);
    } catch {
      if (!d.settled) link.conn.updateIn(d, REJECT_DECODE, true);
      return;
    }
    // qdrouterd's loop guard: a message that has travelled farther than the mesh is wide is looping.
    const radius = this.interRouter?.mesh.routes.radius ?? 0;
    if (radius > 0 && d.scan.trace !== null && d.scan.trace.length > radius + 1) {
      if (!d.settled) link.conn.updateIn(d, STATE.released, true);
      return;
    }
    const to = d.scan.routerTo ?? d.scan.to;
    if (to === null) {
      if (!d.settled) link.conn.updateIn(d, d.scan.toInvalid ? REJECT_BAD_TO : REJECT_NO_TO, true);
      return;
    }
    const origin = d.scan.ingress ? d.scan.ingress.replace(/^0\//, '') : null;
    d.ctx = this.core.onDelivery(cl, d.settled, phaseKey(normalizeAddress(to), d.scan.phase), d, origin, d.scan.trace, d.scan.priority);
  }

  private accept(socket: net.Socket, l: ListenerSettings): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const now = Date.now();
    const conn = new Connection(
      {
        containerId: this.settings.id,
        maxFrameSize: l.maxFrameSize,
        channelMax: Math.max(0, l.maxSessions - 1),
        idleTimeoutMs: l.idleTimeoutSeconds * 1000,
        maxMessageSize: this.settings.maxMessageSize,
        handleMax: 65535,
        saslMechanisms: l.saslMechanisms,
        requireSasl: l.authenticatePeer,
        checkPlain: (u, p) => this.checkPlain(u, p, l),
        offeredCapabilities: ['ANONYMOUS-RELAY'],
        properties: l.role === 'inter-router' ? InterRouter.openProperties(l.cost ?? 1, VERSION) : { product: 'amqp-mesh', version: VERSION },
        incomingWindow: 65536,
      },
      this,
      now,
    );
    const ctx = new ConnCtx(socket, l, this.nextConnId++);
    conn.ctx = ctx;
    if (l.role === 'inter-router' && this.interRouter) this.interRouter.register(conn, l.cost ?? 1, false);
    this.conns.add(conn);
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.logger.log('SERVER', 'info', `[C${ctx.id}] Accepted connection from ${peer} on ${l.name}`);
    this.wireSocket(conn, socket);
    socket.on('error', (e) => this.logger.log('SERVER', 'debug', `[C${ctx.id}] socket error: ${e.message}`));
    socket.on('close', () => {
      if (!conn.closed) {
        conn.onSocketClosed('socket-closed');
        this.touch(conn);
      }
      this.conns.delete(conn);
    });
  }

  private checkPlain(user: string, password: string, l: ListenerSettings): boolean {
    const users = this.settings.plainUsers;
    // Without authenticatePeer the identity is informational, as with ANONYMOUS.
    if (!l.authenticatePeer) return true;
    if (!users) return false;
    return Object.prototype.hasOwnProperty.call(users, user) && users[user] === password;
  }

  /** Marks a connection as having output; schedules one flush for the batch. */
  touch(conn: Connection): void {
    const ctx = conn.ctx as ConnCtx;
    if (!ctx.dirty) {
      ctx.dirty = true;
      this.dirty.push(conn);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    this.core.flush();
    if (this.touchAllPending) {
      this.touchAllPending = false;
      for (const c of this.conns) {
        const cx = c.ctx as ConnCtx;
        if (c.w.off > 0 && !cx.dirty) {
          cx.dirty = true;
          this.dirty.push(c);
        }
      }
    }
    const list = this.dirty;
    const now = Date.now();
    for (let i = 0; i < list.length; i++) {
      const conn = list[i];
      const ctx = conn.ctx as ConnCtx;
      ctx.dirty = false;
      const out = conn.takeOutput();
      if (out !== null && !ctx.socket.destroyed) {
        conn.noteOutput(now);
        if (!ctx.socket.write(out) || ctx.socket.writableLength > HIGH_WATER) conn.writeBlocked = true;
      }
      if (conn.closed && !ctx.socket.destroyed) {
        ctx.socket.end();
        // A peer that never reads must not keep the socket forever.
        setTimeout(() => ctx.socket.destroy(), 2000).unref();
      }
    }
    list.length = 0;
  }

  private tick(): void {
    const now = Date.now();
    for (const conn of this.conns) {
      conn.onTick(now);
      if (conn.closed || (conn.w.off > 0)) this.touch(conn);
    }
  }

  /** Closes every connection with a close frame and stops listening. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.meshTimer) clearInterval(this.meshTimer);
    for (const t of this.connectorTimers) clearTimeout(t);
    for (const rc of this.routeContainers) rc.stopReconnecting();
    for (const s of this.servers) s.close();
    for (const conn of this.conns) {
      conn.close({ condition: 'amqp:connection:forced', description: 'router shutting down' }, 'router-shutdown');
      this.touch(conn);
    }
    this.flush();
    const deadline = Date.now() + 3000;
    while (this.conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const conn of this.conns) (conn.ctx as ConnCtx).socket.destroy();
  }

  // ------------------------------------------------------------------ ConnectionHandler

  onOpen(conn: Connection): void {
    this.interRouter?.onOpen(conn);
    const ctx = conn.ctx as ConnCtx;
    ctx.routeContainer?.onOpen(conn);
    this.logger.log('SERVER', 'info', `[C${ctx.id}] Connection open: container-id ${conn.remoteOpen?.containerId}, user ${conn.user}`);
  }

  onLinkOpened(link: Link, a: AttachFrame): void {
    if (link.ctx instanceof RouteEnd) return this.linkRouter.onLinkOpened(link, a);
    const rc = (link.conn.ctx as ConnCtx).routeContainer;
    if (rc !== null && rc.onLinkOpened(link, a)) return;
    this.interRouter?.onLinkOpened(link);
  }

  // ------------------------------------------------------------------ RouteContainerHost

  newConnection(c: RouteContainerSettings, socket: net.Socket, host: string): Connection {
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
      },
      this,
      Date.now(),
    );
    const ctx = new ConnCtx(socket, listener, this.nextConnId++);
    ctx.routeContainer = this.routeContainers.find((r) => r.settings === c) ?? null;
    conn.ctx = ctx;
    this.conns.add(conn);
    this.wireSocket(conn, socket);
    return conn;
  }

  /** Bytes in go to the engine; a drained socket lets blocked links send again. */
  private wireSocket(conn: Connection, socket: net.Socket): void {
    const ctx = conn.ctx as ConnCtx;
    socket.on('data', (chunk: Buffer) => {
      conn.onBytes(chunk, Date.now());
      this.touch(conn);
    });
    socket.on('drain', () => {
      if (!conn.writeBlocked) return;
      conn.writeBlocked = false;
      for (const link of ctx.outLinks) if (link.ctx) this.core.onWritable(link.ctx as CoreLink);
      this.linkRouter.onWritable(conn);
      this.touch(conn);
    });
  }

  containerState(name: string, active: boolean, containerId: string | null): void {
    this.linkRouter.onContainer(name, active, containerId);
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
      link.ctx = this.core.onSenderAttached(key, capacity, false, link);
    }
    this.touch(link.conn);
  }

  connectionLost(conn: Connection): void {
    if (!conn.closed) conn.onSocketClosed('socket-closed');
    this.conns.delete(conn);
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
    if (ctx.routeContainer === null && this.linkRouter.onAttach(link, a, false)) return;
    const capacity = ctx.listener.linkCapacity;
    if (link.isSender) {
      // The peer receives: a consumer.
      const src = a.source;
      if (src === null) return this.refuse(link, a, { condition: 'amqp:invalid-field', description: 'a receiving link needs a source' });
      let key: string;
      let replySource: Parameters<Link['accept']>[0]['source'];
      if (src.dynamic) {
        const addr = `amqp:/_topo/0/${this.settings.id}/temp.${randomBytes(9).toString('base64url')}`;
        key = normalizeAddress(addr);
        replySource = { type: 'source', address: addr, dynamic: true };
      } else {
        if (src.address === null) return this.refuse(link, a, { condition: 'amqp:invalid-field', description: 'a receiving link needs a source address or a dynamic source' });
        const problem = checkAddress(src.address, this.settings.maxAddressLength);
        if (problem) return this.refuse(link, a, { condition: 'amqp:invalid-field', description: `invalid source address: ${problem}` });
        key = normalizeAddress(src.address);
        // A waypoint's consumers receive what comes back from the broker (the egress phase).
        key = phaseKey(key, this.addressTable.computePhases(key).egress);
      }
      link.address = key;
      link.accept({ source: replySource }, a);
      link.ctx = this.core.onConsumerAttached(key, capacity, a.sndSettleMode === 1, link);
      ctx.outLinks.add(link);
      this.logger.log('ROUTER', 'debug', `[C${ctx.id}] consumer link ${link.name} on ${key}`);
      return;
    }
    // The peer sends.
    const tgt = a.target;
    if (tgt !== null && tgt.type === 'coordinator') {
      return this.refuse(link, a, { condition: 'amqp:not-implemented', description: 'transactions are not supported by the router; attach to a broker' });
    }
    let key: string | null = null;
    if (tgt !== null && tgt.dynamic) {
      return this.refuse(link, a, { condition: 'amqp:not-implemented', description: 'dynamic targets are not supported' });
    }
    if (tgt !== null && tgt.address !== null && normalizeAddress(tgt.address) === '$management') {
      link.address = '$management';
      link.accept({}, a);
      link.ctx = MANAGEMENT;
      link.conn.setCredit(link, 100);
      return;
    }
    if (tgt !== null && tgt.address !== null) {
      const problem = checkAddress(tgt.address, this.settings.maxAddressLength);
      if (problem) return this.refuse(link, a, { condition: 'amqp:invalid-field', description: `invalid target address: ${problem}` });
      key = normalizeAddress(tgt.address);
      key = phaseKey(key, this.addressTable.computePhases(key).ingress);
    }
    link.address = key;
    link.accept({}, a);
    link.ctx = this.core.onSenderAttached(key, capacity, a.rcvSettleMode === 1, link);
    this.logger.log('ROUTER', 'debug', `[C${ctx.id}] sender link ${link.name} on ${key ?? '(anonymous)'}`);
  }

  private refuse(link: Link, a: AttachFrame, error: AmqpError): void {
    const ctx = link.conn.ctx as ConnCtx;
    this.logger.log('ROUTER', 'warning', `[C${ctx.id}] refused link ${link.name}: ${error.condition}: ${error.description}`);
    link.refuse(error, a);
  }

  onFlow(link: Link, drain: boolean): void {
    if (link.ctx instanceof RouteEnd) return this.linkRouter.onFlow(link);
    const cl = link.ctx as CoreLink | null;
    if (cl) this.core.onConsumerFlow(cl, drain);
  }

  onSenderFlow(link: Link, deliveryCount: number | null, credit: number | null, drain: boolean): void {
    if (link.ctx instanceof RouteEnd) return this.linkRouter.onSenderFlow(link, deliveryCount, credit, drain);
    // After a drain the link's credit is what the sender says: the core tops it up from there.
    if (drain && link.ctx !== null && link.ctx !== MANAGEMENT) {
      this.core.onCreditConsumed(link.ctx as CoreLink, link.credit);
      this.touch(link.conn);
    }
    const rc = (link.conn.ctx as ConnCtx).routeContainer;
    if (rc !== null && rc.draining) rc.onSenderFlow(link, drain, credit);
  }

  onDelivery(link: Link, d: InDelivery): void {
    if (link.ctx instanceof RouteEnd) return this.linkRouter.onDelivery(link, d);
    if (link.ctx === MANAGEMENT) return this.onManagementRequest(link, d);
    if (this.interRouter?.onDelivery(link, d)) return;
    const cl = link.ctx as CoreLink | null;
    if (cl === null) return;
    const rcx = (link.conn.ctx as ConnCtx).routeContainer;
    if (rcx !== null && rcx.draining) rcx.onDelivery(link);
    this.core.onCreditConsumed(cl, link.credit);
    const scan = d.scan;
    const ctx = link.conn.ctx as ConnCtx;
    const keepInbound = ctx.listener.stripAnnotations === 'out' || ctx.listener.stripAnnotations === 'no';
    try {
      scanMessage(d.payload, 0, d.payload.length, scan, keepInbound);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.logger.log('ROUTER', 'warning', `[C${ctx.id}] rejected a malformed message on ${link.name}: ${e.message}`);
      if (!d.settled) link.conn.updateIn(d, REJECT_DECODE, true);
      return;
    }
    let to: string | null = null;
    if (cl.address === null) {
      if (scan.to === null) {
        if (!d.settled) link.conn.updateIn(d, scan.toInvalid ? REJECT_BAD_TO : REJECT_NO_TO, true);
        return;
      }
      to = normalizeAddress(scan.to);
      to = phaseKey(to, this.addressTable.computePhases(to).ingress);
    }
    d.ctx = this.core.onDelivery(cl, d.settled, to, d, null, null, d.scan.priority);
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
    // rcv-settle-mode second: the sender settled after our outcome; a routed link passes it on.
    if (d.link.ctx instanceof RouteEnd) this.linkRouter.onInSettled(d);
  }

  onLinkGone(link: Link, error: AmqpError | null, reason: LinkGoneReason): void {
    if (link.ctx instanceof RouteEnd) return this.linkRouter.onLinkGone(link, error, reason);
    if (link.ctx === MANAGEMENT) return;
    const cl = link.ctx as CoreLink | null;
    const ctx = link.conn.ctx as ConnCtx;
    if (error) this.logger.log('ROUTER', 'info', `[C${ctx.id}] link ${link.name} gone (${reason}): ${error.condition} ${error.description ?? ''}`);
    ctx.routeContainer?.onLinkGone(link, error ? `${error.condition}${error.description ? `: ${error.description}` : ''}` : null);
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
    this.interRouter?.onClosed(conn);
    const ctx = conn.ctx as ConnCtx;
    const lvl = reason === 'client-closed' || reason === 'router-shutdown' ? 'info' : 'warning';
    this.logger.log('SERVER', lvl, `[C${ctx.id}] Connection closed (${reason})${error ? `: ${error.condition} ${error.description ?? ''}` : ''}`);
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
    this.touchAllPending = true;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  // ------------------------------------------------------------------ CoreEffects

  grantCredit(cl: CoreLink, credit: number): void {
    const link = cl.io as Link;
    link.conn.setCredit(link, credit);
    this.touch(link.conn);
  }

  canSend(cl: CoreLink): boolean {
    const link = cl.io as Link;
    return link.conn.canSend(link);
  }

  transmit(copy: Copy, settled: boolean): unknown {
    const link = copy.out.io as Link;
    const conn = link.conn;
    const d = copy.delivery.io as InDelivery;
    const strip = (conn.ctx as ConnCtx).listener.stripAnnotations;
    const annotate = strip === 'in' || strip === 'no';
    let payload: Buffer;
    if (this.interRouter !== null && this.interRouter.isInterRouter(conn)) {
      if (d.forMesh === null) {
        const key = copy.delivery.address?.key ?? null;
        if (key === null) d.forMesh = this.annotate(d, d.scan.to, 0);
        else if (key.charCodeAt(0) !== 1) d.forMesh = this.annotate(d, key, 0);
        else {
          // A waypoint phase travels as x-opt-qd.phase (rare: no allocation on the common path above).
          const k = parsePhaseKey(key);
          d.forMesh = this.annotate(d, k.address, k.phase);
        }
      }
      payload = d.forMesh;
    } else if (annotate) {
      if (d.annotated === null) d.annotated = this.annotate(d);
      payload = d.annotated;
    } else if (d.scan.hasRouterKeys) {
      if (d.stripped === null) d.stripped = this.strip(d);
      payload = d.stripped;
    } else payload = d.payload;
    const od = conn.send(link, payload, settled, copy);
    this.touch(conn);
    return od;
  }

  private annotate(d: InDelivery, to: string | null = null, phase = 0): Buffer {
    const w = this.annotateWriter;
    w.reset();
    const me = `0/${this.settings.id}`;
    const trace = d.scan.trace ? [...d.scan.trace, me] : [me];
    writeMessageWithAnnotations(w, d.payload, 0, d.payload.length, d.scan, d.scan.ingress ?? me, trace, to, phase);
    return w.take();
  }

  private strip(d: InDelivery): Buffer {
    const w = this.annotateWriter;
    w.reset();
    writeMessageWithAnnotations(w, d.payload, 0, d.payload.length, d.scan, null, null);
    return w.take();
  }

  settleIn(del: Delivery, state: Buffer | null, made: Made | 0): void {
    const d = del.io as InDelivery;
    const link = d.link;
    if (!link.attached || d.settled) return;
    const s = made === Made.Released ? STATE.released : made === Made.ModifiedFailed ? STATE.modifiedFailed : state;
    link.conn.updateIn(d, s, !(link.ctx as CoreLink).settleSecond);
    this.touch(link.conn);
  }

  settleOut(copy: Copy): void {
    const od = copy.io as OutDelivery;
    if (!od.link.attached) return;
    od.link.conn.updateOut(od, null, true);
    this.touch(od.link.conn);
  }

  addressPresence(key: string, distribution: Distribution, present: boolean): void {
    // Dynamic (router-local) addresses are not advertised: they are reached through _topo.
    if (!this.interRouter || key.startsWith('_topo/')) return;
    const k = parsePhaseKey(key);
    this.interRouter.mesh.onLocalAddress(mobileKey(k.address, k.phase), hintForDistribution(distribution), present);
  }

  drainComplete(cl: CoreLink): void {
    const link = cl.io as Link;
    link.conn.drainComplete(link);
    this.touch(link.conn);
  }
}
