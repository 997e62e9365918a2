/**
 * The routing core: addresses, links, deliveries, credit and outcomes. Pure and synchronous: it
 * never touches sockets or AMQP encodings beyond opaque delivery-state bytes, and is driven by
 * labelled actions (`on*` methods). What it decides it emits through {@link CoreEffects}, an
 * interface the I/O layer implements (tests record it), so the per-message path allocates no
 * effect objects.
 *
 * Semantics follow qdrouterd 1.19 (see docs/invariants.md):
 * - a sending client's link gets credit (its link capacity) once its address has a consumer;
 *   credit is returned as deliveries leave the router, so it follows consumers' credit; it stays
 *   when the consumers go, until a delivery finds none (released, and the sender drains);
 * - anycast: closest (round robin over consumers) and balanced (fewest outstanding =
 *   undelivered + unsettled); multicast: one copy per consumer, the sender's outcome once every
 *   copy has one, with rejected > accepted > modified > released;
 * - outcomes pass through as the consumer gave them, and settlement travels apart (3-ack); a
 *   consumer that leaves turns its unsettled deliveries into modified(delivery-failed) and its
 *   undelivered ones into released;
 * - edge mode: what no local consumer takes goes up the uplink; nothing goes back out on the
 *   edge connection it came in on.
 */
import { AddressTable, Distribution, parsePhaseKey } from './addresses';

/** Delivery-state codes the core compares (AMQP descriptor codes). */
export const enum State {
  None = 0,
  Received = 0x23,
  Accepted = 0x24,
  Rejected = 0x25,
  Released = 0x26,
  Modified = 0x27,
}

/** qdrouterd's edge connection address: an edge router's uplink consumes it. */
export const EDGE_ADDRESS = '_edge';

/** Multicast aggregation rank: higher wins. */
function rank(code: number): number {
  switch (code) {
    case State.Rejected: return 4;
    case State.Accepted: return 3;
    case State.Modified: return 2;
    case State.Released: return 1;
    default: return 0;
  }
}

/** Outcomes the core creates itself. */
export const enum Made {
  Released = 1,
  ModifiedFailed = 2,
  /** rejected(amqp:not-found): an anonymous client delivery to an `unavailable` address. */
  RejectedUnavailable = 3,
}

/** A routable address and its attached links. */
export class Address {
  readonly consumers: CoreLink[] = [];
  /** Routers of the mesh that advertise a consumer for this address (from MAU). */
  readonly remotes = new Set<string>();
  readonly senders: CoreLink[] = [];
  rr = 0;
  deliveriesIn = 0;
  deliveriesOut = 0;
  /** Routed in from a client link (management: deliveriesIngress). */
  deliveriesIngress = 0;
  /** Sent to a client link (deliveriesEgress) and to another router (deliveriesTransit). */
  deliveriesEgress = 0;
  deliveriesTransit = 0;
  /** A `_topo/0/<router>/...` address of another router: reached through that router, never advertised. */
  topo = false;
  /** Senders on edge connections (interior: an edge's proxies, told where this address has destinations). */
  edgeSenders = 0;
  /** Consumers and senders not on an edge connection (an edge router proxies these to its interior). */
  localConsumers = 0;
  localSenders = 0;
  constructor(readonly key: string, readonly distribution: Distribution) {}
}

/** Either end of the router's links: `in` carries messages into the router, `out` to a consumer. */
export class CoreLink {
  address: Address | null = null;
  /** in: deliveries received and not yet transmitted to all their destinations. */
  held = 0;
  /** in: credit currently granted, as the I/O reports it back. */
  granted = 0;
  /** in: asked to drain (no destination); cleared when credit is granted again. */
  draining = false;
  /** out: copies waiting for credit. */
  readonly undelivered: Copy[] = [];
  undeliveredHead = 0;
  /** out: copies sent and not yet settled. */
  unsettled = 0;
  /** out: the consumer asked to drain. */
  drain = false;
  /** out: the consumer wants deliveries settled on send (snd-settle-mode settled). */
  presettled = false;
  /** in: deliveries whose outcome went to the sender unsettled (3-ack), settled downstream if the link goes. */
  awaiting: Set<Delivery> | null = null;
  /**
   * Where the link sits in its address's `consumers` (out) or `senders` (in), or -1: removal is
   * O(1), so a connection closing with many links on one address costs linear time.
   */
  slot = -1;
  gone = false;
  dirty = false;
  /** A link to or from another router of the mesh (management's linkType inter-router). */
  interRouter = false;
  /** The router's own in-process sender (the management agent's replies): not client ingress. */
  inProcess = false;
  /** On a route-container connection (a broker's): counted apart too (deliveries*RouteContainer). */
  routeContainer = false;
  /**
   * The edge connection the link is on, or null: on an interior router, a link an edge router
   * attached; on an edge router, a link on its uplink. A delivery never goes back out on the edge
   * connection it came in on (qdrouterd's edge echo rule).
   */
  edgeConn: unknown = null;
  /** in, interior, on an edge connection: what the edge was last told (destinations beyond it?), null: nothing yet. */
  edgeDest: boolean | null = null;
  /** in: the key the sender attached to (an edge router's uplink carries it as the message's to). */
  key: string | null = null;
  /** Management counters: deliveries on the link, pre-settled ones, and outcomes by kind. */
  deliveryCount = 0;
  presettledCount = 0;
  acceptedCount = 0;
  rejectedCount = 0;
  releasedCount = 0;
  modifiedCount = 0;
  constructor(readonly id: number, readonly dir: 'in' | 'out', readonly capacity: number, readonly io: unknown) {}

  get undeliveredCount(): number {
    return this.undelivered.length - this.undeliveredHead;
  }
}

/** Delivery flag bits (see {@link Delivery}). */
const enum DFlag {
  HasBest = 1,
  Done = 2,
  Reported = 4,
  SenderSettled = 8,
}

/** Copy flag bits (see {@link Copy}). */
const enum CFlag {
  Settled = 1,
  HasOutcome = 2,
  Sent = 4,
}

/**
 * A message the router is routing (one per incoming delivery). One is made per message, and its
 * size shows: with four more fields the router spent about 40% more CPU per message at window
 * 250 (bench/ab-router.js), so its booleans share one `flags` field behind accessors.
 */
export class Delivery {
  /** Copies not yet transmitted. */
  untransmitted = 0;
  /** Copies without a final outcome (unsettled deliveries only). */
  outstanding = 0;
  best = 0;
  bestState: Buffer | null = null;
  bestMade = 0;
  private flags = 0;
  /** Where it is going (set when routed): inter-router copies carry it as x-opt-qd.to. */
  address: Address | null = null;
  /**
   * Its copies (a Copy for anycast, an array for multicast), kept while the sender's delivery is
   * unsettled: the sender's settle settles those their consumers have not (3-ack).
   */
  copies: Copy | Copy[] | null = null;
  constructor(readonly link: CoreLink, readonly settled: boolean, readonly io: unknown) {}

  /** A best outcome so far (multicast aggregation). */
  get hasBest(): boolean {
    return (this.flags & DFlag.HasBest) !== 0;
  }
  set hasBest(v: boolean) {
    this.flags = v ? this.flags | DFlag.HasBest : this.flags & ~DFlag.HasBest;
  }
  /** The sender has its outcome. */
  get done(): boolean {
    return (this.flags & DFlag.Done) !== 0;
  }
  set done(v: boolean) {
    this.flags = v ? this.flags | DFlag.Done : this.flags & ~DFlag.Done;
  }
  /** The outcome went to the sender unsettled: it is settled once every copy is. */
  get reported(): boolean {
    return (this.flags & DFlag.Reported) !== 0;
  }
  set reported(v: boolean) {
    this.flags = v ? this.flags | DFlag.Reported : this.flags & ~DFlag.Reported;
  }
  /** The sender settled (after the outcome, or before it). */
  get senderSettled(): boolean {
    return (this.flags & DFlag.SenderSettled) !== 0;
  }
  set senderSettled(v: boolean) {
    this.flags = v ? this.flags | DFlag.SenderSettled : this.flags & ~DFlag.SenderSettled;
  }
}

/** One copy of a delivery bound for one consumer link (its booleans in one field, as Delivery's). */
export class Copy {
  io: unknown = null;
  private flags = 0;
  constructor(readonly delivery: Delivery, readonly out: CoreLink) {}

  /** Settled towards the consumer (by it, by us, or sent pre-settled). */
  get settled(): boolean {
    return (this.flags & CFlag.Settled) !== 0;
  }
  set settled(v: boolean) {
    this.flags = v ? this.flags | CFlag.Settled : this.flags & ~CFlag.Settled;
  }
  /** The consumer gave a terminal outcome (it may not have settled yet). */
  get hasOutcome(): boolean {
    return (this.flags & CFlag.HasOutcome) !== 0;
  }
  set hasOutcome(v: boolean) {
    this.flags = v ? this.flags | CFlag.HasOutcome : this.flags & ~CFlag.HasOutcome;
  }
  /** Transmitted (not waiting in its link's queue). */
  get sent(): boolean {
    return (this.flags & CFlag.Sent) !== 0;
  }
  set sent(v: boolean) {
    this.flags = v ? this.flags | CFlag.Sent : this.flags & ~CFlag.Sent;
  }
}

/** What the core asks the I/O layer to do (or to tell it). */
export interface CoreEffects {
  /** Sets an incoming link's credit to `credit` (absolute). */
  grantCredit(link: CoreLink, credit: number): void;
  /**
   * Asks a sender to give back its credit (a flow with drain set): a delivery of its found no
   * destination (qdrouterd's). `credit` is what it holds with every delivery that left the router
   * counted back, as qdrouterd replenishes each one as it goes.
   */
  drainCredit(link: CoreLink, credit: number): void;
  /** May this outgoing link send one delivery now (credit, session window, socket)? */
  canSend(link: CoreLink): boolean;
  /** Sends a copy; returns the I/O's delivery handle. `settled` when sent pre-settled. */
  transmit(copy: Copy, settled: boolean): unknown;
  /** Reports an outcome to the sender, settled. `state` is the consumer's encoded state or one the core made. */
  settleIn(d: Delivery, state: Buffer | null, made: Made | 0): void;
  /**
   * Reports a state to the sender without settling: the outcome when a consumer has not settled
   * yet (the sender settles, 3-ack), or a single consumer's non-terminal state.
   */
  updateIn(d: Delivery, state: Buffer | null, made: Made | 0): void;
  /** Settles a copy towards its consumer (its outcome came unsettled and the sender settled, or the sender left). */
  settleOut(copy: Copy): void;
  /** A drain on an outgoing link finished: consume the rest of its credit. */
  drainComplete(link: CoreLink): void;
  /** An address gained its first local consumer (`present`) or lost its last (mesh advertisement). */
  addressPresence?(key: string, distribution: Distribution, present: boolean): void;
  /**
   * Edge router: an address gained its first consumer (`consumer`) or sender not on the uplink, or
   * lost its last: the uplink proxies it to the interior router.
   */
  edgePresence?(key: string, consumer: boolean, present: boolean): void;
  /**
   * Interior router: whether an edge router's sender on an address has destinations beyond that
   * edge changed (qdrouterd's edge address tracking tells the edge).
   */
  edgeDestinations?(link: CoreLink, present: boolean): void;
}

/**
 * The mesh as the forwarder sees it (a read-only port the I/O implements from the control
 * plane's routes): links towards routers and the multicast fan-out. Absent on standalone routers.
 */
export interface RemoteView {
  /** This router's id (the origin of locally received messages). */
  readonly self: string;
  /** The data link for `priority` towards `routerId` (its next hop), or null when unreachable. */
  linkToward(routerId: string, priority: number): CoreLink | null;
  /** Path cost to `routerId` (Infinity when unreachable). */
  cost(routerId: string): number;
  /** The next hop towards `routerId`, or null. */
  nextHop(routerId: string): string | null;
  /** May a message from `origin` travel on through us towards `routerId`? (valid origins) */
  isValidOrigin(routerId: string, origin: string): boolean;
  /**
   * Links (one per next-hop connection) a multicast from `origin` with `trace` takes to reach
   * `routers`: valid-origin trees, minus connections to routers in the trace.
   */
  multicastLinks(origin: string, trace: readonly string[], routers: Iterable<string>, priority: number): CoreLink[];
}

/** One address as {@link RouterCore.queryAddresses} shows it. */
export interface AddressSnapshot {
  key: string;
  distribution: Distribution;
  consumers: number;
  senders: number;
  deliveriesIn: number;
  deliveriesOut: number;
  /** Routers advertising consumers (or, for a topological address, the router it names). */
  remotes: string[];
  topo: boolean;
  deliveriesIngress: number;
  deliveriesEgress: number;
  deliveriesTransit: number;
}

/** Counters the core keeps (management and tests read them). */
export interface CoreStats {
  acceptedDeliveries: number;
  rejectedDeliveries: number;
  releasedDeliveries: number;
  modifiedDeliveries: number;
  presettledDeliveries: number;
  deliveriesIngress: number;
  deliveriesEgress: number;
  deliveriesTransit: number;
  /** Of deliveriesIngress and deliveriesEgress: from and to route-container connections. */
  deliveriesIngressRouteContainer: number;
  deliveriesEgressRouteContainer: number;
  deliveriesIn: number;
  deliveriesOut: number;
  releasedNoRoute: number;
  droppedPresettled: number;
}

/** The router core for one router. */
export class RouterCore {
  private readonly addresses = new Map<string, Address>();
  private nextLinkId = 1;
  private readonly dirty: CoreLink[] = [];
  readonly stats: CoreStats = {
    acceptedDeliveries: 0, rejectedDeliveries: 0, releasedDeliveries: 0, modifiedDeliveries: 0, presettledDeliveries: 0,
    deliveriesIngress: 0, deliveriesEgress: 0, deliveriesTransit: 0, deliveriesIngressRouteContainer: 0, deliveriesEgressRouteContainer: 0,
    deliveriesIn: 0, deliveriesOut: 0, releasedNoRoute: 0, droppedPresettled: 0 };

  private remote: RemoteView | null = null;
  /** Edge mode: `_edge`, the address whose one consumer is the uplink to the interior router. */
  private edgeAddress: Address | null = null;
  /** Edge mode: this router's id (`_edge/<id>/...` and `_topo/0/<id>/...` are its own). */
  private edgeSelf = '';

  constructor(readonly table: AddressTable, private readonly fx: CoreEffects) {}

  /**
   * Edge mode: what no local consumer takes goes up the uplink (once one is attached, see
   * {@link setEdgeUplink}), as do other routers' `_topo` and `_edge` addresses.
   */
  setEdgeMode(selfId: string): void {
    this.edgeSelf = selfId;
    this.edgeAddress = new Address(EDGE_ADDRESS, 'closest');
  }

  /** Edge mode: the uplink (the anonymous link to the interior router) attached, or went (null). */
  setEdgeUplink(link: CoreLink | null): void {
    const e = this.edgeAddress;
    if (e === null) return;
    for (const c of e.consumers) c.slot = -1;
    e.consumers.length = 0;
    if (link !== null) addTo(e.consumers, link);
    for (const s of e.senders) this.markDirty(s);
  }

  /**
   * An edge router's proxy consumer (its link to the interior router for an address its clients
   * send to): made unbound; {@link bindEdgeProxy} binds it while the interior has destinations.
   */
  onEdgeProxyAttached(capacity: number, io: unknown, edgeConn: unknown): CoreLink {
    const link = new CoreLink(this.nextLinkId++, 'out', capacity, io);
    link.edgeConn = edgeConn;
    return link;
  }

  /** The interior router said whether `key` has destinations beyond this edge: bind or unbind the proxy. */
  bindEdgeProxy(link: CoreLink, key: string, bound: boolean): void {
    if (link.gone || (link.address !== null) === bound) return;
    if (bound) {
      const a = this.addressFor(key);
      link.address = a;
      addTo(a.consumers, link);
      for (const s of a.senders) this.markDirty(s);
      this.pump(link);
      return;
    }
    const a = link.address as Address;
    removeFrom(a.consumers, link);
    link.address = null;
    this.releaseUndelivered(link);
    for (const s of a.senders) this.markDirty(s);
    this.maybeDropAddress(a);
  }

  /**
   * Edge mode: where an address that is not this router's goes: other routers' `_topo/0/...` and
   * `_edge/...` addresses are reached through the uplink. Interior mode: `_edge/<edge>/...` goes to
   * that edge's downlink (qdrouterd's edge summary address `_edge/<edge>`). Null otherwise.
   */
  private edgeRoute(key: string, create: boolean): Address | null {
    if (this.edgeAddress !== null) {
      let id: string;
      if (key.startsWith('_topo/0/')) {
        const end = key.indexOf('/', 8);
        id = end < 0 ? key.slice(8) : key.slice(8, end);
      } else if (key.startsWith('_edge/')) {
        const end = key.indexOf('/', 6);
        id = end < 0 ? key.slice(6) : key.slice(6, end);
      } else return null;
      return id === this.edgeSelf ? null : this.edgeAddress;
    }
    if (!key.startsWith('_edge/')) return null;
    const end = key.indexOf('/', 6);
    if (end < 0) return null;
    const summary = key.slice(0, end);
    let a = this.addresses.get(summary);
    if (a === undefined && !create) return null;
    if (a === undefined) {
      a = new Address(summary, 'balanced');
      this.addresses.set(summary, a);
    }
    return a;
  }

  /** Connects the forwarder to the mesh (interior mode). */
  setRemoteView(view: RemoteView): void {
    this.remote = view;
  }

  /** `a` has a destination other than the edge connection `from` (a consumer elsewhere, or a remote router). */
  private routableFrom(a: Address, from: unknown): boolean {
    for (const c of a.consumers) if (c.edgeConn !== from) return true;
    return this.hasRemote(a);
  }

  /** Remote consumers exist for `a` on a reachable router. */
  private hasRemote(a: Address): boolean {
    if (this.remote === null || a.remotes.size === 0) return false;
    for (const r of a.remotes) if (this.remote.cost(r) < Infinity) return true;
    return false;
  }

  /** A router advertised (or withdrew) consumers for an address (mobile-address sync). */
  onRemoteAddress(routerId: string, key: string, distribution: Distribution, present: boolean): void {
    let a = this.addresses.get(key);
    if (a === undefined) {
      if (!present) return;
      // A rule here wins; an address no rule here covers takes the advertising router's
      // treatment (its MAU hint), as qdrouterd does.
      a = new Address(key, this.table.computeConfiguredDistribution(key) ?? distribution);
      this.addresses.set(key, a);
    }
    if (present) a.remotes.add(routerId);
    else a.remotes.delete(routerId);
    for (const s of a.senders) this.markDirty(s);
    this.maybeDropAddress(a);
  }

  /** Routes changed: reachability of remote consumers may have changed, and so senders' credit. */
  onRoutesChanged(): void {
    for (const a of this.addresses.values()) if (a.remotes.size > 0) for (const s of a.senders) this.markDirty(s);
  }

  /** Looks up (or creates) the address record for a normalized key. */
  private addressFor(key: string): Address {
    if (key.charCodeAt(0) === 95 /* _ */) {
      const e = this.edgeRoute(key, true);
      if (e !== null) return e;
    }
    let a = this.addresses.get(key);
    if (a === undefined) {
      a = this.topoAddress(key) ?? new Address(key, this.table.computeDistribution(key));
      this.addresses.set(key, a);
    }
    return a;
  }

  /**
   * `_topo/0/<router>/...` (dynamic reply addresses, qdrouterd's form) names one router's
   * address: another router's is routed toward that router, whatever the mobile addresses say.
   * Returns null for our own router's (local consumers) and for other keys.
   */
  private topoAddress(key: string): Address | null {
    if (this.remote === null || !key.startsWith('_topo/0/')) return null;
    const end = key.indexOf('/', 8);
    const id = end < 0 ? key.slice(8) : key.slice(8, end);
    if (id === '' || id === this.remote.self) return null;
    const a = new Address(key, 'closest');
    a.topo = true;
    a.remotes.add(id);
    return a;
  }

  private maybeDropAddress(a: Address): void {
    if (a === this.edgeAddress) return;
    if (a.consumers.length === 0 && a.senders.length === 0 && (a.remotes.size === 0 || a.topo)) this.addresses.delete(a.key);
  }

  /** Snapshot of one address (management, tests). */
  readAddress(key: string): { key: string; distribution: Distribution; consumers: number; senders: number } | null {
    const a = this.addresses.get(key);
    return a ? { key, distribution: a.distribution, consumers: a.consumers.length, senders: a.senders.length } : null;
  }

  /** Every address with its link counts and delivery counters. */
  queryAddresses(): AddressSnapshot[] {
    return [...this.addresses.values()].map((a) => ({
      key: a.key, distribution: a.distribution, consumers: a.consumers.length, senders: a.senders.length, deliveriesIn: a.deliveriesIn, deliveriesOut: a.deliveriesOut,
      remotes: [...a.remotes], topo: a.topo, deliveriesIngress: a.deliveriesIngress, deliveriesEgress: a.deliveriesEgress, deliveriesTransit: a.deliveriesTransit,
    }));
  }

  // ------------------------------------------------------------------ actions: links

  /**
   * A client attached a sending link (messages flow into the router). `key` null: anonymous
   * relay (per-message `to`). Credit follows in {@link flush}.
   */
  onSenderAttached(key: string | null, capacity: number, io: unknown, edgeConn: unknown = null): CoreLink {
    const link = new CoreLink(this.nextLinkId++, 'in', capacity, io);
    link.edgeConn = edgeConn;
    link.key = key;
    if (key !== null) {
      const a = this.addressFor(key);
      link.address = a;
      addTo(a.senders, link);
      if (edgeConn !== null) a.edgeSenders++;
      else if (++a.localSenders === 1 && this.edgeAddress !== null && a !== this.edgeAddress) this.fx.edgePresence?.(a.key, false, true);
    }
    this.markDirty(link);
    return link;
  }

  /**
   * A delivery a client sent to something the router answers in process (a management request
   * on a link attached to `$management`): ingress, as qdrouterd counts it.
   */
  onInProcessDelivery(): void {
    this.stats.deliveriesIn++;
    this.stats.deliveriesIngress++;
  }

  /** A client attached a receiving link (a consumer). */
  onConsumerAttached(key: string, capacity: number, presettled: boolean, io: unknown, edgeConn: unknown = null): CoreLink {
    const link = new CoreLink(this.nextLinkId++, 'out', capacity, io);
    link.presettled = presettled;
    link.edgeConn = edgeConn;
    const a = this.addressFor(key);
    link.address = a;
    addTo(a.consumers, link);
    // Senders on this address may now get credit (an edge's sender: whenever a consumer comes,
    // since its own proxy consumer does not count for it).
    if (a.consumers.length === 1 || a.edgeSenders > 0) for (const s of a.senders) this.markDirty(s);
    if (a.consumers.length === 1) this.fx.addressPresence?.(a.key, a.distribution, true);
    if (edgeConn === null && ++a.localConsumers === 1 && this.edgeAddress !== null && a !== this.edgeAddress) this.fx.edgePresence?.(a.key, true, true);
    return link;
  }

  /**
   * The router behind an inter-router link stopped answering (no HELLO within helloMaxAge) while
   * its connection stays open: copies waiting for it are released; the I/O reports the copies it
   * had sent through {@link onCopyLost} (modified). New copies avoid it (routes changed).
   */
  onRouterLinkFailed(link: CoreLink): void {
    this.releaseUndelivered(link);
  }

  /** Copies never sent on `link` go back to their senders as released: they may be sent again. */
  private releaseUndelivered(link: CoreLink): void {
    for (let i = link.undeliveredHead; i < link.undelivered.length; i++) {
      const c = link.undelivered[i];
      c.settled = true;
      this.copyTransmittedOrDropped(c);
      this.copyOutcome(c, State.Released, null, Made.Released);
    }
    link.undelivered.length = 0;
    link.undeliveredHead = 0;
  }

  /** An inter-router data link towards a neighbour: an outgoing link bound to no address. */
  onRouterLinkAttached(capacity: number, io: unknown): CoreLink {
    const link = new CoreLink(this.nextLinkId++, 'out', capacity, io);
    link.interRouter = true;
    return link;
  }

  /** The consumer granted credit (or asked to drain). */
  onConsumerFlow(link: CoreLink, drain: boolean): void {
    if (link.gone) return;
    link.drain = drain;
    this.pump(link);
  }

  /** The consumer's connection can take writes again. */
  onWritable(link: CoreLink): void {
    if (!link.gone && link.undeliveredCount > 0) this.pump(link);
  }

  /** A link went away (detach, end, close, socket loss). */
  onLinkGone(link: CoreLink): void {
    if (link.gone) return;
    link.gone = true;
    const a = link.address;
    if (link.dir === 'in') {
      // A sender that leaves settles nothing more: its deliveries' open copies are settled for it.
      if (link.awaiting !== null) for (const d of [...link.awaiting]) this.onDeliverySettled(d);
      if (a && removeFrom(a.senders, link)) {
        if (link.edgeConn !== null) a.edgeSenders--;
        else if (--a.localSenders === 0 && this.edgeAddress !== null && a !== this.edgeAddress) this.fx.edgePresence?.(a.key, false, false);
        this.maybeDropAddress(a);
      }
      return;
    }
    if (a && removeFrom(a.consumers, link)) {
      if (a.consumers.length === 0 || a.edgeSenders > 0) for (const s of a.senders) this.markDirty(s);
      if (a.consumers.length === 0) this.fx.addressPresence?.(a.key, a.distribution, false);
      if (link.edgeConn === null && --a.localConsumers === 0 && this.edgeAddress !== null && a !== this.edgeAddress) this.fx.edgePresence?.(a.key, true, false);
    }
    this.releaseUndelivered(link);
    if (a) this.maybeDropAddress(a);
  }

  /**
   * Copies that were sent and never settled when their consumer left: modified(delivery-failed),
   * as AMQP prescribes for a delivery whose fate is unknown. The I/O calls this per copy.
   */
  onCopyLost(copy: Copy): void {
    if (copy.settled) return;
    if (copy.hasOutcome) {
      // Its outcome already counted; it only settles.
      this.copySettled(copy);
      return;
    }
    copy.settled = true;
    copy.out.unsettled--;
    this.copyOutcome(copy, State.Modified, null, Made.ModifiedFailed);
  }

  // ------------------------------------------------------------------ actions: deliveries

  /**
   * A whole message arrived on an incoming link. `to` is the per-message address for anonymous
   * links (normalized), ignored otherwise. Returns the core's delivery.
   */
  onDelivery(link: CoreLink, settled: boolean, to: string | null, io: unknown, origin: string | null = null, trace: readonly string[] | null = null, priority = 4): Delivery | null {
    this.stats.deliveriesIn++;
    link.deliveryCount++;
    if (settled) {
      link.presettledCount++;
      this.stats.presettledDeliveries++;
    }
    if (!link.interRouter && !link.inProcess) {
      this.stats.deliveriesIngress++;
      if (link.routeContainer) this.stats.deliveriesIngressRouteContainer++;
    }
    let a = link.address;
    if (a === null && to !== null && !link.interRouter && this.table.isUnavailable(parsePhaseKey(to).address)) {
      // qdrouterd 1.19 (transfer.c): a client's delivery to an unavailable address is rejected;
      // one from another router is released (no consumer can attach to it: noRoute below).
      const d = new Delivery(link, settled, io);
      this.rejectUnavailable(d);
      return d;
    }
    if (a === null && to !== null) {
      // An anonymous message to another router's _topo address is routed without keeping a record.
      a = this.addresses.get(to) ?? this.topoAddress(to) ?? (to.charCodeAt(0) === 95 ? this.edgeRoute(to, false) : null);
    }
    const from = link.edgeConn;
    const d = new Delivery(link, settled, io);
    if (a === null || (a.consumers.length === 0 && !this.hasRemote(a)) || (from !== null && !this.routableFrom(a, from))) {
      // An edge router sends what its clients send anonymously and no local consumer takes up its
      // uplink (qdrouterd's `_edge` address).
      const up = this.edgeAddress;
      if (up === null || up.consumers.length === 0 || from !== null || link.address !== null || a === up) {
        this.noRoute(d);
        return d;
      }
      a = up;
    }
    a.deliveriesIn++;
    if (!link.interRouter && !link.inProcess) a.deliveriesIngress++;
    d.address = a;
    link.held++;
    if (a.distribution === 'multicast') {
      const outs: CoreLink[] = from === null ? a.consumers.slice() : a.consumers.filter((c) => c.edgeConn !== from);
      const up = this.edgeAddress;
      if (up !== null && up.consumers.length > 0 && from === null && link.address === null) {
        // An edge router's anonymous multicast goes up too (qdrouterd's), unless a proxy already takes it there.
        const uplink = up.consumers[0];
        if (!outs.some((c) => c.edgeConn === uplink.edgeConn)) outs.push(uplink);
      }
      if (this.remote !== null && a.remotes.size > 0) {
        // Never back to where it came from: routers in the trace are excluded.
        const hops = trace ? trace.map((t) => t.replace(/^0\//, '')) : [];
        for (const l of this.remote.multicastLinks(origin ?? this.remote.self, hops, a.remotes, priority)) if (!outs.includes(l)) outs.push(l);
      }
      const n = outs.length;
      if (n === 0) {
        link.held--;
        this.noRoute(d);
        return d;
      }
      d.untransmitted = n;
      d.outstanding = settled ? 0 : n;
      if (settled) for (let i = 0; i < n; i++) this.enqueue(new Copy(d, outs[i]));
      else {
        const copies: Copy[] = new Array(n);
        for (let i = 0; i < n; i++) copies[i] = new Copy(d, outs[i]);
        d.copies = copies;
        for (let i = 0; i < n; i++) this.enqueue(copies[i]);
      }
    } else {
      const out = this.pickAnycast(a, origin, trace, priority, from);
      if (out === null) {
        link.held--;
        this.noRoute(d);
        return d;
      }
      d.untransmitted = 1;
      d.outstanding = settled ? 0 : 1;
      const c = new Copy(d, out);
      if (!settled) d.copies = c;
      this.enqueue(c);
    }
    return d;
  }

  /**
   * Anycast choice. Local consumers first when any can take the message (closest: a local
   * consumer always wins, as qdrouterd); otherwise the cheapest remote router (closest) or the
   * lowest outstanding + cost among local links and remote routers (balanced).
   */
  private pickAnycast(a: Address, origin: string | null, trace: readonly string[] | null, priority: number, from: unknown): CoreLink | null {
    const remote = this.remote;
    // A delivery from an edge connection never goes back to it.
    const cs = from === null ? a.consumers : a.consumers.filter((c) => c.edgeConn !== from);
    if (cs.length > 0 && (a.distribution !== 'balanced' || remote === null || a.remotes.size === 0)) {
      return a.distribution === 'balanced' ? this.pickBalanced(a, cs) : this.pickClosest(a, cs);
    }
    if (remote === null) return null;
    let best: CoreLink | null = null;
    let bestValue = Infinity;
    if (cs.length > 0) {
      best = this.pickBalanced(a, cs);
      bestValue = best.undeliveredCount + best.unsettled;
      if (bestValue === 0) return best;
    }
    for (const r of a.remotes) {
      const cost = remote.cost(r);
      if (cost === Infinity) continue;
      // Onward only along the origin's tree, never back through a router it has visited
      // (qdrouterd's balanced checks valid origins too).
      if (origin !== null && origin !== remote.self && (r === origin || !remote.isValidOrigin(r, origin))) continue;
      const hop = remote.nextHop(r);
      if (hop === null || (trace !== null && trace.includes(`0/${hop}`))) continue;
      const l = remote.linkToward(r, priority);
      if (l === null) continue;
      const v = a.distribution === 'balanced' ? l.undeliveredCount + l.unsettled + cost : cost;
      if (v < bestValue) {
        best = l;
        bestValue = v;
      }
    }
    return best;
  }

  private rejectUnavailable(d: Delivery): void {
    if (d.settled) {
      this.stats.droppedPresettled++;
      return;
    }
    this.stats.rejectedDeliveries++;
    d.link.rejectedCount++;
    d.done = true;
    this.fx.settleIn(d, null, Made.RejectedUnavailable);
  }

  private noRoute(d: Delivery): void {
    const l = d.link;
    // qdrouterd keeps a sender's credit when its address loses its last destination; a delivery
    // that then finds none makes it drain the rest (an edge router's links excepted: its interior
    // tells it where destinations are).
    if (l.address !== null && !l.draining && !l.inProcess && l.edgeConn === null && l.granted > 0) {
      l.draining = true;
      l.granted = 0;
      // This delivery is not counted back (qdrouterd returns credit for deliveries it forwards).
      this.fx.drainCredit(l, Math.max(0, l.capacity - l.held - 1));
    }
    if (d.settled) {
      this.stats.droppedPresettled++;
      return;
    }
    this.stats.releasedNoRoute++;
    this.stats.releasedDeliveries++;
    d.link.releasedCount++;
    d.done = true;
    this.fx.settleIn(d, null, Made.Released);
  }

  /** Balanced: fewest outstanding (undelivered + unsettled); ties rotate. */
  private pickBalanced(a: Address, cs: CoreLink[]): CoreLink {
    const n = cs.length;
    const start = a.rr++ % n;
    let best = cs[start];
    let bestValue = best.undeliveredCount + best.unsettled;
    for (let k = 1; k < n && bestValue > 0; k++) {
      const c = cs[(start + k) % n];
      const v = c.undeliveredCount + c.unsettled;
      if (v < bestValue) {
        best = c;
        bestValue = v;
      }
    }
    return best;
  }

  /** Closest on a standalone router: every consumer is as close; rotate, preferring one that can take it now. */
  private pickClosest(a: Address, cs: CoreLink[]): CoreLink {
    const n = cs.length;
    const start = a.rr++ % n;
    for (let k = 0; k < n; k++) {
      const c = cs[(start + k) % n];
      if (c.undeliveredCount === 0 && this.fx.canSend(c)) return c;
    }
    return cs[start];
  }

  private enqueue(c: Copy): void {
    const out = c.out;
    if (out.undeliveredCount === 0 && this.fx.canSend(out)) {
      this.transmit(c);
      if (out.drain) this.pump(out);
      return;
    }
    out.undelivered.push(c);
  }

  private transmit(c: Copy): void {
    const out = c.out;
    const settled = c.delivery.settled || c.delivery.senderSettled || out.presettled;
    c.sent = true;
    c.io = this.fx.transmit(c, settled);
    this.stats.deliveriesOut++;
    out.deliveryCount++;
    if (out.interRouter) this.stats.deliveriesTransit++;
    else {
      this.stats.deliveriesEgress++;
      if (out.routeContainer) this.stats.deliveriesEgressRouteContainer++;
    }
    const a = c.delivery.address;
    if (a !== null) {
      if (out.interRouter) a.deliveriesTransit++;
      else a.deliveriesEgress++;
    }
    if (out.address) out.address.deliveriesOut++;
    if (settled) {
      out.presettledCount++;
      c.settled = true;
      if (!c.delivery.settled) {
        // A consumer that wants pre-settled deliveries gives no outcome: settle upstream
        // without one rather than invent it.
        this.copyOutcome(c, State.None, null, 0);
      }
    } else out.unsettled++;
    this.copyTransmittedOrDropped(c);
  }

  private copyTransmittedOrDropped(c: Copy): void {
    const d = c.delivery;
    if (--d.untransmitted === 0) {
      d.link.held--;
      if (!d.link.gone) this.markDirty(d.link);
    }
  }

  /** Sends what the consumer has credit for; completes a drain when nothing is left. */
  private pump(out: CoreLink): void {
    const q = out.undelivered;
    while (out.undeliveredHead < q.length && this.fx.canSend(out)) {
      const c = q[out.undeliveredHead];
      q[out.undeliveredHead++] = undefined as unknown as Copy;
      this.transmit(c);
    }
    if (out.undeliveredHead === q.length) {
      q.length = 0;
      out.undeliveredHead = 0;
    } else if (out.undeliveredHead > 1024 && out.undeliveredHead * 2 > q.length) {
      q.splice(0, out.undeliveredHead);
      out.undeliveredHead = 0;
    }
    if (out.drain && out.undeliveredCount === 0) {
      out.drain = false;
      this.fx.drainComplete(out);
    }
  }

  /**
   * The consumer updated a copy (qdrouterd's settlement rules, both directions kept apart):
   * - a terminal state counts towards the sender's outcome (multicast: once every copy has one,
   *   rejected > accepted > modified > released); it reaches the sender settled when every copy
   *   is settled, else unsettled, and the sender's settle then settles the copies (3-ack);
   * - a non-terminal state (received, or an extension state) of a single copy reaches the sender
   *   as given, unsettled; multicast ignores them;
   * - `settled`: the consumer settled its side.
   */
  onCopyOutcome(c: Copy, code: number, state: Buffer | null, settled: boolean): void {
    if (c.settled) return;
    const d = c.delivery;
    const terminal = code === State.Accepted || code === State.Rejected || code === State.Released || code === State.Modified;
    if (!terminal && !settled) {
      // A single copy (anycast) is the delivery's `copies` itself while the sender's is unsettled.
      if (d.copies instanceof Copy && !d.done && !d.senderSettled && state !== null) this.fx.updateIn(d, state, 0);
      return;
    }
    const first = !c.hasOutcome;
    if (first) {
      c.hasOutcome = true;
      countOutcome(c.out, code);
    }
    if (settled || d.senderSettled) {
      c.settled = true;
      c.out.unsettled--;
      // Nobody waits for an outcome the sender settled before: the copy settles now.
      if (!settled) this.fx.settleOut(c);
    }
    if (first) this.copyOutcome(c, code, state, 0);
    else if (c.settled) this.settleReported(d);
    // A settled copy frees room for balanced and may unblock the queue.
    if (c.out.undeliveredCount > 0) this.pump(c.out);
  }

  /** The sender holds this delivery's outcome unsettled: settle it once every copy is settled. */
  private settleReported(d: Delivery): void {
    if (!d.reported || d.senderSettled || !allSettled(d)) return;
    d.reported = false;
    d.copies = null;
    d.link.awaiting?.delete(d);
    this.fx.settleIn(d, d.bestState, d.bestMade as Made | 0);
  }

  /** A copy with an outcome is settled towards its consumer (it left): the sender's delivery settles after its last copy. */
  private copySettled(c: Copy): void {
    if (c.settled) return;
    c.settled = true;
    c.out.unsettled--;
    this.settleReported(c.delivery);
  }

  /**
   * The sender settled a delivery (after its outcome: 3-ack; or before it): copies whose consumer
   * has not settled are settled towards it; copies not yet sent go pre-settled.
   */
  onDeliverySettled(d: Delivery): void {
    if (d.senderSettled || d.settled) return;
    d.senderSettled = true;
    d.link.awaiting?.delete(d);
    const copies = d.copies;
    if (copies === null) return;
    d.copies = null;
    if (copies instanceof Copy) this.settleForSender(copies);
    else for (const c of copies) this.settleForSender(c);
  }

  /** The sender settled: a copy its consumer holds unsettled is settled (one not yet sent goes pre-settled). */
  private settleForSender(c: Copy): void {
    if (c.settled || !c.sent) return;
    c.settled = true;
    c.out.unsettled--;
    this.fx.settleOut(c);
    if (c.out.undeliveredCount > 0) this.pump(c.out);
  }

  private copyOutcome(c: Copy, code: number, state: Buffer | null, made: Made | 0): void {
    const d = c.delivery;
    if (d.settled || d.done || d.outstanding === 0) return;
    const eff = made === Made.Released ? State.Released : made === Made.ModifiedFailed ? State.Modified : code;
    if (!d.hasBest || rank(eff) > rank(d.best)) {
      d.hasBest = true;
      d.best = eff;
      d.bestState = state;
      d.bestMade = made;
    }
    if (--d.outstanding === 0) {
      d.done = true;
      countOutcome(d.link, d.best);
      const st = this.stats;
      if (d.best === State.Accepted) st.acceptedDeliveries++;
      else if (d.best === State.Rejected) st.rejectedDeliveries++;
      else if (d.best === State.Released) st.releasedDeliveries++;
      else if (d.best === State.Modified) st.modifiedDeliveries++;
      if (allSettled(d)) {
        d.copies = null;
        this.fx.settleIn(d, d.bestState, d.bestMade as Made | 0);
      } else {
        // A consumer has not settled: the sender gets the outcome unsettled and settles (3-ack).
        d.reported = true;
        (d.link.awaiting ??= new Set()).add(d);
        this.fx.updateIn(d, d.bestState, d.bestMade as Made | 0);
      }
    }
  }

  // ------------------------------------------------------------------ credit

  private markDirty(link: CoreLink): void {
    if (!link.dirty) {
      link.dirty = true;
      this.dirty.push(link);
    }
  }

  /** The I/O reports the credit an incoming link has left (after transfers consumed some). */
  onCreditConsumed(link: CoreLink, remaining: number): void {
    link.granted = remaining;
    if (remaining * 2 <= link.capacity) this.markDirty(link);
  }

  /**
   * Ends a batch of actions: issues credit to incoming links whose state changed. Credit is
   * topped up to capacity - held only once half of it is used, so a flow frame carries many
   * credits; it drops to 0 when the address loses its last consumer.
   */
  flush(): void {
    const list = this.dirty;
    for (let i = 0; i < list.length; i++) {
      const link = list[i];
      link.dirty = false;
      if (link.gone) continue;
      const a = link.address;
      const routable = a === null || (link.edgeConn === null ? a.consumers.length > 0 || this.hasRemote(a) : this.routableFrom(a, link.edgeConn));
      if (a !== null && link.edgeConn !== null && this.edgeAddress === null && routable !== link.edgeDest) {
        link.edgeDest = routable;
        this.fx.edgeDestinations?.(link, routable);
      }
      const want = routable ? Math.max(0, link.capacity - link.held) : 0;
      if (want === 0) {
        // Credit stays when destinations go (a delivery that finds none drains it: noRoute);
        // an edge's sender gives it back at once, as its proxy is unbound.
        if (link.granted > 0 && !routable && link.edgeConn !== null) {
          link.granted = 0;
          this.fx.grantCredit(link, 0);
        }
        continue;
      }
      if (link.granted === 0 || link.granted * 2 <= link.capacity || want - link.granted >= (link.capacity >>> 1)) {
        if (want > link.granted) {
          link.granted = want;
          link.draining = false;
          this.fx.grantCredit(link, want);
        }
      }
    }
    list.length = 0;
  }
}

/** Every copy of `d` is settled towards its consumer. */
function allSettled(d: Delivery): boolean {
  const cs = d.copies;
  if (cs === null) return true;
  if (cs instanceof Copy) return cs.settled;
  for (const c of cs) if (!c.settled) return false;
  return true;
}

/** Appends `link` to an address's consumers or senders, remembering its slot. */
function addTo(arr: CoreLink[], link: CoreLink): void {
  link.slot = arr.length;
  arr.push(link);
}

/**
 * Removes `link` from the list holding it in O(1): the last link takes its slot. The order of
 * consumers is not a promise (closest and balanced rotate over them). Returns false when the
 * link was not in `arr`.
 */
function removeFrom(arr: CoreLink[], link: CoreLink): boolean {
  const i = link.slot;
  if (i < 0 || i >= arr.length || arr[i] !== link) return false;
  const last = arr.pop() as CoreLink;
  if (last !== link) {
    arr[i] = last;
    last.slot = i;
  }
  link.slot = -1;
  return true;
}

/** Counts a terminal outcome on a link (management's acceptedCount...). */
function countOutcome(l: CoreLink, code: number): void {
  if (code === State.Accepted) l.acceptedCount++;
  else if (code === State.Rejected) l.rejectedCount++;
  else if (code === State.Released) l.releasedCount++;
  else if (code === State.Modified) l.modifiedCount++;
}
