/**
 * Inter-router connections, qdrouterd 1.19's way (see docs/decisions/0003-mesh-protocol.md):
 * the connector side begins 11 sessions and attaches 22 anonymous links in a fixed order
 * (control in/out with capability `qd.router`, then in/out per priority 0..9 with
 * `qd.router-data`); the listener side answers each attach in the order received and gives its
 * incoming links 250 credit. Control messages (HELLO, RA, LSR, LSU, MAU, MAR) travel pre-settled
 * on the control links; this module decodes them for the {@link MeshEngine}, forwards the ones in
 * transit (routed by next hop, flooded on first sighting), and sends what the engine asks.
 *
 * Data forwarding across hops is not wired yet: messages arriving on data links are delivered
 * to local consumers by their `x-opt-qd.to` / `to` (remote consumers learned through MAU are
 * tracked by the engine but not yet used by the forwarder).
 */
import { Connection, InDelivery, Link } from '../../amqp/engine/connection';
import { AttachFrame } from '../../amqp/performatives';
import { Writer } from '../../amqp/codec';
import { MessageScan, scanMessage, writeMessageWithAnnotations } from '../protocol/message';
import { phaseKey } from '../core/addresses';
import {
  ControlMessage as WireControl, HELLO_ADDRESS, MAU_ADDRESS, RA_ADDRESS, decodeControlMessage, encodeControlMessage,
  readRouterAnnotations, routerAddress, routerMaAddress, parseMobileKey, distributionForHint,
} from '../protocol/control';
import { ControlDestination, ControlMessage, MeshEngine, MeshSettings, computeMulticastHops } from '../core/mesh';
import { CoreLink, RemoteView } from '../core/core';
import { Distribution } from '../core/addresses';
import { Routes } from '../core/paths';
import { Logger } from '../../lib/log';

export const CAP_CONTROL = 'qd.router';
export const CAP_DATA = 'qd.router-data';
export const PRIORITIES = 10;
/**
 * Credit we give incoming inter-router data links. qdrouterd gives 250; a deeper window keeps a
 * multi-hop pipeline full (throughput is window / round trip per hop). Control links keep 250.
 */
export const DATA_LINK_CREDIT = 1000;

/** Per inter-router connection state. */
export class InterRouterConn {
  controlOut: Link | null = null;
  controlIn: Link | null = null;
  readonly dataOut: Link[] = [];
  readonly dataIn: Link[] = [];
  up = false;
  peerId: string | null = null;
  constructor(readonly id: number, readonly conn: Connection, readonly localCost: number, readonly isConnector: boolean) {}

  /** max(ours, the peer's qd.inter-router-cost), as qdrouterd. */
  get cost(): number {
    const remote = this.conn.remoteOpen?.properties?.['qd.inter-router-cost'];
    return typeof remote === 'number' && Number.isInteger(remote) ? Math.max(this.localCost, remote) : this.localCost;
  }
}

/** What the mesh glue needs from the router process. */
export interface InterRouterHost {
  touch(conn: Connection): void;
  /** The routing core's link for an inter-router data link we send on. */
  routerLink(link: Link): CoreLink;
  routesChanged(): void;
  /** A neighbour went silent on a connection that is still open (frozen router). */
  neighbourLost(irc: InterRouterConn): void;
  remoteAddress(routerId: string, key: string, distribution: Distribution, present: boolean): void;
  /** A remote router's link-route key (class C, D, E or F) appeared or went. */
  remoteLinkRoute?(routerId: string, key: string, present: boolean): void;
  /** Routes a message that arrived on a data link (by x-opt-qd.to, else properties.to). */
  deliverLocally(link: Link, d: InDelivery): void;
}

function classify(a: AttachFrame): 'control' | 'data' | null {
  // The peer's terminus that names our side: target for its sender, source for its receiver.
  const t = a.role ? a.source : a.target;
  const caps = t?.capabilities ?? [];
  if (caps.includes(CAP_CONTROL)) return 'control';
  if (caps.includes(CAP_DATA)) return 'data';
  return null;
}

/** Binds inter-router connections to the mesh engine; the forwarder's view of the mesh. */
export class InterRouter implements RemoteView {
  readonly mesh: MeshEngine;
  private readonly conns = new Map<number, InterRouterConn>();
  private readonly byConnection = new Map<Connection, InterRouterConn>();
  private nextId = 1;
  private readonly w = new Writer(4096);
  private readonly scan = new MessageScan();
  private neighbourConns = new Map<string, number>();

  constructor(settings: MeshSettings, private readonly host: InterRouterHost, private readonly logger: Logger) {
    this.mesh = new MeshEngine(settings, {
      sendControl: (dest, msg) => this.sendControl(dest, msg),
      routesChanged: (routes, neighbours) => this.routesChanged(routes, neighbours),
      remoteAddressesChanged: (id, added, removed) => {
        this.logger.log('ROUTER_MA', 'debug', `router ${id}: +[${added.map((a) => a[0]).join(' ')}] -[${removed.join(' ')}]`);
        for (const [key, hint] of added) {
          const m = parseMobileKey(key);
          if (m && m.cls === 'M' && m.phase !== null && m.phase <= 9) this.host.remoteAddress(id, phaseKey(m.address, m.phase), distributionForHint(hint) ?? 'balanced', true);
          // An edge router's summary address (`_edge/<edge id>`): reached through the router it connects to.
          else if (m && m.cls === 'H') this.host.remoteAddress(id, `_edge/${m.address}`, 'balanced', true);
          else if (m && 'CDEF'.includes(m.cls)) this.host.remoteLinkRoute?.(id, key, true);
        }
        for (const key of removed) {
          const m = parseMobileKey(key);
          if (m && m.cls === 'M' && m.phase !== null && m.phase <= 9) this.host.remoteAddress(id, phaseKey(m.address, m.phase), 'balanced', false);
          else if (m && m.cls === 'H') this.host.remoteAddress(id, `_edge/${m.address}`, 'balanced', false);
          else if (m && 'CDEF'.includes(m.cls)) this.host.remoteLinkRoute?.(id, key, false);
        }
      },
      log: (level, msg) => this.logger.log('ROUTER_LS', level === 'trace' ? 'trace' : level, msg),
    });
  }

  /** Open properties for an inter-router connection (qdrouterd's, with our product). */
  static openProperties(cost: number, version: string): Record<string, unknown> {
    const p: Record<string, unknown> = { product: 'amqp-mesh', version, 'qd.annotations-version': 1 };
    // qdrouterd reads the cost only as an int32 and only sends it when above 1.
    if (cost > 1) p['qd.inter-router-cost'] = cost;
    return p;
  }

  /** The outgoing control link towards a neighbour (management's router.node routerLink), or null. */
  controlLinkTo(routerId: string): Link | null {
    const connId = this.mesh.connectionOf(routerId);
    return connId === null ? null : this.conns.get(connId)?.controlOut ?? null;
  }

  /** A control link (`qd.router`) of an inter-router connection (management's linkType router-control). */
  isControlLink(link: Link): boolean {
    const irc = this.byConnection.get(link.conn);
    return irc !== undefined && (link === irc.controlIn || link === irc.controlOut);
  }

  /** An inter-router data link's priority (0..9: its place in qdrouterd's attach order), else null. */
  dataLinkPriority(link: Link): number | null {
    const irc = this.byConnection.get(link.conn);
    if (irc === undefined) return null;
    const i = (link.isSender ? irc.dataOut : irc.dataIn).indexOf(link);
    return i < 0 ? null : i;
  }

  isInterRouter(conn: Connection): boolean {
    return this.byConnection.has(conn);
  }

  /** A new inter-router connection (before open). */
  register(conn: Connection, cost: number, isConnector: boolean): InterRouterConn {
    const irc = new InterRouterConn(this.nextId++, conn, cost, isConnector);
    this.conns.set(irc.id, irc);
    this.byConnection.set(conn, irc);
    return irc;
  }

  /** The peer's open arrived: the connector side creates the 22 links. */
  onOpen(conn: Connection): void {
    const irc = this.byConnection.get(conn);
    if (!irc) return;
    irc.peerId = conn.remoteOpen?.containerId ?? null;
    if (!irc.isConnector) return;
    const caps = (c: string) => ({ source: { type: 'source' as const, address: null, capabilities: [c] }, target: { type: 'target' as const, address: null, capabilities: [c] } });
    const control = conn.beginSession();
    const name = (k: string) => `qdlink.${irc.id}.${k}`;
    const cc = caps(CAP_CONTROL);
    irc.controlIn = conn.attach(control, name('control-in'), false, cc.source, cc.target);
    irc.controlOut = conn.attach(control, name('control-out'), true, cc.source, cc.target);
    const dc = caps(CAP_DATA);
    for (let p = 0; p < PRIORITIES; p++) {
      const s = conn.beginSession();
      irc.dataIn.push(conn.attach(s, name(`data-in-${p}`), false, dc.source, dc.target));
      irc.dataOut.push(conn.attach(s, name(`data-out-${p}`), true, dc.source, dc.target));
    }
  }

  /** Our attach was answered (connector side). */
  onLinkOpened(link: Link): void {
    const irc = this.byConnection.get(link.conn);
    if (!irc) return;
    if (!link.isSender) link.conn.setCredit(link, link === irc.controlIn ? 250 : DATA_LINK_CREDIT);
    this.maybeUp(irc);
  }

  /** The peer attached a link on an inter-router connection (listener side). */
  onAttach(link: Link, a: AttachFrame): boolean {
    const irc = this.byConnection.get(link.conn);
    if (!irc) return false;
    const kind = classify(a);
    if (kind === null) {
      link.refuse({ condition: 'qd:connection-role', description: 'Link attach forbidden on inter-router connection' }, a);
      return true;
    }
    // Answer in the order received: qdrouterd numbers data-link priorities by attach order.
    link.accept({}, a);
    if (kind === 'control') {
      if (link.isSender) irc.controlOut = link;
      else irc.controlIn = link;
    } else if (link.isSender) irc.dataOut.push(link);
    else irc.dataIn.push(link);
    if (!link.isSender) link.conn.setCredit(link, kind === 'control' ? 250 : DATA_LINK_CREDIT);
    this.maybeUp(irc);
    return true;
  }

  private maybeUp(irc: InterRouterConn): void {
    if (irc.up || !irc.controlIn?.attached || !irc.controlOut?.attached) return;
    irc.up = true;
    this.logger.log('ROUTER', 'info', `inter-router connection ${irc.id} to ${irc.peerId} up, cost ${irc.cost}`);
    this.mesh.onConnectionUp(irc.id, irc.cost, Date.now());
    this.host.touch(irc.conn);
  }

  /** The connection is gone. */
  onClosed(conn: Connection): void {
    const irc = this.byConnection.get(conn);
    if (!irc) return;
    this.byConnection.delete(conn);
    this.conns.delete(irc.id);
    if (irc.up) this.mesh.onConnectionDown(irc.id, Date.now());
  }

  /** A delivery on an inter-router link. Returns true when handled here. */
  onDelivery(link: Link, d: InDelivery): boolean {
    const irc = this.byConnection.get(link.conn);
    if (!irc) return false;
    if (link === irc.controlIn) {
      // The control link keeps its credit whatever happens to the message (qdrouterd does too).
      link.conn.setCredit(link, 250);
      this.onControlDelivery(irc, d);
      if (!d.settled) link.conn.updateIn(d, null, true);
      return true;
    }
    this.host.deliverLocally(link, d);
    return true;
  }

  private onControlDelivery(irc: InterRouterConn, d: InDelivery): void {
    let msg: WireControl;
    let ann;
    try {
      msg = decodeControlMessage(d.payload);
      ann = readRouterAnnotations(d.payload);
    } catch (e) {
      this.logger.log('ROUTER', 'warning', `dropped a malformed control message from ${irc.peerId}: ${(e as Error).message}`);
      return;
    }
    const now = Date.now();
    const to = ann.to ?? ann.propertiesTo ?? '';
    const trace = ann.trace ?? [];
    const m = msg as unknown as ControlMessage;
    if (msg.opcode === 'HELLO') {
      this.mesh.onHello(irc.id, m as Extract<ControlMessage, { opcode: 'HELLO' }>, now);
      return;
    }
    const path = to.replace(/^amqp:\/(\/[^/]*\/)?/, '').replace(/^\//, '');
    const parts = path.split('/');
    // _topo/0/all/qdrouter[.ma] (flooded) or _topo/0/<id>/qdrouter[.ma] (routed)
    if (parts[0] === '_topo' && parts[2] === 'all') {
      this.mesh.onControl(m, now);
      if (this.mesh.firstSighting(m, now)) this.forward(d.payload, trace, (peer) => !trace.includes(`0/${peer}`));
      return;
    }
    if (parts[0] === '_topo' && parts[2] !== undefined && parts[2] !== this.mesh.id) {
      const hop = this.mesh.routes.nextHops.get(parts[2]) ?? (this.neighbourConns.has(parts[2]) ? parts[2] : undefined);
      if (hop === undefined || trace.includes(`0/${hop}`)) return;
      this.forward(d.payload, trace, (peer) => peer === hop);
      return;
    }
    this.mesh.onControl(m, now);
  }

  /** Re-sends a control message on the control links of the neighbours `pick` accepts, our id appended to its trace. */
  private forward(payload: Buffer, trace: string[], pick: (peerId: string) => boolean): void {
    scanMessage(payload, 0, payload.length, this.scan, true);
    const me = `0/${this.mesh.id}`;
    let out: Buffer | null = null;
    for (const irc of this.conns.values()) {
      if (!irc.up || irc.peerId === null || !pick(irc.peerId) || !irc.controlOut) continue;
      if (out === null) {
        this.w.reset();
        writeMessageWithAnnotations(this.w, payload, 0, payload.length, this.scan, this.scan.ingress ?? trace[0] ?? me, [...trace, me]);
        out = this.w.take();
      }
      this.sendOn(irc, out);
    }
  }

  private sendOn(irc: InterRouterConn, payload: Buffer): void {
    const link = irc.controlOut!;
    if (!link.attached) return;
    // Control links are never starved of credit by qdrouterd; if ours is, the next HELLO/RA repeats.
    if (link.credit <= 0) return;
    irc.conn.send(link, payload, true, null);
    this.host.touch(irc.conn);
  }

  private sendControl(dest: ControlDestination, msg: ControlMessage): void {
    const m = msg as unknown as WireControl;
    if (dest.kind === 'connection') {
      const irc = this.conns.get(dest.connId);
      if (!irc?.up) return;
      this.w.reset();
      encodeControlMessage(m, HELLO_ADDRESS, this.mesh.id, this.w);
      this.sendOn(irc, this.w.take());
      return;
    }
    if (dest.kind === 'all') {
      this.w.reset();
      encodeControlMessage(m, msg.opcode === 'MAU' ? MAU_ADDRESS : RA_ADDRESS, this.mesh.id, this.w);
      const payload = this.w.take();
      for (const irc of this.conns.values()) if (irc.up) this.sendOn(irc, payload);
      return;
    }
    const to = msg.opcode === 'MAU' || msg.opcode === 'MAR' ? routerMaAddress(dest.id) : routerAddress(dest.id);
    const hop = this.mesh.routes.nextHops.get(dest.id) ?? (this.neighbourConns.has(dest.id) ? dest.id : this.mesh.connectionOf(dest.id) !== null ? dest.id : undefined);
    if (hop === undefined) return;
    const connId = this.neighbourConns.get(hop) ?? this.mesh.connectionOf(hop);
    const irc = connId === null || connId === undefined ? undefined : this.conns.get(connId);
    if (!irc?.up) return;
    this.w.reset();
    encodeControlMessage(m, to, this.mesh.id, this.w);
    this.sendOn(irc, this.w.take());
  }

  // ------------------------------------------------------------------ RemoteView (the forwarder's port)

  get self(): string {
    return this.mesh.id;
  }

  /** The data link for `priority` (0..9, qdrouterd's attach order), else the nearest lower one. */
  private dataLinkOf(connId: number | undefined, priority: number): CoreLink | null {
    const irc = connId === undefined ? undefined : this.conns.get(connId);
    if (!irc?.up) return null;
    for (let p = Math.min(priority, irc.dataOut.length - 1); p >= 0; p--) {
      const link = irc.dataOut[p];
      if (link?.attached) return this.host.routerLink(link);
    }
    return null;
  }

  linkToward(routerId: string, priority: number): CoreLink | null {
    const hop = this.mesh.routes.nextHops.get(routerId);
    return hop === undefined ? null : this.dataLinkOf(this.neighbourConns.get(hop), priority);
  }

  cost(routerId: string): number {
    return this.mesh.routes.costs.get(routerId) ?? Infinity;
  }

  nextHop(routerId: string): string | null {
    return this.mesh.routes.nextHops.get(routerId) ?? null;
  }

  /** The inter-router connection to the next hop toward `routerId`, or null (no route). */
  connectionToward(routerId: string): Connection | null {
    const hop = this.mesh.routes.nextHops.get(routerId);
    if (hop === undefined) return null;
    const id = this.neighbourConns.get(hop);
    const irc = id === undefined ? undefined : this.conns.get(id);
    return irc !== undefined && irc.up ? irc.conn : null;
  }

  /** True for a link attach on an inter-router connection that is not one of the mesh's own links. */
  isRoutedAttach(link: Link, a: AttachFrame): boolean {
    return this.byConnection.has(link.conn) && classify(a) === null;
  }

  isValidOrigin(routerId: string, origin: string): boolean {
    return this.mesh.routes.validOrigins.get(routerId)?.has(origin) ?? false;
  }

  multicastLinks(origin: string, trace: readonly string[], routers: Iterable<string>, priority: number): CoreLink[] {
    const out: CoreLink[] = [];
    for (const h of computeMulticastHops(this.mesh.id, origin, trace, this.mesh.routes, routers)) {
      const l = this.dataLinkOf(this.neighbourConns.get(h), priority);
      if (l !== null) out.push(l);
    }
    return out;
  }

  private routesChanged(routes: Routes, neighbours: ReadonlyMap<string, number>): void {
    const before = this.neighbourConns;
    this.neighbourConns = new Map(neighbours);
    for (const [id, connId] of before) {
      if (neighbours.has(id)) continue;
      const irc = this.conns.get(connId);
      if (irc?.up) {
        this.logger.log('ROUTER', 'warning', `neighbour ${id} silent on open connection ${connId}: returning its in-flight deliveries`);
        this.host.neighbourLost(irc);
      }
    }
    this.host.routesChanged();
    this.logger.log('ROUTER', 'info', `routes: ${[...routes.costs].map(([id, c]) => `${id} via ${routes.nextHops.get(id)} cost ${c}`).join(', ') || '(none)'}`);
  }

  /** Time passes for the control plane. */
  onTick(now: number): void {
    this.mesh.onTick(now);
  }

  /** Known routers (management, tests). */
  queryNodes(): ReturnType<MeshEngine['queryNodes']> {
    return this.mesh.queryNodes();
  }
}
