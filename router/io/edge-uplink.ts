/**
 * An edge router's uplink (qdrouterd 1.19's edge_router module, router mode `edge`): the edge
 * dials every `connector` of role `edge`; the first that opens is the active edge connection
 * (another takes over when it goes). On it the edge attaches (names in
 * router/protocol/edge-protocol.ts):
 * - the uplink, an anonymous sending link: what no consumer on the edge takes, and other routers'
 *   `_topo`/`_edge` addresses, go up it;
 * - the downlink, which brings `_edge/<id>/...` deliveries down;
 * - the address-tracking link, on which the interior says which addresses have destinations
 *   beyond this edge;
 * - a proxy consumer (receiving link) per address with consumers on the edge, so the interior
 *   routes that address's messages here;
 * - a proxy sender (sending link) per address with senders on the edge, bound in the core as a
 *   consumer only while the interior reports destinations for it;
 * - a management client (a sender to `$management`, a dynamic receiver for replies): each link
 *   route served on the edge (its container connected here) becomes a connection-scoped link route
 *   on the interior (qdrouterd's link route proxy, `<id>/proxyLinkRoute/<key>`), so the mesh
 *   routes its attaches down to the edge.
 *
 * The routing core says which addresses have local consumers and senders
 * (`CoreEffects.edgePresence`); this object owns the links and their life, nothing else.
 */
import type { Connection, Link, InDelivery, Session } from '../../amqp/engine/connection';
import { EDGE_ADDRESS, type CoreLink, type RouterCore } from '../core/core';
import { parsePhaseKey, phaseKey } from '../core/addresses';
import { parseMobileKey } from '../protocol/control';
import {
  ADDRESS_LOOKUP_ADDRESS, EDGE_DOWNLINK_CAPABILITY, EDGE_TRACKING_ADDRESS, EDGE_TRACKING_CREDIT, EdgeProtocolError, decodeEdgeTracking,
  decodeLookupReply, encodeLookupRequest, type LookupReply,
} from '../protocol/edge-protocol';
import { STATE, encodeRejected, type AttachFrame } from '../../amqp/performatives';
import { ManagementError, decodeReply, encodeRequest } from '../../amqp/management';
import { DecodeError } from '../../amqp/codec';
import { routeOfKey } from './link-route';
import { Logger } from '../../lib/log';

/** What the router server provides. */
export interface EdgeHost {
  /** The connection has output. */
  touch(conn: Connection): void;
  /** A sending link of ours opened: the server tells the core when it may send again. */
  outLinkOpened(link: Link): void;
}

/** The marker a tracking link carries as its `ctx` (the server hands its deliveries here). */
export const EDGE_TRACKING_LINK = Symbol('edge-tracking');
/** The marker the management client's two links carry as their `ctx`. */
export const EDGE_MGMT_LINK = Symbol('edge-management');

/** qdrouterd's management type of a connection-scoped link route. */
const CONNECTION_LINK_ROUTE = 'org.apache.qpid.dispatch.router.connection.linkRoute';

/** Per-link capacity of the edge's links (qdrouterd's default linkCapacity). */
const EDGE_LINK_CAPACITY = 250;

/** Keys an edge router proxies: mobile addresses (not this or other routers' own, not `$management`). */
export function isProxiedKey(key: string): boolean {
  if (key === EDGE_ADDRESS || key === '$management') return false;
  if (key.startsWith('_topo/') || key.startsWith('_local/') || key.startsWith('_edge/')) return false;
  // Waypoint phases stay on the edge (qdrouterd proxies them with waypoint capabilities; not yet here).
  return key.charCodeAt(0) !== 1;
}

/** What a link-route lookup says to do with an attach (see {@link EdgeUplink.lookup}). */
export type LookupOutcome = 'route' | 'no-route' | 'local';

/** How long an edge waits for a lookup's answer before serving the attach locally (qdrouterd's 3 s). */
const LOOKUP_TIMEOUT_MS = 3000;

/** The edge router's uplink to the interior. */
export class EdgeUplink {
  /** Edge connections open, in the order they opened; the first is the active one. */
  private readonly opened: Connection[] = [];
  private active: Connection | null = null;
  private session: Session | null = null;
  private readonly consumerKeys = new Set<string>();
  private readonly senderKeys = new Set<string>();
  /** Proxy consumers (receiving) and proxy senders (sending) on the active connection, by key. */
  private readonly inLinks = new Map<string, Link>();
  private readonly outLinks = new Map<string, Link>();
  /** Keys the interior says have destinations beyond this edge. */
  private readonly destinations = new Set<string>();
  private uplink: Link | null = null;
  private downlink: Link | null = null;
  private tracking: Link | null = null;
  /** Link routes served on this edge (their mesh keys), and the proxies asked of the interior. */
  private readonly routeKeys = new Set<string>();
  private readonly proxies = new Map<string, 'creating' | 'created'>();
  private mgmtOut: Link | null = null;
  private mgmtIn: Link | null = null;
  /** The interior's address for our management replies (the dynamic source it gave). */
  private replyTo: string | null = null;
  /** Requests waiting for the reply address or credit; answers expected by correlation-id. */
  private readonly outbox: { op: 'CREATE' | 'DELETE'; name: string; correlationId: string; body: Record<string, unknown> }[] = [];
  private readonly pending = new Map<string, { key: string; op: 'CREATE' | 'DELETE' }>();
  private nextCorrelation = 1;
  /** Link-route lookups (qdrouterd's address_lookup_client): the sender, what waits, what is asked. */
  private lookupOut: Link | null = null;
  private readonly lookupOutbox: { correlationId: string; address: string; receiver: boolean }[] = [];
  private readonly lookups = new Map<string, { done: (r: LookupOutcome) => void; timer: NodeJS.Timeout }>();

  constructor(private readonly id: string, private readonly core: RouterCore, private readonly host: EdgeHost, private readonly logger: Logger) {}

  /** Is `conn` one of this edge's connections to an interior router? */
  isEdgeConnection(conn: Connection): boolean {
    return this.opened.includes(conn);
  }

  /** The active edge connection, if any (management, tests). */
  get activeConnection(): Connection | null {
    return this.active;
  }

  /** The core: `key` gained its first (or lost its last) local consumer or sender. */
  onPresence(key: string, consumer: boolean, present: boolean): void {
    if (!isProxiedKey(key)) return;
    const keys = consumer ? this.consumerKeys : this.senderKeys;
    if (present) keys.add(key);
    else keys.delete(key);
    const conn = this.active;
    if (conn === null) return;
    if (consumer) {
      if (present) this.attachInLink(conn, key);
      else this.detach(this.inLinks, key);
    } else if (present) this.attachOutLink(conn, key);
    else this.detach(this.outLinks, key);
    this.host.touch(conn);
  }

  /** An edge connection opened. */
  onOpened(conn: Connection): void {
    this.opened.push(conn);
    if (this.active === null) this.activate(conn);
  }

  /** An edge connection closed: its links are gone (the server told the core); another takes over. */
  onClosed(conn: Connection): void {
    const i = this.opened.indexOf(conn);
    if (i < 0) return;
    this.opened.splice(i, 1);
    if (conn !== this.active) return;
    this.active = null;
    this.session = null;
    this.inLinks.clear();
    this.outLinks.clear();
    this.destinations.clear();
    this.uplink = this.downlink = this.tracking = this.mgmtOut = this.mgmtIn = this.lookupOut = null;
    this.replyTo = null;
    this.outbox.length = 0;
    this.pending.clear();
    this.failLookups();
    // The interior drops connection-scoped routes with their connection: made again on the next.
    this.proxies.clear();
    this.core.setEdgeUplink(null);
    this.logger.log('ROUTER', 'notice', `edge: lost the active edge connection${this.opened.length > 0 ? '; switching to the next' : ''}`);
    if (this.opened.length > 0) this.activate(this.opened[0]);
  }

  private activate(conn: Connection): void {
    this.active = conn;
    this.session = conn.beginSession();
    this.uplink = conn.attach(this.session, `${this.id}.edge.uplink`, true, { type: 'source', address: null }, { type: 'target', address: null });
    this.downlink = conn.attach(this.session, `${this.id}.edge.downlink`, false,
      { type: 'source', address: this.id, capabilities: [EDGE_DOWNLINK_CAPABILITY] }, { type: 'target', address: null, capabilities: [EDGE_DOWNLINK_CAPABILITY] });
    this.tracking = conn.attach(this.session, `${this.id}.edge.tracking`, false, { type: 'source', address: EDGE_TRACKING_ADDRESS }, { type: 'target', address: null });
    this.mgmtOut = conn.attach(this.session, `${this.id}.edge.mgmt`, true, { type: 'source', address: null }, { type: 'target', address: '$management' });
    this.mgmtIn = conn.attach(this.session, `${this.id}.edge.mgmt-replies`, false, { type: 'source', address: null, dynamic: true }, { type: 'target', address: null });
    for (const l of [this.uplink, this.downlink, this.tracking]) l.ctx = null;
    this.lookupOut = conn.attach(this.session, `${this.id}.edge.addr-lookup`, true, { type: 'source', address: null }, { type: 'target', address: ADDRESS_LOOKUP_ADDRESS });
    this.mgmtOut.ctx = this.mgmtIn.ctx = this.lookupOut.ctx = EDGE_MGMT_LINK;
    for (const key of this.consumerKeys) this.attachInLink(conn, key);
    for (const key of this.senderKeys) this.attachOutLink(conn, key);
    this.logger.log('ROUTER', 'notice', `edge: active edge connection to container ${conn.remoteOpen?.containerId ?? '?'}`);
    this.host.touch(conn);
  }

  private attachInLink(conn: Connection, key: string): void {
    if (this.inLinks.has(key) || this.session === null) return;
    const link = conn.attach(this.session, `${this.id}.edge.in.${key}`, false, { type: 'source', address: parsePhaseKey(key).address }, { type: 'target', address: null });
    link.ctx = null;
    this.inLinks.set(key, link);
  }

  private attachOutLink(conn: Connection, key: string): void {
    if (this.outLinks.has(key) || this.session === null) return;
    const link = conn.attach(this.session, `${this.id}.edge.out.${key}`, true, { type: 'source', address: null }, { type: 'target', address: parsePhaseKey(key).address });
    link.ctx = null;
    this.outLinks.set(key, link);
  }

  private detach(map: Map<string, Link>, key: string): void {
    const link = map.get(key);
    if (link === undefined) return;
    map.delete(key);
    const cl = link.ctx as CoreLink | null;
    // A proxy sender stops taking deliveries at once; the server hears of the link going from the engine.
    if (cl !== null && link.isSender) this.core.bindEdgeProxy(cl, key, false);
    link.conn.detachLink(link, null);
  }

  /** The link router: a route became served on this edge (its container is here), or stopped. */
  onRoutePresence(key: string, present: boolean): void {
    if (present) this.routeKeys.add(key);
    else this.routeKeys.delete(key);
    this.syncProxies();
  }

  /** Asks the interior for the proxies it lacks and to drop those no longer served. */
  private syncProxies(): void {
    if (this.active === null) return;
    for (const key of this.routeKeys) {
      if (this.proxies.has(key)) continue;
      this.proxies.set(key, 'creating');
      const r = routeOfKey(key);
      // qdrouterd's form: a prefix becomes the pattern `<prefix>/#`.
      const pattern = r.prefix !== undefined ? `${r.prefix}/#` : (r.pattern as string);
      this.request(key, 'CREATE', { type: CONNECTION_LINK_ROUTE, pattern, direction: r.direction, name: this.proxyName(key) });
    }
    for (const [key, st] of this.proxies) {
      if (this.routeKeys.has(key) || st !== 'created') continue;
      this.proxies.delete(key);
      this.request(key, 'DELETE', {});
    }
    this.sendRequests();
  }

  private proxyName(key: string): string {
    return `${this.id}/proxyLinkRoute/${key}`;
  }

  private request(key: string, op: 'CREATE' | 'DELETE', body: Record<string, unknown>): void {
    const correlationId = `${this.id}.lrp.${this.nextCorrelation++}`;
    this.pending.set(correlationId, { key, op });
    // Encoded when it goes: the reply address may not be known yet.
    this.outbox.push({ op, name: this.proxyName(key), correlationId, body });
  }

  /** Sends what waits, once the reply address is known and the interior gives credit. */
  private sendRequests(): void {
    const out = this.mgmtOut;
    if (out === null || !out.attached || this.replyTo === null) return;
    let sent = 0;
    while (sent < this.outbox.length && out.conn.canSend(out)) {
      const r = this.outbox[sent++];
      out.conn.send(out, encodeRequest({ operation: r.op, type: CONNECTION_LINK_ROUTE, name: r.name, replyTo: this.replyTo, correlationId: r.correlationId, body: r.body }), true, null);
    }
    if (sent === 0) return;
    this.outbox.splice(0, sent);
    this.host.touch(out.conn);
  }

  /** The interior gave the management (or lookup) sender credit. */
  onManagementFlow(link: Link): void {
    if (link === this.mgmtOut) this.sendRequests();
    if (link === this.lookupOut) this.sendLookups();
  }

  /**
   * Asks the interior whether `address` is link-routed (for a link whose edge end receives:
   * `receiver`), as a qdrouterd edge does before it serves an attach that no local route takes.
   * `done` hears `route` (forward the attach up), `no-route` (a route without destinations),
   * or `local` (not a route, no answer within 3 s, or the uplink went). False: cannot ask now.
   */
  lookup(address: string, receiver: boolean, done: (r: LookupOutcome) => void): boolean {
    if (this.active === null || this.lookupOut === null) return false;
    const correlationId = `${this.id}.lookup.${this.nextCorrelation++}`;
    const timer = setTimeout(() => {
      if (this.lookups.delete(correlationId)) done('local');
    }, LOOKUP_TIMEOUT_MS);
    timer.unref();
    this.lookups.set(correlationId, { done, timer });
    this.lookupOutbox.push({ correlationId, address, receiver });
    this.sendLookups();
    return true;
  }

  private sendLookups(): void {
    const out = this.lookupOut;
    if (out === null || !out.attached || this.replyTo === null) return;
    let sent = 0;
    while (sent < this.lookupOutbox.length && out.conn.canSend(out)) {
      const r = this.lookupOutbox[sent++];
      if (!this.lookups.has(r.correlationId)) continue;
      out.conn.send(out, encodeLookupRequest(r.address, r.receiver, this.replyTo, r.correlationId), true, null);
    }
    if (sent === 0) return;
    this.lookupOutbox.splice(0, sent);
    this.host.touch(out.conn);
  }

  /** Every lookup in flight is answered `local` (the uplink went). */
  private failLookups(): void {
    const waiting = [...this.lookups.values()];
    this.lookups.clear();
    this.lookupOutbox.length = 0;
    for (const l of waiting) {
      clearTimeout(l.timer);
      l.done('local');
    }
  }

  /** A lookup's answer, when `d` is one. */
  private onLookupReply(d: InDelivery): boolean {
    let reply: LookupReply;
    try {
      reply = decodeLookupReply(d.payload);
    } catch (e) {
      if (e instanceof EdgeProtocolError) return false;
      throw e;
    }
    const l = this.lookups.get(String(reply.correlationId));
    if (l === undefined) return false;
    this.lookups.delete(String(reply.correlationId));
    clearTimeout(l.timer);
    l.done(reply.status !== 0 || !reply.isLinkRoute ? 'local' : reply.hasDestinations ? 'route' : 'no-route');
    return true;
  }

  /** A reply from the interior's agent: a proxy made (or refused), or dropped. */
  onManagementReply(link: Link, d: InDelivery): void {
    const conn = link.conn;
    if (this.onLookupReply(d)) {
      if (!d.settled) conn.updateIn(d, STATE.accepted, true);
      conn.setCredit(link, 10);
      this.host.touch(conn);
      return;
    }
    try {
      const reply = decodeReply(d.payload);
      const req = this.pending.get(String(reply.correlationId));
      if (req !== undefined) {
        this.pending.delete(String(reply.correlationId));
        const ok = reply.statusCode >= 200 && reply.statusCode < 300;
        if (req.op === 'CREATE') {
          if (ok && this.proxies.get(req.key) === 'creating') this.proxies.set(req.key, 'created');
          else if (!ok) this.proxies.delete(req.key);
          // Withdrawn while it was being made: drop it now.
          if (ok && !this.routeKeys.has(req.key)) this.syncProxies();
        }
        this.logger.log('ROUTER', ok ? 'info' : 'warning',
          `edge: link route proxy ${req.op} ${this.proxyName(req.key)}: ${reply.statusCode} ${reply.statusDescription}`);
      }
    } catch (e) {
      if (!(e instanceof ManagementError) && !(e instanceof DecodeError)) throw e;
      this.logger.log('ROUTER', 'warning', `edge: unreadable management reply: ${e.message}`);
    }
    if (!d.settled) conn.updateIn(d, STATE.accepted, true);
    conn.setCredit(link, 10);
    this.host.touch(conn);
  }

  /** The interior answered one of our attaches; returns false for links that are not the edge's. */
  onLinkOpened(link: Link, a: AttachFrame): boolean {
    const conn = link.conn;
    if (conn !== this.active) return false;
    if (link === this.mgmtIn) {
      this.replyTo = a.source?.address ?? null;
      conn.setCredit(link, 10);
      this.syncProxies();
      this.sendLookups();
      return true;
    }
    if (link === this.mgmtOut) {
      this.sendRequests();
      return true;
    }
    if (link === this.lookupOut) {
      this.sendLookups();
      return true;
    }
    if (link === this.uplink) {
      const cl = this.core.onEdgeProxyAttached(EDGE_LINK_CAPACITY, link, conn);
      link.ctx = cl;
      this.host.outLinkOpened(link);
      this.core.setEdgeUplink(cl);
      this.core.onConsumerFlow(cl, link.drain);
      return true;
    }
    if (link === this.downlink) {
      link.ctx = this.core.onSenderAttached(null, EDGE_LINK_CAPACITY, link, conn);
      return true;
    }
    if (link === this.tracking) {
      link.ctx = EDGE_TRACKING_LINK;
      conn.setCredit(link, EDGE_TRACKING_CREDIT);
      this.host.touch(conn);
      return true;
    }
    for (const [key, l] of this.inLinks) {
      if (l !== link) continue;
      link.ctx = this.core.onSenderAttached(key, EDGE_LINK_CAPACITY, link, conn);
      return true;
    }
    for (const [key, l] of this.outLinks) {
      if (l !== link) continue;
      const cl = this.core.onEdgeProxyAttached(EDGE_LINK_CAPACITY, link, conn);
      link.ctx = cl;
      this.host.outLinkOpened(link);
      if (this.destinations.has(key)) this.core.bindEdgeProxy(cl, key, true);
      this.core.onConsumerFlow(cl, link.drain);
      return true;
    }
    return false;
  }

  /** An address-tracking message from the interior: bind or unbind that address's proxy sender. */
  onTracking(link: Link, d: InDelivery): void {
    const conn = link.conn;
    let outcome: Buffer = STATE.accepted;
    try {
      const u = decodeEdgeTracking(d.payload);
      const m = parseMobileKey(u.key);
      if (m !== null && m.cls === 'M' && m.phase !== null && m.phase <= 9) {
        const key = phaseKey(m.address, m.phase);
        if (u.present) this.destinations.add(key);
        else this.destinations.delete(key);
        const out = this.outLinks.get(key);
        const cl = out?.ctx as CoreLink | null | undefined;
        if (cl) this.core.bindEdgeProxy(cl, key, u.present);
      }
    } catch (e) {
      if (!(e instanceof EdgeProtocolError)) throw e;
      this.logger.log('ROUTER', 'error', `edge: ${e.message}; rejected`);
      outcome = encodeRejected({ condition: 'amqp:decode-error', description: e.message });
    }
    if (!d.settled) conn.updateIn(d, outcome, true);
    conn.setCredit(link, EDGE_TRACKING_CREDIT);
    this.host.touch(conn);
  }

  /** One of the edge connection's links went (detached by the interior, or with its connection). */
  onLinkGone(link: Link): void {
    if (link === this.uplink) {
      this.uplink = null;
      this.core.setEdgeUplink(null);
    } else if (link === this.downlink) this.downlink = null;
    else if (link === this.tracking) this.tracking = null;
    else if (link === this.mgmtOut) this.mgmtOut = null;
    else if (link === this.lookupOut) {
      this.lookupOut = null;
      this.failLookups();
    }
    else if (link === this.mgmtIn) {
      this.mgmtIn = null;
      this.replyTo = null;
    }
    for (const map of [this.inLinks, this.outLinks]) {
      for (const [key, l] of map) if (l === link) map.delete(key);
    }
  }
}
