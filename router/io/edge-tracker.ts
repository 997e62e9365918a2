/**
 * The interior side of qdrouterd's edge address tracking (edge_addr_tracking module): an edge
 * router attaches a receiving link from {@link EDGE_TRACKING_ADDRESS}; for every address the edge
 * sends to, the interior tells it on that link whether the address has destinations beyond that
 * edge (the core decides, `CoreEffects.edgeDestinations`). Messages wait here for the edge's
 * credit, in order; they go pre-settled, as qdrouterd's do.
 */
import type { Connection, Link } from '../../amqp/engine/connection';
import { encodeEdgeTracking } from '../protocol/edge-protocol';

/** Most updates held for one edge that gives no credit; past it the oldest go (the edge re-learns on reconnect). */
const MAX_PENDING = 100_000;

/** Per edge connection: its tracking link and the updates waiting for credit. */
interface Tracking {
  link: Link | null;
  pending: Buffer[];
}

/** Address-tracking links of the edge routers connected to this interior router. */
export class EdgeTracker {
  private readonly byConn = new Map<Connection, Tracking>();

  constructor(private readonly touch: (conn: Connection) => void) {}

  /** An edge attached its tracking link. */
  onAttached(link: Link): void {
    const t = this.entry(link.conn);
    t.link = link;
    this.pump(t);
  }

  /** Tells the edge on `conn` whether `key` (qdrouterd's hash key) has destinations beyond it. */
  send(conn: Connection, key: string, present: boolean): void {
    const t = this.entry(conn);
    if (t.pending.length >= MAX_PENDING) t.pending.shift();
    t.pending.push(encodeEdgeTracking({ key, present }));
    this.pump(t);
  }

  /** The edge gave credit on its tracking link. */
  onFlow(link: Link): void {
    const t = this.byConn.get(link.conn);
    if (t !== undefined && t.link === link) this.pump(t);
  }

  /** The tracking link went. */
  onLinkGone(link: Link): void {
    const t = this.byConn.get(link.conn);
    if (t !== undefined && t.link === link) t.link = null;
  }

  /** The edge connection closed. */
  onClosed(conn: Connection): void {
    this.byConn.delete(conn);
  }

  private entry(conn: Connection): Tracking {
    let t = this.byConn.get(conn);
    if (t === undefined) {
      t = { link: null, pending: [] };
      this.byConn.set(conn, t);
    }
    return t;
  }

  private pump(t: Tracking): void {
    const link = t.link;
    if (link === null || !link.attached) return;
    let sent = 0;
    while (sent < t.pending.length && link.conn.canSend(link)) link.conn.send(link, t.pending[sent++], true, null);
    if (sent === 0) return;
    t.pending.splice(0, sent);
    this.touch(link.conn);
  }
}
