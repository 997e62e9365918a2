/**
 * Link routing (qdrouterd's `linkRoute`): a client's attach for a link-routed address is not
 * terminated by the router but carried, hop by hop, to the router that holds the broker's
 * route-container connection, and on to the broker. Each hop pairs the link it was given
 * (upstream) with one it opens (downstream, same name and termini byte for byte); from then on
 * transfers, credit, drain, dispositions, settlement and detach are relayed between the two.
 *
 * Directions as qdrouterd: `in` routes client senders, `out` client receivers. The router whose
 * route-container connection is up advertises its routes to the mesh as mobile keys of class
 * C (in) / D (out) for prefixes and E / F for patterns; other routers send matching attaches
 * toward it. No route: the attach is refused with qd:no-route-to-dest. The broker connection
 * lost: routed links are detached with qd:routed-link-lost (clients re-attach and reach the
 * broker the connector fails over to).
 */
import { Connection, InDelivery, Link, OutDelivery, Session, type LinkGoneReason } from '../../amqp/engine/connection';
import { encodeRejected, withDynamicNodeAddress, withTerminusAddress, type AmqpError, type AttachFrame } from '../../amqp/performatives';
import { TREATMENT } from '../protocol/control';
import { matchesAddressRule } from '../core/addresses';
import { normalizeAddress } from '../../amqp/address';
import type { InterRouter } from './inter-router';
import type { RouteContainer } from './route-container';
import { Logger } from '../../lib/log';

/** One `linkRoute` entity bound to a route-container connector. */
export interface LinkRouteSettings {
  name: string;
  prefix?: string;
  pattern?: string;
  direction: 'in' | 'out';
  /** The route-container connector's name, or... */
  connection?: string;
  /** ...the container-id its peer (the broker) announces in its open frame. */
  containerId?: string;
}

/**
 * A connection-scoped link route (qdrouterd's `router.connection.linkRoute`): made through
 * management over the connection it routes to, gone with that connection.
 */
export interface ConnectionLinkRoute {
  name: string;
  identity: string;
  pattern: string;
  direction: 'in' | 'out';
}

/** What the link router needs from the router process. */
export interface LinkRouteHost {
  touch(conn: Connection): void;
  interRouter: InterRouter | null;
  routeContainer(name: string): RouteContainer | undefined;
  /** A route (its mesh key) became served here, or stopped being (an edge router proxies it to its interior). */
  routePresence?(key: string, present: boolean): void;
}

/** qdrouterd's refusal of an attach no route takes. */
export const NO_ROUTE: AmqpError = { condition: 'qd:no-route-to-dest', description: 'No route to the destination node' };
const ROUTED_LINK_LOST: AmqpError = { condition: 'qd:routed-link-lost', description: 'Connectivity to the peer container was lost' };

/** True when `address` is under the route's prefix (token boundaries) or matches its pattern. */
export const matchesRoute = matchesAddressRule;

/**
 * The mesh key a route is advertised under (qdrouterd's classes). A prefix's trailing `.` or `/`
 * does not count (qdrouterd hashes `org.apache.` as `org.apache`).
 */
export function linkRouteKey(route: { prefix?: string; pattern?: string; direction: 'in' | 'out' }): string {
  if (route.prefix !== undefined) return (route.direction === 'in' ? 'C' : 'D') + route.prefix.replace(/[./]+$/, '');
  return (route.direction === 'in' ? 'E' : 'F') + (route.pattern ?? '');
}

/** The route a mesh key ({@link linkRouteKey}) stands for. */
export function routeOfKey(key: string): { prefix?: string; pattern?: string; direction: 'in' | 'out' } {
  const cls = key[0];
  const rest = key.slice(1);
  if (cls === 'C' || cls === 'D') return { prefix: rest, direction: cls === 'C' ? 'in' : 'out' };
  return { pattern: rest, direction: cls === 'E' ? 'in' : 'out' };
}

/** AMQP 1.0 (2.8.7) bounds a delivery-tag at 32 bytes; a longer one is not relayed (qdrouterd's refusal). */
export const MAX_DELIVERY_TAG = 32;
const REJECT_LONG_TAG = encodeRejected({ condition: 'amqp:invalid-field', description: 'delivery tag length exceeded' });
/** A transfer with no message at all (qdrouterd's DISPATCH-1988 refusal, its words). */
const REJECT_EMPTY = encodeRejected({ condition: 'amqp:decode-error', description: 'invalid message format' });

/** The pairing of an upstream link with its downstream twin. */
class RoutedLink {
  down: Link | null = null;
  opened = false;
  /** Deliveries from `in` waiting for credit on `out`. */
  readonly pending: InDelivery[] = [];
  /**
   * @param address the routed terminus address (normalized): management shows it as both ends'
   *   owning address, `M0` + address, as qdrouterd does for link-routed links.
   */
  constructor(readonly up: Link, readonly upAttach: AttachFrame, readonly address: string) {}
  /** The link we receive on and the one we send on. */
  get inLink(): Link | null {
    return this.up.isSender ? this.down : this.up;
  }
  get outLink(): Link | null {
    return this.up.isSender ? this.up : this.down;
  }
}

/** Marks a link's ctx as one end of a routed link. */
export class RouteEnd {
  constructor(readonly route: RoutedLink, readonly isUp: boolean) {}
}

/** The router's link-routing table and relay. */
export class LinkRouter {
  private local: LinkRouteSettings[];
  /** Remote routes: key → routers advertising it. */
  private readonly remote = new Map<string, Set<string>>();
  private readonly sessions = new Map<Connection, Session>();
  private readonly routes = new Set<RoutedLink>();
  /** Links we detached because their twin's peer detached → that twin, whose answer waits for ours. */
  private readonly awaitingAnswer = new Map<Link, Link>();
  /** Per local route, how many attaches it has placed: the next container takes the next turn. */
  private readonly turns = new Map<LinkRouteSettings, number>();
  /** Connection-scoped routes, per connection they route to. */
  private readonly connRoutes = new Map<Connection, ConnectionLinkRoute[]>();
  /** Local routes currently advertised (their connector is active). */
  private readonly advertised = new Set<string>();

  constructor(routes: LinkRouteSettings[], private readonly host: LinkRouteHost, private readonly logger: Logger) {
    this.local = routes;
  }

  /** Active route-container connections (connectors' and those accepted on route-container listeners) → the peer's container-id. */
  private readonly active = new Map<RouteContainer, string | null>();

  /** Replaces the local routes (reconfiguration): advertised as their connections allow. */
  setRoutes(routes: LinkRouteSettings[]): void {
    this.local = routes;
    this.turns.clear();
    this.advertise();
  }

  /** Does route `r` go over the connection `name` whose peer is `containerId`? */
  private serves(r: LinkRouteSettings, name: string, containerId: string | null): boolean {
    return r.connection !== undefined ? r.connection === name : r.containerId !== undefined && r.containerId === containerId;
  }

  /** Advertises exactly the routes some active connection serves (withdraws the others). */
  private advertise(): void {
    const mesh = this.host.interRouter?.mesh;
    const want = new Set<string>();
    for (const r of this.local) {
      for (const [rc, cid] of this.active) if (this.serves(r, rc.settings.name, cid)) want.add(linkRouteKey(r));
    }
    for (const list of this.connRoutes.values()) for (const r of list) want.add(linkRouteKey(r));
    for (const key of this.advertised) {
      if (want.has(key)) continue;
      this.advertised.delete(key);
      mesh?.onLocalAddress(key, TREATMENT.LINK_BALANCED, false);
      this.host.routePresence?.(key, false);
    }
    for (const key of want) {
      if (this.advertised.has(key)) continue;
      this.advertised.add(key);
      mesh?.onLocalAddress(key, TREATMENT.LINK_BALANCED, true);
      this.host.routePresence?.(key, true);
    }
  }

  get count(): number {
    return this.routes.size;
  }

  /** Adds a connection-scoped route (names are unique per connection; the caller checks). */
  addConnectionRoute(conn: Connection, r: ConnectionLinkRoute): void {
    const list = this.connRoutes.get(conn) ?? [];
    list.push(r);
    this.connRoutes.set(conn, list);
    this.advertise();
  }

  /** Removes connection `conn`'s route named or identified `id`; false when it has none. */
  removeConnectionRoute(conn: Connection, id: string): boolean {
    const list = this.connRoutes.get(conn) ?? [];
    const i = list.findIndex((r) => r.name === id || r.identity === id);
    if (i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.connRoutes.delete(conn);
    this.advertise();
    return true;
  }

  /** The routes scoped to `conn` (what management shows over that connection only). */
  connectionRoutes(conn: Connection): readonly ConnectionLinkRoute[] {
    return this.connRoutes.get(conn) ?? [];
  }

  /** A connection closed: the routes scoped to it go. */
  onConnectionClosed(conn: Connection): void {
    this.sessions.delete(conn);
    if (this.connRoutes.delete(conn)) this.advertise();
  }

  /** A route-container connection came up (its peer's container-id) or went: advertise or withdraw. */
  onContainer(rc: RouteContainer, active: boolean, containerId: string | null = null): void {
    if (active) this.active.set(rc, containerId);
    else this.active.delete(rc);
    this.advertise();
  }

  /** Every link-route key configured here or advertised by another router, with who serves it. */
  addressRows(): { key: string; containerCount: number; remoteRouters: string[] }[] {
    const rows = new Map<string, { key: string; containerCount: number; remoteRouters: string[] }>();
    for (const r of this.local) {
      const key = linkRouteKey(r);
      const row = rows.get(key) ?? { key, containerCount: 0, remoteRouters: [] };
      for (const [rc, cid] of this.active) if (this.serves(r, rc.settings.name, cid)) row.containerCount++;
      rows.set(key, row);
    }
    for (const list of this.connRoutes.values()) {
      for (const r of list) {
        const key = linkRouteKey(r);
        const row = rows.get(key) ?? { key, containerCount: 0, remoteRouters: [] };
        row.containerCount++;
        rows.set(key, row);
      }
    }
    for (const [key, routers] of this.remote) {
      const row = rows.get(key) ?? { key, containerCount: 0, remoteRouters: [] };
      row.remoteRouters = [...routers];
      rows.set(key, row);
    }
    return [...rows.values()];
  }

  /** Whether some active route-container connection serves route `r` (management's operStatus). */
  isServed(r: LinkRouteSettings): boolean {
    for (const [rc, cid] of this.active) if (this.serves(r, rc.settings.name, cid)) return true;
    return false;
  }

  onRemoteKey(routerId: string, key: string, present: boolean): void {
    let set = this.remote.get(key);
    if (present) {
      if (!set) this.remote.set(key, (set = new Set()));
      set.add(routerId);
    } else if (set) {
      set.delete(routerId);
      if (set.size === 0) this.remote.delete(key);
    }
  }

  /** True when `address` in `direction` is link-routed here or anywhere in the mesh. */
  /** Whether a route for `address` has a connection here to relay on (otherwise an edge asks its interior). */
  hasLocalRoute(address: string, direction: 'in' | 'out'): boolean {
    return this.isRouted(address, direction) && this.downstream(address, direction, false) !== null;
  }

  isRouted(address: string, direction: 'in' | 'out'): boolean {
    if (this.local.some((r) => r.direction === direction && matchesRoute(r, address))) return true;
    for (const list of this.connRoutes.values()) if (list.some((r) => r.direction === direction && matchesRoute(r, address))) return true;
    for (const key of this.remote.keys()) {
      const r = routeOfKey(key);
      if (r.direction === direction && matchesRoute(r, address)) return true;
    }
    return false;
  }

  /**
   * A qdrouterd edge's lookup before it serves an attach (its address_lookup_client): is
   * `address` link-routed in `direction`, and could an attach reach a container now?
   */
  lookup(address: string, direction: 'in' | 'out'): { routed: boolean; reachable: boolean } {
    if (!this.isRouted(address, direction)) return { routed: false, reachable: false };
    return { routed: true, reachable: this.downstream(address, direction, false) !== null };
  }

  /**
   * Where an attach for `address` goes next: the broker connection here, or the next hop.
   * `take`: the attach goes there (containers serving one route take turns); false only looks.
   */
  private downstream(address: string, direction: 'in' | 'out', take = true): Connection | null {
    for (const r of this.local) {
      if (r.direction !== direction || !matchesRoute(r, address)) continue;
      const candidates: Connection[] = [];
      for (const [rc, cid] of this.active) {
        if (!this.serves(r, rc.settings.name, cid)) continue;
        if (rc.conn && rc.state === 'active' && rc.conn.isOpen) candidates.push(rc.conn);
      }
      if (candidates.length === 0) continue;
      // Several containers serve the route: attaches take turns among them (qdrouterd's balance).
      const turn = this.turns.get(r) ?? 0;
      if (take) this.turns.set(r, turn + 1);
      return candidates[turn % candidates.length];
    }
    for (const [conn, list] of this.connRoutes) {
      if (conn.isOpen && list.some((r) => r.direction === direction && matchesRoute(r, address))) return conn;
    }
    const ir = this.host.interRouter;
    if (!ir) return null;
    let best: { conn: Connection; cost: number } | null = null;
    for (const [key, routers] of this.remote) {
      const r = routeOfKey(key);
      if (r.direction !== direction || !matchesRoute(r, address)) continue;
      for (const id of routers) {
        const conn = ir.connectionToward(id);
        const cost = ir.cost(id);
        if (conn !== null && (best === null || cost < best.cost)) best = { conn, cost };
      }
    }
    return best?.conn ?? null;
  }

  /**
   * An attach from a client (or a routed attach from a neighbour router). Returns true when it
   * is link-routed (relayed or refused here). `via`: relay it on that connection, whatever the
   * routes here say (an edge's attach its interior said is link-routed).
   */
  onAttach(link: Link, a: AttachFrame, fromRouter: boolean, space: ((address: string) => string) | null = null, via: Connection | null = null): boolean {
    // The client receives (we send) on `out` routes, sends on `in` routes.
    const direction: 'in' | 'out' = link.isSender ? 'out' : 'in';
    const t = link.isSender ? a.source : a.target;
    // A transaction coordinator has no address: qdrouterd routes it as `$coordinator`.
    const coordinator = t !== null && t.type === 'coordinator';
    // A dynamic terminus is link-routed by its `x-opt-qd.address` dynamic-node-property (qdrouterd's).
    const raw = t === null ? null : coordinator ? '$coordinator' : t.dynamic ? t.dynamicAddress : t.address;
    if (raw === null) {
      if (fromRouter) link.refuse(NO_ROUTE, a);
      return fromRouter;
    }
    // A multi-tenant listener's client names addresses in its vhost's space.
    const address = space === null || coordinator ? normalizeAddress(raw) : space(normalizeAddress(raw));
    let source = a.source ? { raw: a.source.raw } : null;
    let target = a.target ? { raw: a.target.raw } : null;
    if (space !== null && t !== null && !coordinator && address !== normalizeAddress(raw)) {
      // The broker (or the next router) sees the address in the space (qdrouterd's): a dynamic
      // terminus's in its x-opt-qd.address property.
      const spaced = { raw: t.dynamic ? withDynamicNodeAddress(t.raw, address) : withTerminusAddress(t.raw, address) };
      if (link.isSender) source = spaced;
      else target = spaced;
    }
    if (!fromRouter && via === null && !this.isRouted(address, direction)) return false;
    const conn = via ?? this.downstream(address, direction);
    if (conn === null) {
      this.logger.log('ROUTER', 'info', `link route: no route for ${direction} link ${link.name} on ${address}`);
      link.refuse(NO_ROUTE, a);
      return true;
    }
    const route = new RoutedLink(link, a, address);
    link.ctx = new RouteEnd(route, true);
    // Deliveries pass with the sender's own delivery-tag (qdrouterd's; clients correlate by it).
    link.keepTags = true;
    link.answerDetachLater = true;
    let session = this.sessions.get(conn);
    if (session === undefined || session.ended || conn.closed) {
      session = conn.beginSession();
      this.sessions.set(conn, session);
    }
    // qdrouterd's disambiguation: a link entering the mesh here goes on as NAME@CONTAINER-ID, so
    // two clients' same-named links can share the session toward one container.
    const name = fromRouter ? a.name : `${a.name}@${link.conn.remoteOpen?.containerId ?? ''}`;
    const down = conn.attach(session, name, !link.isSender, source, target, {
      sndSettleMode: a.sndSettleMode,
      rcvSettleMode: a.rcvSettleMode,
    });
    down.ctx = new RouteEnd(route, false);
    down.keepTags = true;
    down.answerDetachLater = true;
    route.down = down;
    this.routes.add(route);
    this.host.touch(conn);
    this.logger.log('ROUTER', 'debug', `link route: ${direction} link ${link.name} on ${address} relayed`);
    return true;
  }

  /** The routed address of a link-routed link (either end), or null for any other link. */
  routedAddress(link: Link): string | null {
    return link.ctx instanceof RouteEnd ? link.ctx.route.address : null;
  }

  /** The downstream end answered our attach: complete the upstream one. */
  onLinkOpened(link: Link, a: AttachFrame): void {
    const end = link.ctx as RouteEnd;
    const route = end.route;
    // The upstream end went while this answer travelled: nothing to complete.
    if (!this.routes.has(route)) return;
    route.opened = true;
    route.up.accept({
      source: a.source ? { raw: a.source.raw } : null,
      target: a.target ? { raw: a.target.raw } : null,
      initialDeliveryCount: route.up.isSender ? a.initialDeliveryCount : undefined,
    }, route.upAttach);
    this.host.touch(route.up.conn);
    // Credit that arrived before this answer (a client receiver may flow right after its attach).
    this.relayCredit(route);
  }

  /** Credit changed on a link we send on: pass it upstream. */
  onFlow(link: Link): void {
    const end = link.ctx as RouteEnd;
    const route = end.route;
    this.pump(route);
    if (link === route.outLink) this.relayCredit(route);
  }

  /** The sender on a link we receive on sent a flow (its drain answer). */
  onSenderFlow(link: Link, deliveryCount: number | null, _credit: number | null, drain: boolean): void {
    const route = (link.ctx as RouteEnd).route;
    const out = route.outLink;
    if (!drain || out === null || !out.drain || deliveryCount === null) return;
    // The producer used up its credit (the engine took its delivery-count): so do we toward the consumer.
    if (route.pending.length === 0) {
      out.conn.drainComplete(out);
      this.host.touch(out.conn);
    }
  }

  private relayCredit(route: RoutedLink): void {
    const inLink = route.inLink;
    const out = route.outLink;
    if (inLink === null || out === null || !inLink.attached) return;
    const credit = Math.max(0, out.credit - route.pending.length);
    inLink.conn.setCredit(inLink, credit, out.drain);
    this.host.touch(inLink.conn);
  }

  onDelivery(link: Link, d: InDelivery): void {
    const route = (link.ctx as RouteEnd).route;
    const longTag = d.tag !== null && d.tag.length > MAX_DELIVERY_TAG;
    if (longTag || d.payload.length === 0) {
      this.logger.log('ROUTER', 'debug', longTag ? `link route delivery failure: delivery tag of ${d.tag?.length} bytes (max ${MAX_DELIVERY_TAG})` : 'link route delivery failure: empty message');
      if (!d.settled) link.conn.updateIn(d, longTag ? REJECT_LONG_TAG : REJECT_EMPTY, true);
      // The refused delivery used a credit the consumer never saw: give it back.
      this.relayCredit(route);
      this.host.touch(link.conn);
      return;
    }
    route.pending.push(d);
    this.pump(route);
  }

  /** Sends what credit allows; the rest waits for the next flow. */
  pump(route: RoutedLink): void {
    const out = route.outLink;
    if (out === null) return;
    while (route.pending.length > 0 && out.conn.canSend(out)) {
      const d = route.pending.shift() as InDelivery;
      // The transfer's state travels too (a transactional send's transactional-state).
      const od = out.conn.send(out, d.payload, d.settled, d, d.state, d.tag);
      if (!d.settled) d.ctx = od;
      this.host.touch(out.conn);
    }
  }

  /** The connection can write again: send what waited. */
  onWritable(conn: Connection): void {
    for (const r of this.routes) if (r.outLink?.conn === conn) this.pump(r);
  }

  /** A disposition from the receiving side of a delivery we relayed. */
  onOutcome(od: OutDelivery, state: Buffer | null, settled: boolean): void {
    const d = od.ctx as InDelivery;
    if (!d.link.attached) return;
    d.link.conn.updateIn(d, state, settled);
    this.host.touch(d.link.conn);
  }

  /** The sending side settled a delivery (after the receiver's outcome, rcv-settle-mode second). */
  onInSettled(d: InDelivery): void {
    const od = d.ctx as OutDelivery | null;
    if (od === null || !od.link.attached) return;
    od.link.conn.updateOut(od, null, true);
    this.host.touch(od.link.conn);
  }

  /**
   * Either end went: the other goes the same way (a lost broker connection: qd:routed-link-lost).
   * A peer's detach is answered only with what the far end answers (its closed flag and error),
   * as qdrouterd does: a client that detaches without closing learns whether the far end closed.
   */
  onLinkGone(link: Link, error: AmqpError | null, reason: LinkGoneReason): void {
    if (reason === 'detach-answered') {
      // The far end answered the detach we relayed (or went without answering).
      const waiting = this.awaitingAnswer.get(link);
      if (waiting === undefined) return;
      this.awaitingAnswer.delete(link);
      const answered = link.detachReceived;
      waiting.conn.answerDetach(waiting, answered ? error : ROUTED_LINK_LOST, answered ? link.remoteClosed : true);
      this.host.touch(waiting.conn);
      return;
    }
    const end = link.ctx as RouteEnd;
    const route = end.route;
    if (!this.routes.delete(route)) return;
    const other = end.isUp ? route.down : route.up;
    if (other === null) return this.answerNow(link, error);
    const lost = reason === 'connection-closed' || reason === 'session-ended';
    const err = lost ? (end.isUp ? null : ROUTED_LINK_LOST) : error;
    if (!end.isUp && !route.opened) {
      // Refused downstream: refuse upstream with the same error.
      route.up.refuse(err ?? NO_ROUTE, route.upAttach);
      this.answerNow(link, null);
    } else if (!other.detachSent) {
      if (link.detachAnswerPending) this.awaitingAnswer.set(other, link);
      // closed=false (a suspended link, e.g. a durable subscription) travels as it came.
      other.conn.detachLink(other, err, lost ? true : link.remoteClosed);
    } else this.answerNow(link, null);
    this.host.touch(other.conn);
  }

  /** Answers a peer's detach at once (nothing beyond to wait for), echoing its closed flag. */
  private answerNow(link: Link, error: AmqpError | null): void {
    if (!link.detachAnswerPending) return;
    link.conn.answerDetach(link, error, link.remoteClosed);
    this.host.touch(link.conn);
  }
}
