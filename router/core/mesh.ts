/**
 * The mesh's control plane, pure and synchronous: neighbour discovery (HELLO), link state
 * (RA, LSR, LSU), shortest paths, and mobile-address sync (MAU, MAR), following qdrouterd 1.19's
 * router engine so amqp-mesh and qdrouterd routers can share a mesh. Time is passed in; what it
 * decides leaves through {@link MeshEffects}.
 *
 * Vocabulary: a *connection* is an inter-router connection (an id the I/O chose); a *neighbour*
 * is a router whose HELLO on a connection lists us; a *node* is any router we know of.
 */
import { LinkStateRecord, Routes, computeRoutes } from './paths';

/** Timing, as qdrouterd's `router` entity (ms here). */
export interface MeshSettings {
  id: string;
  /** Boot time in seconds (qdrouterd: int(time.time())): a change tells peers we restarted. */
  instance: number;
  helloIntervalMs: number;
  helloMaxAgeMs: number;
  raIntervalMs: number;
  raIntervalFluxMs: number;
  remoteLsMaxAgeMs: number;
}

export const MESH_DEFAULTS = {
  helloIntervalMs: 1000,
  helloMaxAgeMs: 3000,
  raIntervalMs: 30_000,
  raIntervalFluxMs: 4000,
  remoteLsMaxAgeMs: 60_000,
} as const;

/** Control messages as plain objects (the wire codec maps them onto qdrouterd's encodings). */
export type ControlMessage =
  | { opcode: 'HELLO'; id: string; pv: number; area: string; instance: number; seen: string[] }
  | { opcode: 'RA'; id: string; pv: number; area: string; instance: number; ls_seq: number; mobile_seq: number }
  | { opcode: 'LSR'; id: string; pv: number; area: string }
  | { opcode: 'LSU'; id: string; pv: number; area: string; instance: number; ls_seq: number; ls: { id: string; area: string; ls_seq: number; peers: Record<string, number> } }
  | { opcode: 'MAU'; id: string; pv: number; area: string; mobile_seq: number; add?: string[]; del?: string[]; exist?: string[]; hints?: number[] }
  | { opcode: 'MAR'; id: string; pv: number; area: string; have_seq: number };

/** An unanswered mobile-address request is repeated after this long. */
export const MAR_RETRY_MS = 1000;
/** How soon an unanswered link-state request is repeated. */
export const LS_RETRY_MS = 300;

/** How long a flooded message is remembered to drop its duplicates (shorter than any RA interval). */
export const FLOOD_MEMORY_MS = 2000;

/** Where a control message goes: one connection (HELLO), one router (routed), or everyone (flooded). */
export type ControlDestination = { kind: 'connection'; connId: number } | { kind: 'router'; id: string } | { kind: 'all' };

/** What the mesh engine asks of the I/O layer and the routing core. */
export interface MeshEffects {
  sendControl(dest: ControlDestination, msg: ControlMessage): void;
  /** New shortest paths (and the neighbours' connections): the forwarder re-targets. */
  routesChanged(routes: Routes, neighbourConnections: ReadonlyMap<string, number>): void;
  /** A router's mobile addresses changed (keys such as `M0queue.a`, with treatment hints). */
  remoteAddressesChanged(routerId: string, added: ReadonlyArray<[string, number]>, removed: readonly string[]): void;
  log(level: 'error' | 'warning' | 'info' | 'debug' | 'trace', msg: string): void;
}

class Node {
  instance = 0;
  lsSeq = 0;
  peers = new Map<string, number>();
  lastSeen = 0;
  /** Set while the node is a neighbour: the connection its HELLOs come on. */
  connId: number | null = null;
  neighbourRefresh = 0;
  needLsRequest = true;
  /** When we last asked for its link state (the answer can be lost while routes converge). */
  lsRequestedAt = -Infinity;
  mobileSeq = 0;
  needMobileRequest = false;
  marOutstanding = false;
  marRequestedAt = -Infinity;
  readonly addresses = new Map<string, number>(); // key -> hint
  keepAlive = 0;
  constructor(readonly id: string) {}
}

/** The control-plane state machine of one router. */
export class MeshEngine {
  private readonly nodes = new Map<string, Node>();
  /** Per connection: routers heard from (id -> last HELLO time) and the connection's cost. */
  private readonly connections = new Map<number, { hellos: Map<string, number>; cost: number }>();
  private readonly ownPeers = new Map<string, number>();
  private lsSeq = 0;
  private lsChanged = false;
  private recompute = false;
  private lastHello = -Infinity;
  private lastRa = -Infinity;
  private lastChange = -Infinity;
  private mobileSeq = 0;
  private readonly localAddresses = new Map<string, number>();
  private readonly pendingAdd = new Map<string, number>();
  private readonly pendingDel = new Set<string>();
  routes: Routes = { nextHops: new Map(), costs: new Map(), validOrigins: new Map(), radius: 0 };
  /** Flooded messages seen recently (key -> time): a flood is forwarded once per wave. */
  private readonly sightings = new Map<string, number>();

  constructor(readonly settings: MeshSettings, private readonly fx: MeshEffects) {}

  get id(): string {
    return this.settings.id;
  }

  private header() {
    return { id: this.id, pv: 1, area: '0' };
  }

  // ------------------------------------------------------------------ actions

  /** An inter-router connection's control links are up; `cost` is max(ours, peer's). */
  onConnectionUp(connId: number, cost: number, now: number): void {
    this.connections.set(connId, { hellos: new Map(), cost });
    // Say hello at once rather than wait for the tick: neighbours form a second sooner.
    this.sendHello(connId, now);
  }

  /** The connection is gone: its neighbour is lost at once (qdrouterd's link_lost). */
  onConnectionDown(connId: number, now: number): void {
    this.connections.delete(connId);
    for (const n of this.nodes.values()) {
      if (n.connId === connId) this.loseNeighbour(n, now, 'connection lost');
    }
  }

  /** A HELLO arrived on a connection. */
  onHello(connId: number, m: Extract<ControlMessage, { opcode: 'HELLO' }>, now: number): void {
    const c = this.connections.get(connId);
    if (c === undefined) return;
    if (m.id === this.id) {
      if (m.instance !== this.settings.instance) this.fx.log('error', `Detected Neighbor Router with a Duplicate ID: ${m.id}`);
      return;
    }
    const first = !c.hellos.has(m.id);
    c.hellos.set(m.id, now);
    // A neighbour heard for the first time on this connection hears back at once, listing it,
    // rather than at our next periodic HELLO: two-way adjacency in one round trip instead of up
    // to two HELLO intervals, so a router is routable as soon as management lists it.
    if (first) this.sendHello(connId, now);
    if (!m.seen.includes(this.id)) return;
    // Two-way: a neighbour (qdrouterd's neighbor_refresh).
    const n = this.nodeFor(m.id, now);
    if (m.instance && n.instance && m.instance !== n.instance) this.restarted(n, m.instance);
    if (m.instance) n.instance = m.instance;
    if (n.connId !== connId) {
      n.connId = connId;
      n.needLsRequest = true;
      this.ownPeers.set(m.id, c.cost);
      this.changed(now);
      this.fx.log('info', `neighbour ${m.id} up on connection ${connId}, cost ${c.cost}`);
    }
    n.neighbourRefresh = now;
  }

  /** A routed or flooded control message for this router (not HELLO). */
  onControl(m: ControlMessage, now: number): void {
    if (m.id === this.id) return;
    if (m.pv > 1) return; // a newer protocol: ignored, as qdrouterd does
    switch (m.opcode) {
      case 'RA': {
        const n = this.nodeFor(m.id, now);
        if (m.instance && n.instance && m.instance !== n.instance) this.restarted(n, m.instance);
        if (m.instance) n.instance = m.instance;
        n.lastSeen = now;
        if (n.lsSeq < m.ls_seq || n.needLsRequest) {
          // Routed requests need a path; without one, the tick sends it once a path exists.
          n.needLsRequest = true;
          if (this.reachable(n)) this.requestLs(n, now);
        }
        if (n.mobileSeq < m.mobile_seq) n.needMobileRequest = true;
        return;
      }
      case 'LSR': {
        this.nodeFor(m.id, now);
        this.fx.sendControl({ kind: 'router', id: m.id }, this.lsu());
        return;
      }
      case 'LSU': {
        const n = this.nodeFor(m.id, now);
        if (m.instance && n.instance && m.instance !== n.instance) this.restarted(n, m.instance);
        if (m.instance) n.instance = m.instance;
        n.lastSeen = now;
        if (m.ls.ls_seq > n.lsSeq || (n.peers.size === 0 && m.ls.ls_seq === n.lsSeq)) {
          n.lsSeq = m.ls.ls_seq;
          n.peers = new Map(Object.entries(m.ls.peers));
          n.needLsRequest = false;
          for (const p of n.peers.keys()) if (p !== this.id) this.nodeFor(p, now);
          this.recompute = true;
          this.lastChange = now;
        }
        return;
      }
      case 'MAU':
        return this.onMau(m, now);
      case 'MAR': {
        if (!this.nodes.has(m.id)) return;
        if (m.have_seq < this.mobileSeq) this.fx.sendControl({ kind: 'router', id: m.id }, this.absoluteMau());
        return;
      }
      case 'HELLO':
        return;
    }
  }

  private onMau(m: Extract<ControlMessage, { opcode: 'MAU' }>, now: number): void {
    const n = this.nodes.get(m.id);
    if (n === undefined) {
      this.fx.log('debug', `MAU from unknown router ${m.id} dropped`);
      return;
    }
    n.lastSeen = now;
    // Routes first: a neighbour that just came up is routable before its addresses are published,
    // or an attach in between finds the address and no route (the tick would recompute later).
    this.publishPendingRoutes();
    if (m.exist !== undefined) {
      const hints = m.hints && m.hints.length === m.exist.length ? m.hints : null;
      const next = new Map(m.exist.map((k, i) => [k, hints ? hints[i] : 3]));
      const removed = [...n.addresses.keys()].filter((k) => !next.has(k));
      const added: [string, number][] = [...next].filter(([k]) => !n.addresses.has(k));
      n.addresses.clear();
      for (const [k, h] of next) n.addresses.set(k, h);
      n.mobileSeq = m.mobile_seq;
      n.marOutstanding = false;
      n.needMobileRequest = false;
      if (added.length || removed.length) this.fx.remoteAddressesChanged(n.id, added, removed);
      return;
    }
    // Only the next differential applies. After a gap the full list is asked for (MAR); while
    // that request is outstanding, a later differential must not be applied either: it would
    // advance our sequence past the missed one and the answer's absence would go unnoticed.
    if (m.mobile_seq !== n.mobileSeq + 1) {
      if (m.mobile_seq > n.mobileSeq && !n.marOutstanding) n.needMobileRequest = true;
      return;
    }
    const add = m.add ?? [];
    const del = m.del ?? [];
    const hints = m.hints && m.hints.length === add.length ? m.hints : null;
    const added: [string, number][] = [];
    add.forEach((k, i) => {
      if (!n.addresses.has(k)) added.push([k, hints ? hints[i] : 3]);
      n.addresses.set(k, hints ? hints[i] : 3);
    });
    const removed = del.filter((k) => n.addresses.delete(k));
    n.mobileSeq = m.mobile_seq;
    n.marOutstanding = false;
    n.needMobileRequest = false;
    if (added.length || removed.length) this.fx.remoteAddressesChanged(n.id, added, removed);
  }

  /**
   * True the first time a flooded control message (RA, MAU) is seen within
   * {@link FLOOD_MEMORY_MS}: only then is it forwarded on. Copies of one flood wave arrive
   * milliseconds apart over different paths and are dropped; the next periodic RA (seconds
   * later) floods again, so refreshes are never suppressed.
   */
  firstSighting(m: ControlMessage, now: number): boolean {
    let key: string;
    if (m.opcode === 'RA') key = `RA ${m.id} ${m.instance} ${m.ls_seq} ${m.mobile_seq}`;
    else if (m.opcode === 'MAU') key = `MAU ${m.id} ${m.mobile_seq} ${m.exist ? 'abs' : 'diff'}`;
    else return true;
    const t = this.sightings.get(key);
    if (t !== undefined && now - t < FLOOD_MEMORY_MS) return false;
    this.sightings.set(key, now);
    if (this.sightings.size > 100_000) this.sightings.clear();
    return true;
  }

  /** A mobile address gained its first local destination (`present`) or lost its last. */
  onLocalAddress(key: string, hint: number, present: boolean): void {
    if (present) {
      if (this.localAddresses.has(key)) return;
      this.localAddresses.set(key, hint);
      if (this.pendingDel.delete(key)) return;
      this.pendingAdd.set(key, hint);
    } else {
      if (!this.localAddresses.delete(key)) return;
      if (this.pendingAdd.delete(key)) return;
      this.pendingDel.add(key);
    }
  }

  /** Time passes: HELLOs, RAs, expirations, route computation, pending requests, MAUs. */
  onTick(now: number): void {
    const s = this.settings;
    for (const [k, t] of this.sightings) if (now - t >= FLOOD_MEMORY_MS) this.sightings.delete(k);
    // HELLO
    if (now - this.lastHello >= s.helloIntervalMs) {
      for (const connId of this.connections.keys()) this.sendHello(connId, now);
      this.lastHello = now;
    }
    // Neighbours whose HELLO refresh is too old (a frozen router keeps its TCP connection).
    for (const n of this.nodes.values()) {
      if (n.connId !== null && now - n.neighbourRefresh > s.helloMaxAgeMs) this.loseNeighbour(n, now, 'no HELLO within helloMaxAge');
    }
    // Remote link states that were not refreshed.
    for (const n of this.nodes.values()) {
      if (n.connId === null && n.peers.size > 0 && now - n.lastSeen > s.remoteLsMaxAgeMs) {
        n.peers.clear();
        this.recompute = true;
        this.lastChange = now;
      }
    }
    if (this.lsChanged) {
      this.lsChanged = false;
      this.lsSeq++;
      this.recompute = true;
      this.sendRa(now);
    }
    this.publishPendingRoutes();
    // Forget unreachable routers that nobody mentions (after 3 ticks, as qdrouterd).
    for (const n of [...this.nodes.values()]) {
      const mentioned = n.connId !== null || n.peers.size > 0 || this.routes.costs.has(n.id) || [...this.nodes.values()].some((o) => o.peers.has(n.id));
      if (mentioned) n.keepAlive = 0;
      else if (++n.keepAlive > 2) this.forget(n);
    }
    // Link-state and mobile requests to reachable routers.
    for (const n of this.nodes.values()) {
      if (!this.reachable(n)) continue;
      // An LSU answer is lost when the responder had no route back to us yet: ask again.
      if (n.peers.size === 0 && n.lsSeq === 0 && now - n.lsRequestedAt >= LS_RETRY_MS) n.needLsRequest = true;
      if (n.needLsRequest) this.requestLs(n, now);
      // A MAR answer is lost like an LSU one (no route back yet): ask again after a second.
      if (n.marOutstanding && now - n.marRequestedAt >= MAR_RETRY_MS) {
        n.marOutstanding = false;
        n.needMobileRequest = true;
      }
      if (n.needMobileRequest && !n.marOutstanding) {
        n.marRequestedAt = now;
        n.needMobileRequest = false;
        n.marOutstanding = true;
        this.fx.sendControl({ kind: 'router', id: n.id }, { opcode: 'MAR', ...this.header(), have_seq: n.mobileSeq });
      }
    }
    // Differential MAU, at most one per tick.
    if (this.pendingAdd.size > 0 || this.pendingDel.size > 0) {
      this.mobileSeq++;
      const add = [...this.pendingAdd.keys()];
      const hints = [...this.pendingAdd.values()];
      const del = [...this.pendingDel];
      this.pendingAdd.clear();
      this.pendingDel.clear();
      this.fx.sendControl({ kind: 'all' }, { opcode: 'MAU', ...this.header(), mobile_seq: this.mobileSeq, hints, add, del });
      this.sendRa(now);
    }
    // Periodic RA: every raInterval, or raIntervalFlux while the topology is changing.
    const flux = now - this.lastChange < 2 * s.raIntervalFluxMs;
    if (now - this.lastRa >= (flux ? s.raIntervalFluxMs : s.raIntervalMs)) this.sendRa(now);
  }

  // ------------------------------------------------------------------ internals

  private sendHello(connId: number, now: number): void {
    const c = this.connections.get(connId);
    if (c === undefined) return;
    for (const [id, t] of c.hellos) if (now - t > this.settings.helloMaxAgeMs) c.hellos.delete(id);
    this.fx.sendControl({ kind: 'connection', connId }, { opcode: 'HELLO', ...this.header(), instance: this.settings.instance, seen: [...c.hellos.keys()] });
  }

  private sendRa(now: number): void {
    this.lastRa = now;
    this.fx.sendControl({ kind: 'all' }, { opcode: 'RA', ...this.header(), instance: this.settings.instance, ls_seq: this.lsSeq, mobile_seq: this.mobileSeq });
  }

  private lsu(): ControlMessage {
    return {
      opcode: 'LSU', ...this.header(), instance: this.settings.instance, ls_seq: this.lsSeq,
      ls: { id: this.id, area: '0', ls_seq: this.lsSeq, peers: Object.fromEntries(this.ownPeers) },
    };
  }

  private absoluteMau(): ControlMessage {
    return { opcode: 'MAU', ...this.header(), mobile_seq: this.mobileSeq, exist: [...this.localAddresses.keys()], hints: [...this.localAddresses.values()] };
  }

  private requestLs(n: Node, now: number): void {
    n.needLsRequest = false;
    n.lsRequestedAt = now;
    this.fx.sendControl({ kind: 'router', id: n.id }, { opcode: 'LSR', ...this.header() });
  }

  private reachable(n: Node): boolean {
    return n.connId !== null || this.routes.nextHops.has(n.id);
  }

  private nodeFor(id: string, now: number): Node {
    let n = this.nodes.get(id);
    if (n === undefined) {
      n = new Node(id);
      n.lastSeen = now;
      this.nodes.set(id, n);
    }
    return n;
  }

  private changed(now: number): void {
    this.lsChanged = true;
    this.lastChange = now;
  }

  private loseNeighbour(n: Node, now: number, why: string): void {
    this.fx.log('info', `neighbour ${n.id} lost: ${why}`);
    n.connId = null;
    if (this.ownPeers.delete(n.id)) this.changed(now);
    this.recompute = true;
  }

  /** A peer restarted: its old state and addresses are void. */
  private restarted(n: Node, instance: number): void {
    this.fx.log('info', `router ${n.id} restarted (instance ${n.instance} -> ${instance})`);
    n.instance = instance;
    n.lsSeq = 0;
    n.peers.clear();
    n.needLsRequest = true;
    n.mobileSeq = 0;
    n.needMobileRequest = true;
    n.marOutstanding = false;
    this.flushAddresses(n);
    this.recompute = true;
  }

  private flushAddresses(n: Node): void {
    if (n.addresses.size === 0) return;
    const removed = [...n.addresses.keys()];
    n.addresses.clear();
    this.fx.remoteAddressesChanged(n.id, [], removed);
  }

  private forget(n: Node): void {
    this.nodes.delete(n.id);
    this.flushAddresses(n);
    this.fx.log('info', `router ${n.id} forgotten`);
  }

  /** Recomputes and publishes routes when a link state (ours, or another router's) changed since the last time. */
  private publishPendingRoutes(): void {
    if (!this.recompute && !this.lsChanged) return;
    this.recompute = false;
    this.computeAndPublish();
  }

  private computeAndPublish(): void {
    const collection = new Map<string, LinkStateRecord>();
    collection.set(this.id, { peers: this.ownPeers });
    for (const n of this.nodes.values()) if (n.peers.size > 0) collection.set(n.id, { peers: n.peers });
    this.routes = computeRoutes(this.id, collection);
    const neighbours = new Map<string, number>();
    for (const n of this.nodes.values()) if (n.connId !== null) neighbours.set(n.id, n.connId);
    this.fx.routesChanged(this.routes, neighbours);
  }

  // ------------------------------------------------------------------ reads (management, tests)

  /** Known routers with their state. */
  queryNodes(): { id: string; neighbour: boolean; nextHop: string | null; cost: number | null; lsSeq: number; mobileSeq: number; addresses: string[]; instance: number; linkState: string[]; validOrigins: string[] }[] {
    return [...this.nodes.values()].map((n) => ({
      id: n.id,
      instance: n.instance,
      linkState: [...n.peers.keys()],
      validOrigins: [...(this.routes.validOrigins.get(n.id) ?? [])],
      neighbour: n.connId !== null,
      nextHop: this.routes.nextHops.get(n.id) ?? null,
      cost: this.routes.costs.get(n.id) ?? null,
      lsSeq: n.lsSeq,
      mobileSeq: n.mobileSeq,
      addresses: [...n.addresses.keys()],
    }));
  }

  /** This router's neighbours (its own link state). */
  ownNeighbours(): string[] {
    return [...this.ownPeers.keys()];
  }

  /** The connection a neighbour is on, or null. */
  connectionOf(routerId: string): number | null {
    return this.nodes.get(routerId)?.connId ?? null;
  }
}

/**
 * The neighbours a multicast data message from `origin` goes to next from `self`: the next hops
 * towards the `routers` that have consumers, for each of which `origin` is a valid origin (so
 * every router gets one copy, even in meshes with loops), never to a router in the trace.
 * qdrouterd 1.19 multicasts by trace alone, which duplicates in meshes with loops.
 *
 * Control floods (RA, MAU) do not use this: a valid-origin tree computed from a stale link-state
 * database can withhold the very RA that would refresh it. They go to every neighbour not in the
 * trace, forwarded only on first sighting ({@link MeshEngine.firstSighting}).
 */
export function computeMulticastHops(self: string, origin: string, trace: readonly string[], routes: Routes, routers: Iterable<string>): Set<string> {
  const hops = new Set<string>();
  for (const r of routers) {
    if (r === origin) continue;
    const hop = routes.nextHops.get(r);
    if (hop === undefined || trace.includes(hop)) continue;
    if (origin === self || routes.validOrigins.get(r)?.has(origin)) hops.add(hop);
  }
  return hops;
}
