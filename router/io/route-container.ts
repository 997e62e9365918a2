/**
 * Route-container connections (qdrouterd's `connector` with role `route-container`): the router's
 * connections to brokers, and the auto-links it owns on them.
 *
 * Failover: the candidates are the connector's own host:port, its `failoverUrls`, and whatever
 * the broker announces in its open frame's `failover-server-list` (Artemis's form). A lost or
 * refused connection moves to the next candidate, round robin, every second, as qdrouterd does
 * with Artemis pairs. Auto-links are re-attached on every new connection, so client links bound
 * to a waypoint stay attached while the broker pair fails over.
 *
 * A connection accepted on a route-container *listener* (a broker or service that connects in) is
 * served the same way, without a connector: its auto-links (the listener's, and those naming its
 * container-id) attach when it opens, and it goes when the connection does.
 */
import { Connection, Link } from '../../amqp/engine/connection';
import { Connector, FAILOVER_EVERY_SECOND, type Endpoint } from '../../amqp/transport/connector';
import { PLAIN_CONNECTOR, type ConnectorTransport } from '../../amqp/transport/settings';
import type { Transport } from '../../amqp/transport/transport';
import type { AttachFrame } from '../../amqp/performatives';
import { FAILOVER_SERVER_LIST, parseFailoverServerList } from '../../amqp/failover';
import { Logger } from '../../lib/log';

/** One `autoLink` entity. */
export interface AutoLinkSettings {
  name: string;
  address: string;
  direction: 'in' | 'out';
  phase: number;
  /** Broker-side address (default: `address`). */
  externalAddress?: string;
  /** Attach only on a connection whose peer has this container-id (qdrouterd's `containerId`). */
  containerId?: string;
}

/**
 * An `autoLink` naming a `connection` no route-container connector of this router has (yet):
 * accepted, as qdrouterd does, and reported `inactive`; a reload that adds the connector
 * attaches it.
 */
export interface UnboundAutoLink extends AutoLinkSettings {
  connection: string;
}

/** A `connector` with role route-container. */
export interface RouteContainerSettings {
  name: string;
  host: string;
  port: number;
  failoverUrls: { host: string; port: number }[];
  maxFrameSize: number;
  idleTimeoutSeconds: number;
  linkCapacity: number;
  sasl: { mechanism: 'ANONYMOUS' | 'PLAIN' | 'EXTERNAL' | null; user?: string; password?: string };
  /** The vhost whose `$connector` group limits what the peer may do on this connection (connector `policyVhost`). */
  policyVhost?: string;
  autoLinks: AutoLinkSettings[];
  /** TLS towards the broker (plain TCP when absent). */
  transport?: ConnectorTransport;
  /**
   * `normal`: a qdrouterd `connector` of role normal, only a connection the router keeps up (its
   * peer attaches links as any client does); no link route or auto-link uses it. Default
   * route-container.
   */
  role?: 'normal' | 'route-container';
}

/** Auto-link states as qdrouterd reports them (`operStatus`), plus `draining` while one is retired. */
export type AutoLinkState = 'inactive' | 'attaching' | 'active' | 'failed' | 'draining';

/** Connector states (qdrouterd's `connectionStatus` plus the failover detail). */
export type ConnectorState = 'connecting' | 'active' | 'failing-over';

/** What the router server provides. */
export interface RouteContainerHost {
  /** Makes an engine for an outgoing connection (the server is its handler) and tracks it. */
  newConnection(c: RouteContainerSettings, t: Transport, host: string): Connection;
  /** The connection has output. */
  touch(conn: Connection): void;
  /** An auto-link's broker end answered: bind it to the routing core. */
  autoLinkOpened(link: Link, a: AutoLinkSettings, capacity: number): void;
  /** The transport of a route-container connection closed (its links are gone). */
  connectionLost(conn: Connection): void;
  /** The connection became active (broker open received) or stopped being so. */
  containerState?(rc: RouteContainer, active: boolean, containerId: string | null): void;
}

class AutoLinkRuntime {
  state: AutoLinkState = 'inactive';
  link: Link | null = null;
  lastError: string | null = null;
  /** Removed from the configuration: an `in` link drains the broker queue before it goes. */
  retiring = false;
  /** Deliveries received since the last drain request. */
  sinceDrain = 0;
  drainAsked = false;
  /** A re-attach after the broker detached the link (qdrouterd's: 2 s, then every 5 s). */
  retryTimer: NodeJS.Timeout | null = null;
  retries = 0;
  constructor(readonly settings: AutoLinkSettings) {}

  cancelRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }
}

/** qdrouterd's auto-link re-attach delays after the peer detached it: the first, then each next. */
export const AUTO_LINK_FIRST_RETRY_MS = 2000;
export const AUTO_LINK_RETRY_MS = 5000;

/** Same auto-link (by what it does, not its name): the same address, direction, phase, external address and container. */
function sameAutoLink(a: AutoLinkSettings, b: AutoLinkSettings): boolean {
  return a.address === b.address && a.direction === b.direction && a.phase === b.phase && (a.externalAddress ?? a.address) === (b.externalAddress ?? b.address)
    && a.containerId === b.containerId;
}

/** One route-container connector and its failover state. */
export class RouteContainer {
  state: ConnectorState = 'connecting';
  /** Dials the candidates in order: configured, failoverUrls, then learned from the broker. Null: accepted on a listener. */
  private readonly connector: Connector | null;
  conn: Connection | null = null;
  autoLinks: AutoLinkRuntime[];
  /** The whole connector was removed: it goes once its `in` auto-links have drained. */
  retiring = false;
  private drainTimer: NodeJS.Timeout | null = null;
  /** Called once a retiring connector has drained and stopped. */
  onRetired: () => void = () => {};
  connects = 0;

  /**
   * A connection accepted on a route-container listener, served as a route container until it
   * closes ({@link onAcceptedClosed}); `settings.name` is the listener's.
   */
  static accepted(settings: RouteContainerSettings, host: RouteContainerHost, logger: Logger, conn: Connection): RouteContainer {
    const rc = new RouteContainer(settings, host, logger, false);
    rc.conn = conn;
    return rc;
  }

  /** True for a connection accepted on a route-container listener (no connector, no failover). */
  get accepted(): boolean {
    return this.connector === null;
  }

  constructor(readonly settings: RouteContainerSettings, private readonly host: RouteContainerHost, private readonly logger: Logger, dials = true) {
    this.autoLinks = settings.autoLinks.map((a) => new AutoLinkRuntime(a));
    this.connector = !dials ? null : new Connector(settings.name, [{ host: settings.host, port: settings.port }, ...settings.failoverUrls], settings.transport ?? PLAIN_CONNECTOR, FAILOVER_EVERY_SECOND, {
      onDial: (t, target) => {
        this.conn = this.host.newConnection(this.settings, t, target.host);
      },
      onUp: () => {
        const conn = this.conn;
        if (conn === null) return;
        conn.start();
        this.host.touch(conn);
      },
      onDown: (target, wasUp, next, delay) => this.onDown(target, wasUp, next, delay),
      onError: (target, e, wasUp) => this.logger.log('SERVER', wasUp || settings.transport?.tls ? 'info' : 'debug', `connector ${this.settings.name} (${target.host}:${target.port}): ${e.message}`),
    });
  }

  /** host:port candidates, in order. */
  get candidates(): readonly Endpoint[] {
    return this.connector?.candidates ?? [{ host: this.settings.host, port: this.settings.port }];
  }

  /** The candidate connected or dialled now (an accepted connection: its peer). */
  get current(): Endpoint {
    return this.connector?.current ?? { host: this.settings.host, port: this.settings.port };
  }

  start(): void {
    this.connector?.start();
  }

  /** No more reconnects; the connection itself is closed with the router's others (close frame). */
  stopReconnecting(): void {
    this.connector?.stopRetrying();
    if (this.drainTimer) clearInterval(this.drainTimer);
  }

  stop(): void {
    this.connector?.stop();
    if (this.drainTimer) clearInterval(this.drainTimer);
    for (const a of this.autoLinks) a.cancelRetry();
  }

  /** An accepted connection closed: its auto-links are gone with it, and so is this. */
  onAcceptedClosed(): void {
    if (this.state === 'active') this.host.containerState?.(this, false, null);
    this.state = 'connecting';
    for (const a of this.autoLinks) {
      a.link = null;
      if (a.state !== 'failed') a.state = 'inactive';
    }
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.conn = null;
  }

  /**
   * Applies a new auto-link list: new ones attach now (if connected); removed `out` links detach
   * at once (producers' messages go elsewhere); removed `in` links keep delivering what the
   * broker still holds to consumers, and detach once a drain finds the broker queue empty.
   */
  setAutoLinks(next: AutoLinkSettings[]): void {
    const keep: AutoLinkRuntime[] = [];
    for (const rt of this.autoLinks) {
      if (next.some((n) => sameAutoLink(n, rt.settings))) keep.push(rt);
      else this.retire(rt, keep);
    }
    const added = next.filter((n) => !this.autoLinks.some((rt) => !rt.retiring && sameAutoLink(n, rt.settings)));
    this.autoLinks = keep;
    for (const a of added) {
      const rt = new AutoLinkRuntime(a);
      this.autoLinks.push(rt);
      const peer = this.conn?.remoteOpen?.containerId ?? null;
      if (this.conn !== null && this.state === 'active' && (a.containerId === undefined || a.containerId === peer)) this.attachAutoLink(this.conn, rt);
    }
    if (this.conn) this.host.touch(this.conn);
    this.ensureDrainTimer();
  }

  /** The connector was removed from the configuration: drain, then stop. */
  retireAll(): void {
    this.retiring = true;
    const keep: AutoLinkRuntime[] = [];
    for (const rt of this.autoLinks) this.retire(rt, keep);
    this.autoLinks = keep;
    this.ensureDrainTimer();
    this.maybeRetired();
  }

  private retire(rt: AutoLinkRuntime, keep: AutoLinkRuntime[]): void {
    const s = rt.settings;
    if (s.direction === 'in' && rt.link !== null && rt.link.attached) {
      rt.retiring = true;
      rt.state = 'draining';
      rt.sinceDrain = 0;
      rt.drainAsked = false;
      keep.push(rt);
      this.logger.log('ROUTER', 'notice', `auto-link ${s.name}: removed; draining what the broker holds to the consumers before detaching`);
      return;
    }
    this.logger.log('ROUTER', 'notice', `auto-link ${s.name}: removed; detaching`);
    rt.cancelRetry();
    // Attached or still waiting for the container's answer: either way the container is told.
    if (rt.link !== null && !rt.link.detachSent) rt.link.conn.detachLink(rt.link, null);
  }

  private ensureDrainTimer(): void {
    if (this.drainTimer !== null || !this.autoLinks.some((a) => a.retiring)) return;
    this.drainTimer = setInterval(() => this.askDrain(), 500);
    this.drainTimer.unref();
  }

  /** Asks each draining link's broker for everything it holds, now. */
  private askDrain(): void {
    for (const rt of this.autoLinks) {
      const link = rt.link;
      if (!rt.retiring || link === null || !link.attached) continue;
      // Only with credit (there are consumers): otherwise the messages stay where they are.
      if (link.credit <= 0) continue;
      rt.sinceDrain = 0;
      rt.drainAsked = true;
      link.conn.setCredit(link, link.credit, true);
      this.host.touch(link.conn);
    }
  }

  /** True while some removed `in` auto-link is draining. */
  get draining(): boolean {
    return this.autoLinks.some((a) => a.retiring);
  }

  /** A message arrived on an auto-link (counts against a pending drain). */
  onDelivery(link: Link): void {
    const rt = this.autoLinks.find((x) => x.link === link);
    if (rt?.retiring) rt.sinceDrain++;
  }

  /** The broker answered a drain: nothing came since it was asked, so its queue is empty. */
  onSenderFlow(link: Link, drain: boolean, credit: number | null): void {
    const rt = this.autoLinks.find((x) => x.link === link);
    if (!rt?.retiring || !rt.drainAsked || !drain || (credit ?? 0) > 0) return;
    rt.drainAsked = false;
    if (rt.sinceDrain > 0) return;
    // Deliveries still held for slow consumers would go back to the broker with the link: wait.
    for (const d of link.session.unsettledIn.values()) if (d.link === link) return;
    this.logger.log('ROUTER', 'notice', `auto-link ${rt.settings.name}: drained; detaching`);
    link.conn.detachLink(link, null);
    this.host.touch(link.conn);
    this.autoLinks = this.autoLinks.filter((x) => x !== rt);
    this.maybeRetired();
  }

  private retired = false;

  private maybeRetired(): void {
    if (!this.retiring || this.retired || this.autoLinks.some((a) => a.retiring)) return;
    this.retired = true;
    this.logger.log('SERVER', 'notice', `connector ${this.settings.name}: removed and drained; closing`);
    this.stop();
    this.onRetired();
  }

  /** The connection ended: its links are gone; the connector dials `next` unless this one retired. */
  private onDown(target: Endpoint, wasUp: boolean, next: Endpoint, delay: number): void {
    const conn = this.conn;
    if (this.state === 'active') this.host.containerState?.(this, false, null);
    if (conn) this.host.connectionLost(conn);
    // A retired link cannot drain without its broker: whatever is left stays with the broker.
    this.autoLinks = this.autoLinks.filter((a) => !a.retiring);
    for (const a of this.autoLinks) {
      a.link = null;
      if (a.state !== 'failed') a.state = 'inactive';
    }
    if (this.retiring) {
      this.maybeRetired();
      return;
    }
    this.conn = null;
    const was = this.state;
    this.state = 'failing-over';
    void wasUp;
    this.logger.log('SERVER', was === 'active' ? 'notice' : 'info',
      `connector ${this.settings.name}: ${was === 'active' ? 'lost' : 'cannot connect to'} ${target.host}:${target.port}; failing over to ${next.host}:${next.port} in ${delay} ms`);
  }

  /** The broker's open arrived: learn its pair, attach the auto-links. */
  onOpen(conn: Connection): void {
    this.connector?.onOpened();
    this.state = 'active';
    this.connects++;
    const t = this.current;
    this.logger.log('SERVER', 'notice', `${this.accepted ? 'route-container listener' : 'connector'} ${this.settings.name}: active on ${t.host}:${t.port} (container ${conn.remoteOpen?.containerId ?? '?'})`);
    if (!this.accepted) this.learnFailover(conn.remoteOpen?.properties ?? null);
    if (this.settings.role === 'normal') return;
    this.host.containerState?.(this, true, conn.remoteOpen?.containerId ?? null);
    if (this.autoLinks.length === 0) return;
    this.session = conn.beginSession();
    const peer = conn.remoteOpen?.containerId ?? null;
    for (const a of this.autoLinks) {
      if (a.settings.containerId !== undefined && a.settings.containerId !== peer) continue;
      this.attachAutoLink(conn, a);
    }
    this.host.touch(conn);
  }

  private session: import('../../amqp/engine/connection').Session | null = null;

  private attachAutoLink(conn: Connection, a: AutoLinkRuntime): void {
    if (this.session === null || this.session.conn !== conn || this.session.ended) this.session = conn.beginSession();
    const s = a.settings;
    const ext = s.externalAddress ?? s.address;
    // qdrouterd's link names: "qdlink." + a unique id; ours name the auto-link.
    const name = `amqp-mesh.autolink.${s.name}`;
    const out = s.direction === 'out';
    a.link = conn.attach(
      this.session,
      name,
      out,
      out ? { type: 'source', address: s.address } : { type: 'source', address: ext },
      out ? { type: 'target', address: ext } : { type: 'target', address: s.address },
      // RabbitMQ refuses rcv-settle-mode second; first is what every broker takes.
      { sndSettleMode: 0, rcvSettleMode: 0 },
    );
    a.link.ctx = null;
    a.state = 'attaching';
    this.logger.log('ROUTER', 'info', `auto-link ${s.name} (${s.direction} ${s.address} phase ${s.phase}): attaching on ${this.settings.name}`);
  }

  /** Adds the servers a broker announces (Artemis `failover-server-list`) to the candidates. */
  learnFailover(props: Record<string, unknown> | null): void {
    // Artemis's form (symbol keys, int port) or older amqp-mesh brokers' (string keys).
    for (const { host, port } of parseFailoverServerList(props?.[FAILOVER_SERVER_LIST])) {
      if (this.connector === null || !this.connector.addCandidate({ host, port })) continue;
      this.logger.log('SERVER', 'info', `connector ${this.settings.name}: learnt failover server ${host}:${port} from the broker`);
    }
  }

  /** The broker answered one of our attaches; returns true when it was an auto-link. */
  onLinkOpened(link: Link, a: AttachFrame): boolean {
    const rt = this.autoLinks.find((x) => x.link === link);
    if (!rt) return false;
    // qdrouterd binds an auto-link only when the container's answer names the node (the target of
    // an `out` link, the source of an `in` one); an answer without it leaves it attaching, unused.
    const node = rt.settings.direction === 'out' ? a.target?.address : a.source?.address;
    if (node === null || node === undefined) {
      this.logger.log('ROUTER', 'warning', `auto-link ${rt.settings.name}: the container answered without a ${rt.settings.direction === 'out' ? 'target' : 'source'} address; not used`);
      return true;
    }
    rt.state = 'active';
    rt.lastError = null;
    rt.retries = 0;
    this.logger.log('ROUTER', 'info', `auto-link ${rt.settings.name}: active`);
    this.host.autoLinkOpened(link, rt.settings, this.settings.linkCapacity);
    return true;
  }

  /** An auto-link was refused or detached by the broker. */
  onLinkGone(link: Link, error: string | null): void {
    const rt = this.autoLinks.find((x) => x.link === link);
    if (!rt) return;
    rt.link = null;
    rt.state = error !== null ? 'failed' : 'inactive';
    rt.lastError = error;
    this.logger.log('ROUTER', error ? 'warning' : 'info', `auto-link ${rt.settings.name}: ${rt.state}${error ? ` (${error})` : ''}`);
    this.scheduleRetry(rt);
  }

  /**
   * The broker detached (or refused) an auto-link while the connection stays: attach it again
   * later, as qdrouterd does, so it comes back once the broker can serve it (a queue created, an
   * address made available).
   */
  private scheduleRetry(rt: AutoLinkRuntime): void {
    if (rt.retiring || this.retiring || this.conn === null || this.state !== 'active') return;
    rt.cancelRetry();
    const delay = rt.retries === 0 ? AUTO_LINK_FIRST_RETRY_MS : AUTO_LINK_RETRY_MS;
    rt.retries++;
    rt.retryTimer = setTimeout(() => {
      rt.retryTimer = null;
      const conn = this.conn;
      if (conn === null || this.state !== 'active' || rt.link !== null || rt.retiring || !this.autoLinks.includes(rt)) return;
      const peer = conn.remoteOpen?.containerId ?? null;
      if (rt.settings.containerId !== undefined && rt.settings.containerId !== peer) return;
      this.attachAutoLink(conn, rt);
      this.host.touch(conn);
    }, delay);
    rt.retryTimer.unref();
  }

  /** For management and logs. */
  status(): { name: string; state: ConnectorState; url: string; candidates: string[]; autoLinks: { name: string; state: AutoLinkState; lastError: string | null }[] } {
    return {
      name: this.settings.name,
      state: this.state,
      url: `${this.current.host}:${this.current.port}`,
      candidates: this.candidates.map((c) => `${c.host}:${c.port}`),
      autoLinks: this.autoLinks.map((a) => ({ name: a.settings.name, state: a.state, lastError: a.lastError })),
    };
  }
}
