/**
 * Dialling out, shared by every connector of the router (inter-router, route-container) and,
 * later, the broker's: one {@link Connector} owns its candidates, its retry and failover policy
 * and its current transport (TCP or TLS with the profile's certificates and hostname check).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { ConnectorTransport } from './settings';
import { secureContextOptions } from './tls';
import type { Transport } from './transport';

/** Where to dial. */
export interface Endpoint {
  host: string;
  port: number;
}

/** When to dial again after a connection ended (or never started). */
export interface RetryPolicy {
  /** Move to the next candidate after each failure (failover), or stay on the current one. */
  rotate: boolean;
  /** Delay before attempt number `attempt` (0 after a connection that was up). */
  delayMs(attempt: number): number;
}

/** Inter-router connectors: 1 s, 2 s, 4 s, then every 5 s; a connection that was up starts over. */
export const BACKOFF: RetryPolicy = { rotate: false, delayMs: (attempt) => Math.min(5000, 1000 * 2 ** Math.min(attempt, 3)) };
/** Broker connectors: the next candidate every second, round robin. */
export const FAILOVER_EVERY_SECOND: RetryPolicy = { rotate: true, delayMs: () => 1000 };

/** What the owner of a connector does with its transports. */
export interface ConnectorHandlers {
  /** A transport is being dialled: make its engine and attach it (the engine starts on {@link onUp}). */
  onDial(t: Transport, target: Endpoint): void;
  /** The transport is ready (TCP connected, TLS verified): start the engine. */
  onUp(target: Endpoint): void;
  /** The transport ended (`wasUp`: its connection had opened); the connector dials `next` after `delayMs` unless stopped meanwhile. */
  onDown(target: Endpoint, wasUp: boolean, next: Endpoint, delayMs: number): void;
  /** A transport error (refused, reset, certificate): for the log. */
  onError(target: Endpoint, e: Error, wasUp: boolean): void;
}

/** Opens one transport to `target`; `onUp` runs once it can carry AMQP. */
export function dial(target: Endpoint, t: ConnectorTransport, onUp: () => void): Transport {
  const peer = `${target.host}:${target.port}`;
  if (t.tls === null) {
    const socket = net.connect({ host: target.host, port: target.port, noDelay: true });
    socket.once('connect', onUp);
    return { kind: 'tcp', stream: socket, peer, externalId: null };
  }
  const socket = tls.connect({
    host: target.host,
    port: target.port,
    ...secureContextOptions(t.tls),
    servername: net.isIP(target.host) ? undefined : target.host,
    rejectUnauthorized: true,
    checkServerIdentity: t.verifyHostname ? tls.checkServerIdentity : () => undefined,
  });
  socket.setNoDelay(true);
  socket.once('secureConnect', onUp);
  return { kind: 'tls', stream: socket, peer, externalId: null };
}

/** One outgoing connection kept up: dial, and on loss dial again by its policy. */
export class Connector {
  /** Candidates in order (failover adds to them). */
  readonly candidates: Endpoint[];
  private index = 0;
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  private transport: Transport | null = null;
  private stopped = false;
  /**
   * The current connection was opened by the peer (the owner's {@link onOpened}): only then does
   * a retry start over at the shortest delay. A transport that connects but is refused (a TLS
   * 1.3 client learns of a refused certificate only after its handshake) backs off.
   */
  isUp = false;

  constructor(
    readonly name: string,
    candidates: Endpoint[],
    private readonly settings: ConnectorTransport,
    private readonly policy: RetryPolicy,
    private readonly handlers: ConnectorHandlers,
  ) {
    this.candidates = [...candidates];
  }

  /** The candidate dialled now (or next). */
  get current(): Endpoint {
    return this.candidates[this.index % this.candidates.length];
  }

  /** Dials now. */
  start(): void {
    if (this.stopped || this.transport !== null) return;
    const target = this.current;
    const t = dial(target, this.settings, () => this.handlers.onUp(target));
    this.transport = t;
    t.stream.on('error', (e) => this.handlers.onError(target, e, this.isUp));
    t.stream.on('close', () => {
      const up = this.isUp;
      this.transport = null;
      this.isUp = false;
      if (this.stopped) return;
      if (!up) this.attempt++;
      if (this.policy.rotate) this.index = (this.index + 1) % this.candidates.length;
      const delay = up ? (this.policy.rotate ? this.policy.delayMs(0) : 1000) : this.policy.delayMs(this.attempt - 1);
      this.handlers.onDown(target, up, this.current, delay);
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.timer = null;
        this.start();
      }, delay);
    });
    this.handlers.onDial(t, target);
  }

  /** The peer opened the AMQP connection: the connection counts as up (retries start over). */
  onOpened(): void {
    this.isUp = true;
    this.attempt = 0;
  }

  /** Adds a candidate (failover learnt from a peer); true when it was new. */
  addCandidate(e: Endpoint): boolean {
    if (this.candidates.some((c) => c.host === e.host && c.port === e.port)) return false;
    this.candidates.push(e);
    return true;
  }

  /** No more dialling; the current transport is destroyed. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.transport?.stream.destroy();
  }

  /** Stops redialling but leaves the current transport alone (it closes on its own terms). */
  stopRetrying(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
