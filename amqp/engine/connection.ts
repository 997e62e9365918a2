/**
 * Server side of one AMQP 1.0 connection as a pure state machine: bytes in through
 * {@link Connection.onBytes}, frames out into {@link Connection.out}, events to a
 * {@link ConnectionHandler}. No sockets, no timers: time is passed in.
 *
 * Unlike rhea, this engine never decodes message bodies (payloads stay byte slices), never opens
 * a link before the handler decides, settles per delivery (one unsettled delivery cannot starve
 * its session), passes delivery states through as encoded bytes, and coalesces dispositions into
 * ranges.
 */
import { describeFrameBody, describeOutput } from '../trace';
import { SCRAM_MECHANISMS, ScramError, ScramServer, type ScramMechanism, type StoredCredentials } from '../sasl/scram';
import { AmqpConditionError } from '../errors';
import { DecodeError, Writer } from '../codec';
import { FRAME_AMQP, FRAME_SASL, FrameParser, FramingError, MIN_MAX_FRAME_SIZE, SASL_HEADER, AMQP_HEADER } from '../frames';
import {
  AmqpError, AttachFrame, D, SaslCode, TerminusOut, decodeAttach, decodeBegin, decodeDetach, decodeEndOrClose,
  decodeFlow, decodeOpen, decodeSaslInit, decodeSaslResponse, writeSaslChallenge, endFrame, fieldBinary, fieldBool, fieldIsNull, fieldRaw, fieldUint, OpenFrame,
  encodeRejected, scan, scanPerformative, stateCode, writeAttach, writeBegin, writeClose, writeDetach, writeDisposition, writeEnd,
  writeFlow, writeHeartbeat, writeOpen, writeSaslMechanisms, writeSaslOutcome, beginFrame, fieldValue, writeSaslInit,
} from '../performatives';

/**
 * A byte budget several connections draw on together: what they may hold, in total, of
 * incomplete (multi-frame) deliveries. Counts what is charged now; connections release their
 * share as deliveries complete, abort or go with their link, session or connection.
 */
export class ByteBudget {
  /** Bytes charged now. */
  used = 0;
  constructor(public limit: number) {}
}

/** Default per connection for {@link ConnectionOptions.maxIncompleteBytes}: 128 MiB. */
export const DEFAULT_MAX_INCOMPLETE_BYTES = 128 * 1024 * 1024;

/**
 * The process-wide budget for incomplete deliveries (512 MiB), shared by every connection that
 * does not name its own: the router's or broker's listeners and connectors alike. Per-connection
 * caps alone would let enough connections together exhaust the heap.
 */
export const PROCESS_INCOMPLETE_BUDGET = new ByteBudget(512 * 1024 * 1024);

/**
 * What an incomplete delivery is charged per frame it took, beyond its bytes: each piece is a
 * Buffer view (an object on the heap) kept until the delivery completes.
 */
const PIECE_OVERHEAD = 128;

/** Limits and identity of the local end. */
export interface ConnectionOptions {
  containerId: string;
  maxFrameSize: number;
  /** Highest channel number the peer may use (maxSessions - 1). */
  channelMax: number;
  /** Our idle timeout in ms (0 = none); advertised in open, enforced on input. */
  idleTimeoutMs: number;
  /** Largest message accepted on an incoming link, bytes. */
  maxMessageSize: number;
  /**
   * Accept transfers beyond the credit granted instead of detaching the link: for brokers that
   * count credit loosely (RabbitMQ 3.10's AMQP 1.0 plugin treats each flow's link-credit as
   * credit from now on, ignoring what it has in flight), as Proton-C and qdrouterd accept them.
   * Counted in `creditOverruns` (the router logs the count when the connection closes). Only for route-container connections; clients are held to it.
   */
  tolerateCreditOverrun?: boolean;
  /** Links per session. */
  handleMax: number;
  /** SASL: mechanisms offered; empty = SASL not offered (plain AMQP only). */
  saslMechanisms: string[];
  /** Require a SASL exchange (listener authenticatePeer). */
  requireSasl: boolean;
  /** Verifies PLAIN credentials; returns true when valid. */
  checkPlain?: (user: string, password: string) => boolean;
  /** A user's stored SCRAM credentials (SCRAM-SHA-256, SCRAM-SHA-1), or undefined when unknown. */
  scramCredentials?: (user: string) => StoredCredentials | undefined;
  /** The server's SCRAM nonce (default: random); fixed only where a test replays a recorded exchange. */
  scramNonce?: () => string;
  /**
   * SASL EXTERNAL: the identity the transport established (a verified client certificate's uid),
   * or null when it established none (EXTERNAL then fails).
   */
  externalId?: string | null;
  /**
   * Output the engine may hold before links stop sending deliveries (bytes; default 1 MiB): bounds
   * what one turn can queue for a peer that grants much credit but does not read.
   */
  maxPendingOutput?: number;
  offeredCapabilities: string[];
  /** Capabilities asked of the peer in our open (none by default). */
  desiredCapabilities?: string[];
  properties: Record<string, unknown>;
  /** Incoming session window in frames. */
  incomingWindow: number;
  /**
   * Bytes of incomplete multi-frame deliveries this connection may hold at once (default
   * {@link DEFAULT_MAX_INCOMPLETE_BYTES}). Past it the connection is closed with
   * amqp:resource-limit-exceeded: the peer as a whole holds more than its share.
   */
  maxIncompleteBytes?: number;
  /**
   * The budget shared with other connections (default {@link PROCESS_INCOMPLETE_BUDGET}). A
   * delivery that would take it past its limit is dropped and its link detached with
   * amqp:resource-limit-exceeded: the connection may be within its own share, so it stays.
   */
  incompleteBudget?: ByteBudget;
  /**
   * Set for a connection we open (a connector): we send the protocol header and open first and
   * authenticate with SASL `mechanism` (ANONYMOUS, or PLAIN with `user`/`password`), or no SASL.
   */
  client?: { mechanism: 'ANONYMOUS' | 'PLAIN' | 'EXTERNAL' | null; user?: string; password?: string; hostname?: string };
  /**
   * An oversize message is rejected and the connection closed (amqp:connection:forced, "Message
   * size exceeded"), as qdrouterd does under a policy maxMessageSize; otherwise only its link is
   * detached (amqp:link:message-size-exceeded).
   */
  oversizeClosesConnection?: boolean;
  /** Protocol tracing (qdrouterd's PROTOCOL trace): every frame in and out, as Proton shows it. Unset: nothing is traced. */
  traceFrames?: (line: string) => void;
}

/** Events the engine raises; the router implements them. */
export interface ConnectionHandler {
  /**
   * The peer's open arrived. On an accepted connection, before ours is written: refuse (our open
   * then a close with the error follow) or lower our max-frame-size and channel-max (policy). On
   * one we made, only refuse (a close follows).
   */
  decideOpen?(conn: Connection): { refuse: AmqpError } | { maxFrameSize?: number; channelMax?: number } | null;
  /** The peer begins a session; `open` counts its sessions already open. An error refuses it (our begin, then an end with it). */
  decideBegin?(conn: Connection, open: number): AmqpError | null;
  /** An oversize message was refused on `link` (see {@link ConnectionOptions.oversizeClosesConnection}). */
  onOversize?(link: Link): void;
  /** SASL authentication failed (the peer gets sasl-outcome auth): the mechanism, the user claimed, why. */
  onAuthFailed?(conn: Connection, mechanism: string, user: string | null, reason: string): void;
  onOpen(conn: Connection): void;
  /** The peer attached a link; call link.accept() or link.refuse(). */
  onAttach(link: Link, attach: AttachFrame): void;
  /** The peer answered an attach we initiated ({@link Connection.attach}). */
  onLinkOpened?(link: Link, attach: AttachFrame): void;
  /** An outgoing link's credit or drain changed. */
  onFlow(link: Link, drain: boolean): void;
  /**
   * The peer sent a flow for a link on which it sends to us (e.g. its answer to a drain: the
   * delivery-count advanced over the credit it gave up). Relays need it; others ignore it.
   */
  onSenderFlow?(link: Link, deliveryCount: number | null, credit: number | null, drain: boolean): void;
  /** A whole message arrived on an incoming link. */
  onDelivery(link: Link, d: InDelivery): void;
  /** The peer updated an outgoing delivery. `state` is the encoded delivery-state or null. */
  onOutcome(d: OutDelivery, code: number, state: Buffer | null, settled: boolean): void;
  /** The peer's session window reopened: outgoing links of `session` may send again. */
  onSessionWritable(session: Session): void;
  /** The peer settled an incoming delivery (rcv-settle-mode second, or abort). */
  onInSettled(d: InDelivery): void;
  /** A link is gone: detached by the peer, by us, or with its session/connection. */
  onLinkGone(link: Link, error: AmqpError | null, reason: LinkGoneReason): void;
  /** The connection is finished (close exchanged or protocol error). */
  onClosed(conn: Connection, reason: CloseReason, error: AmqpError | null): void;
  log(level: 'error' | 'warning' | 'info' | 'debug' | 'trace', msg: string): void;
}

/**
 * `detach-answered`: only for links with {@link Link.answerDetachLater}, the peer's answer to our
 * detach came (or its session or connection went before answering).
 */
export type LinkGoneReason = 'detached' | 'refused' | 'session-ended' | 'connection-closed' | 'detach-answered';

/** Why a connection ended: stable, typed (nats-server style). */
export type CloseReason =
  | 'client-closed'
  | 'router-shutdown'
  | 'protocol-error'
  | 'framing-error'
  | 'auth-failed'
  | 'idle-timeout'
  | 'handshake-timeout'
  | 'socket-error'
  | 'socket-closed'
  /** Closed by an operator (management `connection` adminStatus=deleted). */
  | 'admin-closed'
  /** Refused by policy (qdrouterd's connection limits and vhost rules). */
  | 'policy-denied'
  /** A message over the policy's maxMessageSize. */
  | 'message-size-exceeded';

/** A message over maxMessageSize, with the delivery it belongs to. */
class OversizeError extends Error {
  constructor(message: string, readonly link: Link, readonly deliveryId: number) {
    super(message);
    this.name = 'OversizeError';
  }
}

/** Rejection raised inside frame handling; closes the connection with `condition`. */
export class ConnectionError extends AmqpConditionError {
  constructor(message: string, condition: string, readonly reason: CloseReason, options?: { cause?: unknown }) {
    super(message, condition, options);
    this.name = 'ConnectionError';
  }
}

/** A session-level violation; ends only that session. */
class SessionError extends AmqpConditionError {
  constructor(message: string, condition: string) {
    super(message, condition);
    this.name = 'SessionError';
  }
}

/** A link-level violation; detaches only that link. */
class LinkError extends AmqpConditionError {
  constructor(message: string, condition: string, readonly link: Link) {
    super(message, condition);
    this.name = 'LinkError';
  }
}

const enum ConnState {
  AwaitHeader,
  Sasl,
  AwaitAmqpHeader,
  AwaitOpen,
  Open,
  CloseSent,
  Closed,
}

/** A delivery received from the peer. */
export interface InDelivery {
  link: Link;
  id: number;
  settled: boolean;
  /** The message bytes (all transfer frames joined). */
  payload: Buffer;
  /** The application's state for this delivery (the engine never reads it). */
  ctx: unknown;
  /** The transfer's delivery-state as encoded (a transactional-state for a transactional send), or null. */
  state: Buffer | null;
  /** The delivery-tag, only on links with {@link Link.keepTags} set (a link route relays it), else null. */
  tag: Buffer | null;
}

/** A delivery we sent to the peer. */
export interface OutDelivery {
  link: Link;
  id: number;
  settled: boolean;
  ctx: unknown;
  /** Neighbours in the link's list of unsettled deliveries (engine-internal). */
  prev: OutDelivery | null;
  next: OutDelivery | null;
}

/** One session (a begin/end pair). */
export class Session {
  readonly links = new Map<number, Link>(); // by remote handle
  readonly unsettledIn = new Map<number, InDelivery>();
  readonly unsettledOut = new Map<number, OutDelivery>();
  nextIncomingId = 0;
  incomingWindow: number;
  nextOutgoingId = 0;
  /** Delivery-ids are their own sequence: a multi-frame delivery takes several transfer-ids. */
  nextDeliveryId = 0;
  /**
   * The delivery-id the peer's next new delivery must carry, or -1 before its first one. A
   * session's deliveries are numbered consecutively (as Proton checks: "sequencing error");
   * a gap or a repeat would make dispositions name the wrong deliveries.
   */
  nextIncomingDeliveryId = -1;
  remoteIncomingWindow = 0;
  remoteOutgoingWindow = 0;
  private nextHandle = 0;
  readonly freeHandles: number[] = [];
  ended = false;
  /** A multi-frame delivery waiting for the peer's session window. */
  stalled: { link: Link; id: number; payload: Buffer; off: number; settled: boolean } | null = null;
  /** Begun by the peer (not by us). */
  peerBegun = false;
  // pending coalesced disposition (ours to the peer)
  dispRole = false;
  dispFirst = -1;
  dispLast = -1;
  dispSettled = false;
  dispState: Buffer | null = null;

  /** Links we attached and the peer has not answered yet, by name. */
  /**
   * Links we attached that the peer has not answered, by name, oldest first: a router relaying
   * two clients' same-named links (link routes) attaches both on one session, and the peer's
   * answers come in order.
   */
  readonly pendingLinks = new Map<string, Link[]>();

  /** Our oldest unanswered link named `name` whose peer end has role `peerRole` (removed), if any. */
  takePending(name: string, peerRole: boolean): Link | undefined {
    const list = this.pendingLinks.get(name);
    if (list === undefined) return undefined;
    const i = list.findIndex((l) => l.isSender === peerRole);
    if (i < 0) return undefined;
    const [link] = list.splice(i, 1);
    if (list.length === 0) this.pendingLinks.delete(name);
    return link;
  }

  constructor(readonly conn: Connection, readonly channel: number, public remoteChannel: number, incomingWindow: number) {
    this.incomingWindow = incomingWindow;
  }

  allocHandle(): number {
    return this.freeHandles.length > 0 ? (this.freeHandles.pop() as number) : this.nextHandle++;
  }
}

/** One link; `isSender` is our role. */
export class Link {
  /** Our handle. */
  handle: number;
  /** Link credit the peer granted us (outgoing) or we granted (incoming). */
  credit = 0;
  deliveryCount = 0;
  drain = false;
  attached = false;
  detachSent = false;
  detachReceived = false;
  /** The peer's detach had closed=true (the link is ended, not suspended). */
  remoteClosed = false;
  /**
   * A multi-frame delivery is under way on this link (its last frame had more=true): the next
   * transfer continues it. Kept while the link is detaching too, so the delivery-id sequence
   * is followed through transfers that are dropped.
   */
  partialActive = false;
  /** Pieces of the multi-frame delivery being received (views into the frames), or null. */
  partial: Buffer[] | null = null;
  partialSize = 0;
  /** Bytes charged to the connection and the shared budget for `partial`. */
  partialCharged = 0;
  /** The buffer the last piece was a view of: each backing buffer is charged once. */
  partialBacking: ArrayBufferLike | null = null;
  partialId = 0;
  partialSettled = false;
  partialState: Buffer | null = null;
  partialTag: Buffer | null = null;
  /**
   * Keep each incoming delivery's tag ({@link InDelivery.tag}): set on links whose deliveries
   * are relayed with their own tag (link routes); other links skip the copy.
   */
  keepTags = false;
  /**
   * The peer's detach is answered by the application ({@link Connection.answerDetach}), not at
   * once, and the peer's answer to our detach is reported (`detach-answered`): a link route
   * answers each end with what the far end answered.
   */
  answerDetachLater = false;
  /** The peer detached and our answer waits (answerDetachLater); our handle stays in use until then. */
  detachAnswerPending = false;
  /** Router core's per-link state. */
  ctx: unknown = null;
  /** Address the link is bound to (for logs). */
  address: string | null = null;
  sndSettleMode = 0;
  rcvSettleMode = 0;
  /**
   * Incoming links: the highest delivery-count + credit we ever granted. Transfers the sender
   * made against credit we later revoked are still within it and are accepted (AMQP 2.6.7).
   */
  grantedLimit = 0;
  /** Our unsettled outgoing deliveries on this link, oldest first (also in the session's map). */
  outHead: OutDelivery | null = null;
  outTail: OutDelivery | null = null;

  constructor(
    readonly session: Session,
    readonly name: string,
    public remoteHandle: number,
    readonly isSender: boolean,
  ) {
    this.handle = session.allocHandle();
  }

  get conn(): Connection {
    return this.session.conn;
  }

  /** Completes the attach: echoes the peer's termini unless replacements are given. */
  accept(opts: { source?: TerminusOut; target?: TerminusOut; rcvSettleMode?: number; sndSettleMode?: number; initialDeliveryCount?: number }, attach: AttachFrame): void {
    this.conn.writeAttachReply(this, attach, opts);
    this.attached = true;
  }

  /**
   * Removes and returns every unsettled delivery we sent on this link (oldest first), e.g. to
   * report them lost when the link goes. Linear in their number, whatever the session holds.
   */
  takeUnsettledOut(): OutDelivery[] {
    const out: OutDelivery[] = [];
    const map = this.session.unsettledOut;
    for (let d = this.outHead; d !== null; ) {
      const next = d.next;
      d.prev = d.next = null;
      if (map.get(d.id) === d) map.delete(d.id);
      out.push(d);
      d = next;
    }
    this.outHead = this.outTail = null;
    return out;
  }

  /** Refuses the attach: attach with a null terminus, then detach with `error` (part 2, 2.6.3). */
  refuse(error: AmqpError, attach: AttachFrame): void {
    this.conn.writeAttachReply(this, attach, { source: this.isSender ? null : undefined, target: this.isSender ? undefined : null });
    this.conn.detachLink(this, error);
  }
}

/** Appends `d` to its link's list of unsettled outgoing deliveries. */
function linkOut(d: OutDelivery): void {
  const link = d.link;
  d.prev = link.outTail;
  d.next = null;
  if (link.outTail !== null) link.outTail.next = d;
  else link.outHead = d;
  link.outTail = d;
}

/** Removes `d` from its link's list (no-op when it is not in it). */
function unlinkOut(d: OutDelivery): void {
  const link = d.link;
  if (d.prev !== null) d.prev.next = d.next;
  else if (link.outHead === d) link.outHead = d.next;
  else return;
  if (d.next !== null) d.next.prev = d.prev;
  else link.outTail = d.prev;
  d.prev = d.next = null;
}

/**
 * The engine. Feed `onBytes`; after each batch call `takeOutput()` and write what it returns.
 */
export class Connection {
  readonly w = new Writer(64 * 1024);
  private readonly parser: FrameParser;
  private state = ConnState.AwaitHeader;
  private readonly sessions = new Map<number, Session>(); // by remote channel
  private readonly localChannels: (Session | undefined)[] = [];
  remoteOpen: OpenFrame | null = null;
  /** The peer's max-frame-size, bounding what we send. */
  peerMaxFrameSize = MIN_MAX_FRAME_SIZE;
  private peerIdleTimeoutMs = 0;
  private lastInput = 0;
  private lastOutput = 0;
  closed = false;
  closeReason: CloseReason | null = null;
  /** SASL identity (ANONYMOUS or the PLAIN user). */
  user: string | null = null;
  /** The SASL mechanism the peer authenticated with (server side), or null. */
  saslMechanism: string | null = null;
  /** Set by the I/O layer while the socket's write buffer is over its high-water mark. */
  writeBlocked = false;
  /** Router-side per-connection state. */
  ctx: unknown = null;
  /** Deliveries in/out, for stats. */
  deliveriesIn = 0;
  deliveriesOut = 0;
  /** Transfers accepted beyond the credit granted (see {@link ConnectionOptions.tolerateCreditOverrun}). */
  creditOverruns = 0;
  /** Bytes charged for incomplete deliveries on this connection (see {@link ConnectionOptions.maxIncompleteBytes}). */
  incompleteBytes = 0;
  private readonly maxIncomplete: number;
  private readonly budget: ByteBudget;

  private readonly maxPendingOutput: number;


  /** Every link of every session (management reads these). */
  *allLinks(): IterableIterator<Link> {
    for (const s of this.sessions.values()) yield* s.links.values();
  }

  constructor(readonly opts: ConnectionOptions, readonly handler: ConnectionHandler, now: number) {
    this.maxPendingOutput = opts.maxPendingOutput ?? 1 << 20;
    this.parser = new FrameParser(this, Math.max(opts.maxFrameSize, MIN_MAX_FRAME_SIZE));
    this.maxIncomplete = opts.maxIncompleteBytes ?? DEFAULT_MAX_INCOMPLETE_BYTES;
    this.budget = opts.incompleteBudget ?? PROCESS_INCOMPLETE_BUDGET;
    // The header and SASL frames are small; the negotiated limit applies from open on.
    this.lastInput = now;
    this.lastOutput = now;
  }

  /** Client side: sends our protocol header (and, without SASL, our open). */
  start(): void {
    const c = this.opts.client;
    if (!c) return;
    if (c.mechanism !== null) {
      this.w.bytes(SASL_HEADER);
    } else {
      this.w.bytes(AMQP_HEADER);
      this.writeOurOpen();
    }
  }

  /** Client side: frames written before our open (begin, attach) wait here until it is out. */
  private early: Writer | null = null;
  /** A SCRAM exchange waiting for the client's final message. */
  private scram: ScramServer | null = null;
  private openWritten = false;

  /** Where frames go: after our open, the output; before it, the early buffer. */
  private frameWriter(): Writer {
    if (this.openWritten || !this.opts.client) return this.w;
    if (this.early === null) this.early = new Writer(1024);
    return this.early;
  }

  private writeOurOpen(): void {
    this.openWritten = true;
    writeOpen(this.w, {
      containerId: this.opts.containerId,
      hostname: this.opts.client?.hostname ?? null,
      maxFrameSize: this.opts.maxFrameSize,
      channelMax: this.opts.channelMax,
      idleTimeout: this.opts.idleTimeoutMs,
      offeredCapabilities: this.opts.offeredCapabilities,
      desiredCapabilities: this.opts.desiredCapabilities,
      properties: this.opts.properties,
    });
    if (this.early !== null) {
      this.w.bytes(this.early.buf, 0, this.early.off);
      this.early = null;
    }
  }

  // ------------------------------------------------------------------ input

  /** Feeds bytes from the socket. Protocol errors close the connection (never throw). */
  onBytes(chunk: Buffer, now: number): void {
    if (this.closed) return;
    this.lastInput = now;
    try {
      this.parser.push(chunk);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Raised by the parser. */
  onProtocolHeader(id: number): void {
    const client = this.opts.client;
    if (client) {
      if (this.state === ConnState.AwaitHeader && client.mechanism !== null && id === 3) {
        this.state = ConnState.Sasl;
        return;
      }
      if ((this.state === ConnState.AwaitHeader && client.mechanism === null) || this.state === ConnState.AwaitAmqpHeader) {
        if (id !== 0) throw new ConnectionError(`peer answered with protocol id ${id}`, 'amqp:connection:framing-error', 'framing-error');
        this.state = ConnState.AwaitOpen;
        return;
      }
      throw new ConnectionError(`unexpected protocol header (id ${id})`, 'amqp:connection:framing-error', 'framing-error');
    }
    if (this.state === ConnState.AwaitHeader) {
      if (id === 3) {
        if (this.opts.saslMechanisms.length === 0) {
          // close() answers with our AMQP header: the protocol we do speak here.
          throw new ConnectionError('SASL requested but not offered on this listener', 'amqp:not-implemented', 'auth-failed');
        }
        this.w.bytes(SASL_HEADER);
        writeSaslMechanisms(this.w, this.opts.saslMechanisms);
        this.state = ConnState.Sasl;
        return;
      }
      if (this.opts.requireSasl) {
        this.w.bytes(SASL_HEADER);
        this.closed = true;
        this.closeReason = 'auth-failed';
        this.handler.log('warning', 'refused a connection without SASL on a listener with authenticatePeer');
        this.handler.onClosed(this, 'auth-failed', { condition: 'amqp:unauthorized-access', description: 'SASL required' });
        return;
      }
      this.user = 'anonymous';
      this.w.bytes(AMQP_HEADER);
      this.state = ConnState.AwaitOpen;
      return;
    }
    if (this.state === ConnState.AwaitAmqpHeader) {
      if (id !== 0) throw new ConnectionError('expected the AMQP header after SASL', 'amqp:connection:framing-error', 'framing-error');
      this.w.bytes(AMQP_HEADER);
      this.state = ConnState.AwaitOpen;
      return;
    }
    throw new ConnectionError('unexpected protocol header', 'amqp:connection:framing-error', 'framing-error');
  }

  /** Raised by the parser for each frame. */
  onFrame(type: number, channel: number, buf: Buffer, start: number, end: number): void {
    if (this.closed) return;
    if (start === end) return; // heartbeat
    if (this.opts.traceFrames !== undefined) this.opts.traceFrames(`${channel} <- ${describeFrameBody(buf, start, end)}`);
    if (this.state === ConnState.Sasl) {
      if (type !== FRAME_SASL) throw new ConnectionError('AMQP frame during SASL', 'amqp:connection:framing-error', 'framing-error');
      return this.onSaslFrame(buf, start, end);
    }
    if (type !== FRAME_AMQP) throw new ConnectionError(`unexpected frame type ${type}`, 'amqp:connection:framing-error', 'framing-error');
    let code: number;
    try {
      code = scanPerformative(buf, start, end);
    } catch (e) {
      throw new ConnectionError(`malformed frame: ${(e as Error).message}`, 'amqp:decode-error', 'protocol-error', { cause: e });
    }
    if (this.state === ConnState.AwaitOpen) {
      if (code !== D.Open) throw new ConnectionError('first frame must be open', 'amqp:illegal-state', 'protocol-error');
      return this.onOpenFrame();
    }
    if (this.state === ConnState.CloseSent) {
      if (code === D.Close) this.finish('client-closed', null);
      return;
    }
    try {
      switch (code) {
        case D.Transfer: return this.onTransfer(channel, buf, end);
        case D.Disposition: return this.onDisposition(channel);
        case D.Flow: return this.onFlowFrame(channel);
        case D.Attach: return this.onAttachFrame(channel);
        case D.Detach: return this.onDetachFrame(channel);
        case D.Begin: return this.onBeginFrame(channel);
        case D.End: return this.onEndFrame(channel);
        case D.Close: return this.onCloseFrame();
        case D.Open: throw new ConnectionError('open received twice', 'amqp:illegal-state', 'protocol-error');
        default:
          throw new ConnectionError(`unknown performative 0x${code.toString(16)}`, 'amqp:connection:framing-error', 'framing-error');
      }
    } catch (e) {
      if (e instanceof SessionError) return this.endSession(channel, { condition: e.condition, description: e.message });
      if (e instanceof LinkError) {
        this.handler.log('warning', `link ${e.link.name}: ${e.message}`);
        return this.detachLink(e.link, { condition: e.condition, description: e.message });
      }
      if (e instanceof OversizeError) return this.refuseOversize(e);
      if (e instanceof DecodeError) throw new ConnectionError(e.message, 'amqp:decode-error', 'protocol-error', { cause: e });
      throw e;
    }
  }

  /** An oversize message: its link detached, or (policy) the delivery rejected and the connection closed. */
  private refuseOversize(e: OversizeError): void {
    const link = e.link;
    this.handler.log('warning', `link ${link.name}: ${e.message}`);
    this.handler.onOversize?.(link);
    if (!this.opts.oversizeClosesConnection) {
      return this.detachLink(link, { condition: 'amqp:link:message-size-exceeded', description: e.message });
    }
    const s = link.session;
    this.dropPartial(link);
    this.flushDisposition(s);
    writeDisposition(this.w, s.channel, true, e.deliveryId, e.deliveryId, true, encodeRejected({ condition: 'amqp:link:message-size-exceeded', description: 'Message size exceeded' }));
    this.detachLink(link, null);
    this.close({ condition: 'amqp:connection:forced', description: 'Message size exceeded' }, 'message-size-exceeded');
  }

  private onSaslFrame(buf: Buffer, start: number, end: number): void {
    let code: number;
    try {
      code = scanPerformative(buf, start, end);
    } catch (e) {
      throw new ConnectionError(`malformed SASL frame: ${(e as Error).message}`, 'amqp:decode-error', 'auth-failed', { cause: e });
    }
    if (this.opts.client) return this.onClientSaslFrame(code);
    if (code === D.SaslResponse && this.scram !== null) return this.onScramResponse();
    if (code !== D.SaslInit || this.saslMechanism !== null) throw new ConnectionError(`unexpected SASL frame 0x${code.toString(16)}`, 'amqp:connection:framing-error', 'auth-failed');
    let init;
    try {
      init = decodeSaslInit();
    } catch (e) {
      throw new ConnectionError(`bad sasl-init: ${(e as Error).message}`, 'amqp:decode-error', 'auth-failed', { cause: e });
    }
    const mech = init.mechanism;
    let ok = false;
    let why = 'wrong credentials';
    let claimed: string | null = null;
    this.saslMechanism = mech;
    if (!this.opts.saslMechanisms.includes(mech)) {
      why = `mechanism not offered (offered: ${this.opts.saslMechanisms.join(' ')})`;
    } else if (mech === 'ANONYMOUS') {
      ok = !this.opts.requireSasl || this.opts.saslMechanisms.includes('ANONYMOUS');
      this.user = 'anonymous';
    } else if (mech === 'EXTERNAL') {
      // The identity is the transport's (the client certificate); an authorization identity in
      // the response, if any, must match it.
      const id = this.opts.externalId ?? null;
      const asked = init.initialResponse && init.initialResponse.length > 0 ? init.initialResponse.toString('utf8') : null;
      claimed = asked ?? id;
      ok = id !== null && (asked === null || asked === id);
      if (!ok) why = id === null ? 'no verified client certificate' : 'authorization identity is not the certificate\'s';
      if (ok) this.user = id;
    } else if (mech === 'PLAIN') {
      const r = init.initialResponse;
      why = 'malformed PLAIN response';
      if (r) {
        const parts = r.toString('utf8').split('\0');
        if (parts.length === 3) {
          const [, user, pass] = parts;
          claimed = user;
          why = 'wrong user name or password';
          ok = this.opts.checkPlain ? this.opts.checkPlain(user, pass) : !this.opts.requireSasl;
          if (ok) this.user = user;
        }
      }
    } else if (Object.prototype.hasOwnProperty.call(SCRAM_MECHANISMS, mech)) {
      const lookup = this.opts.scramCredentials;
      if (lookup === undefined) why = 'no users to authenticate against';
      else {
        this.scram = new ScramServer(mech as ScramMechanism, lookup, this.opts.scramNonce?.());
        try {
          writeSaslChallenge(this.w, this.scram.onClientFirst(init.initialResponse));
          return;
        } catch (e) {
          if (!(e instanceof ScramError)) throw e;
          why = e.message;
          claimed = this.scram.claimed;
          this.scram = null;
        }
      }
    }
    this.saslOutcome(ok, mech, claimed, why, null);
  }

  /** The client's final SCRAM message: the proof checked, the outcome (with the server's signature) sent. */
  private onScramResponse(): void {
    const scram = this.scram!;
    this.scram = null;
    let response: Buffer;
    try {
      response = decodeSaslResponse();
    } catch (e) {
      throw new ConnectionError(`bad sasl-response: ${(e as Error).message}`, 'amqp:decode-error', 'auth-failed', { cause: e });
    }
    try {
      const serverFinal = scram.onClientFinal(response);
      this.user = scram.user;
      this.saslOutcome(true, scram.mechanism, scram.user, '', serverFinal);
    } catch (e) {
      if (!(e instanceof ScramError)) throw e;
      this.saslOutcome(false, scram.mechanism, scram.claimed, e.message, null);
    }
  }

  /** The end of a SASL exchange: the outcome, then AMQP (or, refused, the connection closes). */
  private saslOutcome(ok: boolean, mech: string, claimed: string | null, why: string, additional: Buffer | null): void {
    writeSaslOutcome(this.w, ok ? SaslCode.Ok : SaslCode.Auth, additional);
    if (!ok) {
      this.handler.log('warning', `SASL ${mech} authentication failed${claimed !== null ? ` for ${JSON.stringify(claimed)}` : ''}: ${why}`);
      this.handler.onAuthFailed?.(this, mech, claimed, why);
      this.closed = true;
      this.closeReason = 'auth-failed';
      this.handler.onClosed(this, 'auth-failed', { condition: 'amqp:unauthorized-access', description: 'authentication failed' });
      return;
    }
    this.state = ConnState.AwaitAmqpHeader;
    this.parser.expectHeader();
  }

  private onClientSaslFrame(code: number): void {
    const c = this.opts.client!;
    if (code === D.SaslMechanisms) {
      const offered = fieldValue(0);
      const list = Array.isArray(offered) ? offered.map(String) : offered == null ? [] : [String(offered)];
      const mech = c.mechanism!;
      if (!list.includes(mech)) {
        throw new ConnectionError(`peer does not offer SASL ${mech} (offers ${list.join(' ') || 'nothing'})`, 'amqp:unauthorized-access', 'auth-failed');
      }
      const resp = mech === 'PLAIN' ? Buffer.from(`\0${c.user ?? ''}\0${c.password ?? ''}`, 'utf8') : mech === 'EXTERNAL' ? Buffer.alloc(0) : Buffer.from('anonymous', 'utf8');
      writeSaslInit(this.w, mech, resp, c.hostname ?? null);
      return;
    }
    if (code === D.SaslOutcome) {
      const outcome = fieldUint(0, 1);
      if (outcome !== 0) throw new ConnectionError(`SASL authentication failed (outcome ${outcome})`, 'amqp:unauthorized-access', 'auth-failed');
      this.state = ConnState.AwaitAmqpHeader;
      this.parser.expectHeader();
      this.w.bytes(AMQP_HEADER);
      this.writeOurOpen();
      return;
    }
    if (code === D.SaslChallenge) throw new ConnectionError('SASL challenges are not supported', 'amqp:not-implemented', 'auth-failed');
    throw new ConnectionError(`unexpected SASL frame 0x${code.toString(16)}`, 'amqp:connection:framing-error', 'auth-failed');
  }

  private onOpenFrame(): void {
    let open: OpenFrame;
    try {
      open = decodeOpen();
    } catch (e) {
      throw new ConnectionError(`bad open: ${(e as Error).message}`, 'amqp:decode-error', 'protocol-error', { cause: e });
    }
    this.remoteOpen = open;
    this.peerMaxFrameSize = Math.max(MIN_MAX_FRAME_SIZE, Math.min(open.maxFrameSize, 1 << 30));
    this.peerIdleTimeoutMs = open.idleTimeout;
    if (this.opts.client) {
      // Our open went first: a connection we made may still be refused (a connector's policyVhost).
      const decision = this.handler.decideOpen?.(this) ?? null;
      if (decision !== null && 'refuse' in decision) {
        this.state = ConnState.Open;
        this.close(decision.refuse, 'policy-denied');
        return;
      }
    } else {
      const decision = this.handler.decideOpen?.(this) ?? null;
      if (decision !== null && 'refuse' in decision) {
        this.writeOurOpen();
        this.state = ConnState.Open;
        this.close(decision.refuse, 'policy-denied');
        return;
      }
      if (decision?.maxFrameSize !== undefined) this.opts.maxFrameSize = decision.maxFrameSize;
      if (decision?.channelMax !== undefined) this.opts.channelMax = decision.channelMax;
    }
    this.parser.maxFrameSize = this.opts.maxFrameSize;
    if (!this.opts.client) this.writeOurOpen();
    this.state = ConnState.Open;
    this.handler.onOpen(this);
  }

  private session(channel: number): Session {
    const s = this.sessions.get(channel);
    if (s === undefined) throw new ConnectionError(`frame on unattached channel ${channel}`, 'amqp:connection:framing-error', 'protocol-error');
    return s;
  }

  private onBeginFrame(channel: number): void {
    if (this.sessions.has(channel)) throw new ConnectionError(`channel ${channel} already in use`, 'amqp:connection:framing-error', 'protocol-error');
    if (channel > this.opts.channelMax) {
      throw new ConnectionError(`channel ${channel} exceeds channel-max ${this.opts.channelMax}`, 'amqp:connection:framing-error', 'protocol-error');
    }
    const b = decodeBegin();
    if (b.remoteChannel !== null) {
      // The answer to a begin we sent.
      const mine = this.localChannels[b.remoteChannel];
      if (mine === undefined || mine.remoteChannel >= 0) {
        throw new ConnectionError(`begin answers channel ${b.remoteChannel}, which we did not begin`, 'amqp:connection:framing-error', 'protocol-error');
      }
      mine.remoteChannel = channel;
      mine.nextIncomingId = b.nextOutgoingId;
      mine.remoteIncomingWindow = (b.incomingWindow - mine.nextOutgoingId) >>> 0;
      mine.remoteOutgoingWindow = b.outgoingWindow;
      this.sessions.set(channel, mine);
      return;
    }
    let local = 0;
    while (this.localChannels[local] !== undefined) local++;
    const s = new Session(this, local, channel, this.opts.incomingWindow);
    s.nextIncomingId = b.nextOutgoingId;
    s.remoteIncomingWindow = b.incomingWindow;
    s.remoteOutgoingWindow = b.outgoingWindow;
    let open = 0;
    for (const o of this.sessions.values()) if (!o.ended && o.peerBegun) open++;
    s.peerBegun = true;
    this.sessions.set(channel, s);
    this.localChannels[local] = s;
    writeBegin(this.w, local, channel, s.nextOutgoingId, s.incomingWindow, 0x7fffffff, this.opts.handleMax);
    const refused = this.handler.decideBegin?.(this, open) ?? null;
    if (refused !== null) {
      s.ended = true;
      this.flushDisposition(s);
      writeEnd(this.w, s.channel, refused);
    }
  }

  private onEndFrame(channel: number): void {
    const s = this.session(channel);
    const err = decodeEndOrClose();
    if (err) this.handler.log('info', `session ended by peer: ${err.condition} ${err.description ?? ''}`);
    this.dropSession(s, 'session-ended', err);
    if (!s.ended) {
      this.flushDisposition(s);
      writeEnd(this.w, s.channel, null);
      // Ended both ways: whoever holds it (a link route's session per connection) begins a new one.
      s.ended = true;
    }
    this.sessions.delete(channel);
    this.localChannels[s.channel] = undefined;
  }

  private dropSession(s: Session, reason: LinkGoneReason, error: AmqpError | null = null): void {
    // Links we attached that were never answered go too (a peer may refuse by ending the session).
    for (const list of s.pendingLinks.values()) for (const link of list) this.handler.onLinkGone(link, error, reason);
    s.pendingLinks.clear();
    for (const link of s.links.values()) {
      this.dropPartial(link);
      if (link.attached || !link.detachSent) this.handler.onLinkGone(link, error, reason);
      else if (link.answerDetachLater && !link.detachReceived) this.handler.onLinkGone(link, error, 'detach-answered');
      link.attached = false;
    }
    s.links.clear();
    s.unsettledIn.clear();
    s.unsettledOut.clear();
  }

  /** Ends a session on a violation (only that session). */
  endSession(channel: number, error: AmqpError): void {
    const s = this.sessions.get(channel);
    if (s === undefined || s.ended) return;
    this.handler.log('warning', `ending session on channel ${channel}: ${error.condition}: ${error.description ?? ''}`);
    this.dropSession(s, 'session-ended');
    // Dispositions already decided go out before the end: nothing may follow it on the channel.
    this.flushDisposition(s);
    s.ended = true;
    writeEnd(this.w, s.channel, error);
  }

  private onAttachFrame(channel: number): void {
    const s = this.session(channel);
    const a = decodeAttach();
    if (a.handle > this.opts.handleMax) {
      // AMQP 2.7.2: a handle beyond handle-max is a connection error.
      throw new ConnectionError(`handle ${a.handle} exceeds handle-max ${this.opts.handleMax}`, 'amqp:connection:framing-error', 'protocol-error');
    }
    if (s.links.has(a.handle)) throw new SessionError(`handle ${a.handle} is already in use`, 'amqp:session:handle-in-use');
    if (a.invalid !== null) return this.refuseInvalidAttach(s, a);
    const mine = s.takePending(a.name, a.role);
    if (mine !== undefined) {
      mine.remoteHandle = a.handle;
      s.links.set(a.handle, mine);
      if (!mine.isSender) {
        mine.deliveryCount = a.initialDeliveryCount;
        mine.grantedLimit = a.initialDeliveryCount;
      }
      // A null terminus on the peer's side means refusal; its detach follows. A link we
      // detached before this answer came stays detached: the peer's detach answers ours.
      const refused = mine.isSender ? a.target === null : a.source === null;
      mine.attached = !refused && !mine.detachSent;
      if (mine.attached) this.handler.onLinkOpened?.(mine, a);
      return;
    }
    // The peer's role is a.role; ours is the opposite.
    const link = new Link(s, a.name, a.handle, a.role === true);
    link.sndSettleMode = a.sndSettleMode;
    link.rcvSettleMode = a.rcvSettleMode;
    if (!link.isSender) {
      link.deliveryCount = a.initialDeliveryCount;
      link.grantedLimit = a.initialDeliveryCount;
    }
    s.links.set(a.handle, link);
    this.handler.onAttach(link, a);
  }

  /**
   * An attach whose terminus cannot be used (an address that is not valid UTF-8, or not a
   * string): refused here, for every handler alike, with amqp:invalid-field. Our answer
   * carries null termini and the detach follows (AMQP 2.6.3). A link we attached ourselves
   * is reported gone.
   */
  private refuseInvalidAttach(s: Session, a: AttachFrame): void {
    const error: AmqpError = { condition: 'amqp:invalid-field', description: a.invalid ?? 'invalid terminus' };
    this.handler.log('warning', `refusing link ${a.name}: ${error.description}`);
    const mine = s.takePending(a.name, a.role);
    if (mine !== undefined) {
      mine.remoteHandle = a.handle;
      s.links.set(a.handle, mine);
      this.detachLink(mine, error);
      this.handler.onLinkGone(mine, error, 'refused');
      return;
    }
    const link = new Link(s, a.name, a.handle, a.role === true);
    s.links.set(a.handle, link);
    link.refuse(error, a);
  }

  /** Writes our attach in reply to the peer's. */
  writeAttachReply(link: Link, a: AttachFrame, o: { source?: TerminusOut; target?: TerminusOut; rcvSettleMode?: number; sndSettleMode?: number; initialDeliveryCount?: number }): void {
    const source = o.source !== undefined ? o.source : a.source ? { raw: a.source.raw } : null;
    const target = o.target !== undefined ? o.target : a.target ? { raw: a.target.raw } : null;
    writeAttach(this.w, link.session.channel, {
      name: link.name,
      handle: link.handle,
      role: !link.isSender,
      sndSettleMode: o.sndSettleMode ?? a.sndSettleMode,
      rcvSettleMode: o.rcvSettleMode ?? a.rcvSettleMode,
      source,
      target,
      initialDeliveryCount: link.isSender ? (o.initialDeliveryCount ?? 0) : null,
      maxMessageSize: link.isSender ? 0 : this.opts.maxMessageSize,
    });
    if (link.isSender) link.deliveryCount = o.initialDeliveryCount ?? 0;
  }

  private onDetachFrame(channel: number): void {
    const s = this.session(channel);
    const d = decodeDetach();
    const link = s.links.get(d.handle);
    if (link === undefined) throw new SessionError(`detach of unattached handle ${d.handle}`, 'amqp:session:unattached-handle');
    link.detachReceived = true;
    link.remoteClosed = d.closed;
    s.links.delete(d.handle);
    this.dropPartial(link);
    const wasOurs = link.detachSent;
    if (!link.detachSent) {
      if (link.answerDetachLater) link.detachAnswerPending = true;
      else {
        link.detachSent = true;
        // Outcomes already decided on the link go before its detach (after it they would be lost).
        this.flushDisposition(s);
        writeDetach(this.w, s.channel, link.handle, d.closed, null);
      }
    }
    if (!link.detachAnswerPending) s.freeHandles.push(link.handle);
    if (link.attached || !wasOurs) this.handler.onLinkGone(link, d.error, 'detached');
    else if (link.answerDetachLater) this.handler.onLinkGone(link, d.error, 'detach-answered');
    link.attached = false;
  }

  /** Answers the peer's detach of a link with {@link Link.answerDetachLater} (at most once). */
  answerDetach(link: Link, error: AmqpError | null, closed: boolean): void {
    if (!link.detachAnswerPending) return;
    link.detachAnswerPending = false;
    if (this.closed || link.session.ended) return;
    link.detachSent = true;
    // Outcomes already decided on the link go before its detach (after it they would be lost).
    this.flushDisposition(link.session);
    writeDetach(this.w, link.session.channel, link.handle, closed, error);
    link.session.freeHandles.push(link.handle);
  }

  /** Detaches a link from our side (closed), e.g. on a violation or when refusing it. */
  detachLink(link: Link, error: AmqpError | null, closed = true): void {
    if (link.detachSent || this.closed) return;
    link.detachSent = true;
    // A delivery half received on a link we detach is never completed: free what it holds.
    this.dropPartial(link);
    const wasAttached = link.attached;
    link.attached = false;
    // Outcomes already decided on the link go before its detach (after it they would be lost).
    this.flushDisposition(link.session);
    writeDetach(this.w, link.session.channel, link.handle, closed, error);
    if (wasAttached) this.handler.onLinkGone(link, error, error ? 'refused' : 'detached');
  }

  private onFlowFrame(channel: number): void {
    const s = this.session(channel);
    const f = decodeFlow();
    // Session window (part 2, 2.5.6): the peer's incoming window relative to our next-outgoing-id.
    const nii = f.nextIncomingId ?? 0;
    // Only a window that reopens unblocks anything. Telling the handler on every flow made each
    // flow cost O(links of the session) (the handlers look at every link): a client granting
    // credit link by link on N links cost N^2.
    const wasBlocked = s.remoteIncomingWindow <= 0 || s.stalled !== null;
    s.remoteIncomingWindow = (nii + f.incomingWindow - s.nextOutgoingId) >>> 0;
    s.remoteOutgoingWindow = f.outgoingWindow;
    if (s.remoteIncomingWindow > 0 && wasBlocked) {
      const st = s.stalled;
      if (st !== null) this.writeTransfers(s, st.link, st.id, st.payload, st.off, st.settled);
      if (s.stalled === null) this.handler.onSessionWritable(s);
    }
    if (f.handle === null) return;
    const link = s.links.get(f.handle);
    if (link === undefined) throw new SessionError(`flow on unattached handle ${f.handle}`, 'amqp:session:unattached-handle');
    // A link we detached is only waiting for the peer's detach: nothing more is said on it.
    if (link.detachSent) return;
    if (link.isSender) {
      // RabbitMQ-like peers may omit delivery-count in the first flow: treat as ours.
      const dc = f.deliveryCount ?? link.deliveryCount;
      const credit = f.linkCredit ?? 0;
      link.credit = Math.max(0, (dc + credit - link.deliveryCount) | 0);
      link.drain = f.drain;
      this.handler.onFlow(link, f.drain);
    } else {
      // A sender answering a drain has advanced its delivery-count over the credit it gave up:
      // take its view, or we would count credit the sender no longer has.
      if (f.drain && f.deliveryCount !== null && ((f.deliveryCount - link.deliveryCount) | 0) > 0) {
        link.deliveryCount = f.deliveryCount;
        link.credit = Math.max(0, f.linkCredit ?? 0);
      }
      if (f.echo) this.sendFlow(link);
      this.handler.onSenderFlow?.(link, f.deliveryCount, f.linkCredit, f.drain);
    }
  }

  private onTransfer(channel: number, buf: Buffer, end: number): void {
    const s = this.session(channel);
    const handle = fieldUint(0, -1);
    if (handle < 0) throw new SessionError('transfer without handle', 'amqp:decode-error');
    const link = s.links.get(handle);
    if (link === undefined) throw new SessionError(`transfer on unattached handle ${handle}`, 'amqp:session:unattached-handle');
    if (link.isSender) throw new SessionError(`transfer on handle ${handle}, which is our sending link`, 'amqp:session:unattached-handle');
    if (s.incomingWindow === 0) throw new SessionError('transfer past the session incoming window', 'amqp:session:window-violation');
    s.nextIncomingId = (s.nextIncomingId + 1) >>> 0;
    s.incomingWindow--;
    const more = fieldBool(5, false);
    const aborted = fieldBool(9, false);
    const idPresent = !fieldIsNull(1);
    const id = idPresent ? fieldUint(1, 0) : 0;
    const payloadStart = scan.next;
    if (!link.partialActive) {
      // The first frame of a new delivery.
      link.partialActive = more && !aborted;
      if (!idPresent) {
        // Proton gives such a delivery the next id implicitly; follow it so the sequence holds.
        if (s.nextIncomingDeliveryId >= 0) s.nextIncomingDeliveryId = (s.nextIncomingDeliveryId + 1) >>> 0;
        throw new LinkError('first transfer of a delivery without delivery-id', 'amqp:decode-error', link);
      }
      // AMQP 2.6.12: delivery-ids follow each other per session. A gap or a repeat is refused
      // as Proton refuses it (amqp:session:invalid-field, "sequencing error"); the session ends.
      const expected = s.nextIncomingDeliveryId;
      if (expected >= 0 && id !== expected) {
        throw new SessionError(`sequencing error, expected delivery-id ${expected}, got ${id}`, 'amqp:session:invalid-field');
      }
      s.nextIncomingDeliveryId = (id + 1) >>> 0;
      link.partialId = id;
      // Transfers the peer sent before it saw our detach are dropped (they still count above).
      if (link.detachSent) return this.maybeRefreshWindow(s);
      link.partialSettled = fieldBool(4, false);
      // Copied: rare (transactional sends), and the frame buffer may be reused.
      link.partialState = fieldIsNull(7) ? null : Buffer.from(fieldRaw(7) as Buffer);
      if (link.keepTags) {
        const tag = fieldBinary(2);
        link.partialTag = tag === null ? null : Buffer.from(tag);
      }
      if (link.credit <= 0) {
        if (((link.grantedLimit - link.deliveryCount) | 0) <= 0) this.onCreditOverrun(link);
      } else link.credit--;
      link.deliveryCount = (link.deliveryCount + 1) >>> 0;
      if (!more && !aborted) {
        this.completeDelivery(link, buf.subarray(payloadStart, end), link.partialId, link.partialSettled);
        this.maybeRefreshWindow(s);
        return;
      }
      if (aborted) return this.maybeRefreshWindow(s);
      link.partial = [];
      link.partialSize = 0;
    } else {
      // A continuation: the delivery-id may be omitted, or repeated (AMQP 2.7.5), never changed.
      if (idPresent && id !== link.partialId) {
        throw new SessionError(`sequencing error, continuation of delivery-id ${link.partialId} carries delivery-id ${id}`, 'amqp:session:invalid-field');
      }
      if (!more || aborted) link.partialActive = false;
      if (link.detachSent || link.partial === null) return this.maybeRefreshWindow(s);
      if (fieldBool(4, false)) link.partialSettled = true;
      if (aborted) {
        this.dropPartial(link);
        return this.maybeRefreshWindow(s);
      }
    }
    const piece = buf.subarray(payloadStart, end);
    link.partialSize += piece.length;
    if (link.partialSize > this.opts.maxMessageSize) {
      throw new OversizeError(`message exceeds the maximum message size ${this.opts.maxMessageSize}`, link, link.partialId);
    }
    this.chargePiece(link, piece);
    (link.partial as Buffer[]).push(piece);
    if (!more) {
      const parts = link.partial as Buffer[];
      const payload = parts.length === 1 ? parts[0] : Buffer.concat(parts, link.partialSize);
      this.dropPartial(link);
      this.completeDelivery(link, payload, link.partialId, link.partialSettled);
    }
    this.maybeRefreshWindow(s);
  }

  /**
   * Charges one more piece of an incomplete delivery to this connection and to the shared budget.
   * A piece is a view: it keeps its whole backing buffer (a socket chunk) alive, so what is
   * charged is that buffer, once per buffer, plus a per-piece overhead; a peer cannot hold a
   * 64 KiB chunk for the price of a one-byte piece.
   */
  private chargePiece(link: Link, piece: Buffer): void {
    let cost = PIECE_OVERHEAD;
    if (piece.buffer !== link.partialBacking) {
      link.partialBacking = piece.buffer;
      cost += piece.buffer.byteLength;
    }
    if (this.incompleteBytes + cost > this.maxIncomplete) {
      throw new ConnectionError(
        `incomplete deliveries on this connection would hold more than ${this.maxIncomplete} bytes`,
        'amqp:resource-limit-exceeded',
        'protocol-error',
      );
    }
    if (this.budget.used + cost > this.budget.limit) {
      throw new LinkError(
        `incomplete deliveries of all connections would hold more than ${this.budget.limit} bytes; delivery dropped`,
        'amqp:resource-limit-exceeded',
        link,
      );
    }
    link.partialCharged += cost;
    this.incompleteBytes += cost;
    this.budget.used += cost;
  }

  /** Forgets the incomplete delivery of `link` (completed, aborted, refused, or the link is gone) and releases its charge. */
  private dropPartial(link: Link): void {
    if (link.partialCharged > 0) {
      this.incompleteBytes -= link.partialCharged;
      this.budget.used -= link.partialCharged;
      link.partialCharged = 0;
    }
    link.partial = null;
    link.partialSize = 0;
    link.partialBacking = null;
  }

  private maybeRefreshWindow(s: Session): void {
    // Below half the window, or when it is spent (a policy's window may be one frame).
    if (s.incomingWindow < this.opts.incomingWindow >>> 1 || s.incomingWindow === 0) {
      s.incomingWindow = this.opts.incomingWindow;
      writeFlow(this.w, s.channel, s.nextIncomingId, s.incomingWindow, s.nextOutgoingId, 0x7fffffff, -1, 0, 0, false);
    }
  }

  private completeDelivery(link: Link, payload: Buffer, id: number, settled: boolean): void {
    if (payload.length > this.opts.maxMessageSize) {
      throw new OversizeError(`message of ${payload.length} bytes exceeds the maximum message size ${this.opts.maxMessageSize}`, link, id);
    }
    const state = link.partialState;
    link.partialState = null;
    const tag = link.partialTag;
    link.partialTag = null;
    const d: InDelivery = { link, id, settled, payload, ctx: null, state, tag };
    if (!settled) link.session.unsettledIn.set(id, d);
    this.deliveriesIn++;
    this.handler.onDelivery(link, d);
  }

  private onDisposition(channel: number): void {
    const s = this.session(channel);
    const role = fieldBool(0, false);
    const first = fieldUint(1, 0);
    const last = fieldIsNull(2) ? first : fieldUint(2, first);
    const settled = fieldBool(3, false);
    const raw = fieldRaw(4);
    const code = raw === null ? 0 : stateCode(raw, 0, raw.length);
    if (((last - first) >>> 0) > 0x100000) throw new SessionError('disposition range too large', 'amqp:decode-error');
    if (role) {
      // From a receiver: about deliveries we sent.
      const map = s.unsettledOut;
      for (let id = first; ; id = (id + 1) >>> 0) {
        const d = map.get(id);
        if (d !== undefined) {
          if (settled) {
            map.delete(id);
            unlinkOut(d);
          }
          this.handler.onOutcome(d, code, raw, settled);
        }
        if (id === last) break;
      }
    } else {
      const map = s.unsettledIn;
      for (let id = first; ; id = (id + 1) >>> 0) {
        const d = map.get(id);
        if (d !== undefined && settled) {
          map.delete(id);
          this.handler.onInSettled(d);
        }
        if (id === last) break;
      }
    }
  }

  private onCloseFrame(): void {
    const err = decodeEndOrClose();
    if (err) this.handler.log('info', `connection closed by peer: ${err.condition} ${err.description ?? ''}`);
    for (const s of this.sessions.values()) this.flushDisposition(s);
    writeClose(this.w, null);
    this.finish('client-closed', err);
  }

  private finish(reason: CloseReason, error: AmqpError | null): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    for (const s of this.sessions.values()) this.dropSession(s, 'connection-closed');
    this.sessions.clear();
    this.handler.onClosed(this, reason, error);
  }

  private fail(e: unknown): void {
    let condition = 'amqp:internal-error';
    let reason: CloseReason = 'protocol-error';
    let msg = String(e);
    if (e instanceof FramingError) {
      condition = e.condition;
      reason = 'framing-error';
      msg = e.message;
    } else if (e instanceof ConnectionError) {
      condition = e.condition;
      reason = e.reason;
      msg = e.message;
    } else if (e instanceof DecodeError) {
      condition = 'amqp:decode-error';
      msg = e.message;
    } else if (e instanceof Error) {
      msg = e.message;
      this.handler.log('error', `internal error: ${e.stack}`);
    }
    this.handler.log('warning', `closing connection: ${condition}: ${msg}`);
    this.close({ condition, description: msg }, reason);
  }

  /** Closes the connection from our side with an optional error. */
  close(error: AmqpError | null, reason: CloseReason): void {
    if (this.closed || this.state === ConnState.CloseSent) return;
    if (this.state === ConnState.AwaitHeader || this.state === ConnState.Sasl || this.state === ConnState.AwaitAmqpHeader) {
      // No AMQP connection yet: a header tells the peer what we speak, then we hang up.
      if (this.state === ConnState.AwaitHeader) this.w.bytes(AMQP_HEADER);
      this.finish(reason, error);
      return;
    }
    if (this.state === ConnState.AwaitOpen) {
      writeOpen(this.w, { containerId: this.opts.containerId, maxFrameSize: this.opts.maxFrameSize, channelMax: 0, idleTimeout: 0 });
    }
    for (const s of this.sessions.values()) this.flushDisposition(s);
    writeClose(this.w, error);
    this.state = ConnState.CloseSent;
    this.finish(reason, error);
  }

  // ------------------------------------------------------------------ output

  /** Begins a session from our side; frames may be sent on it before the peer answers. */
  beginSession(): Session {
    let local = 0;
    while (this.localChannels[local] !== undefined) local++;
    const s = new Session(this, local, -1, this.opts.incomingWindow);
    this.localChannels[local] = s;
    writeBegin(this.frameWriter(), local, null, s.nextOutgoingId, s.incomingWindow, 0x7fffffff, this.opts.handleMax);
    return s;
  }

  /**
   * Attaches a link from our side. The peer's answer raises `onLinkOpened` (or, refused,
   * `onLinkGone`). A receiving link gets no credit until {@link setCredit}.
   */
  attach(s: Session, name: string, isSender: boolean, source: TerminusOut, target: TerminusOut, opts: { sndSettleMode?: number; rcvSettleMode?: number; capabilities?: string[] } = {}): Link {
    const link = new Link(s, name, -1, isSender);
    link.sndSettleMode = opts.sndSettleMode ?? 2;
    link.rcvSettleMode = opts.rcvSettleMode ?? 0;
    const pending = s.pendingLinks.get(name);
    if (pending === undefined) s.pendingLinks.set(name, [link]);
    else pending.push(link);
    writeAttach(this.frameWriter(), s.channel, {
      name,
      handle: link.handle,
      role: !isSender,
      sndSettleMode: link.sndSettleMode,
      rcvSettleMode: link.rcvSettleMode,
      source,
      target,
      initialDeliveryCount: isSender ? 0 : null,
      maxMessageSize: isSender ? 0 : this.opts.maxMessageSize,
      offeredCapabilities: opts.capabilities,
    });
    return link;
  }

  /** Sends a flow for an incoming link granting `credit` in total (absolute, per AMQP). */
  setCredit(link: Link, credit: number, drain = false): void {
    if (!link.attached || link.detachSent || this.closed) return;
    link.credit = credit;
    const limit = (link.deliveryCount + credit) >>> 0;
    if (((limit - link.grantedLimit) | 0) > 0) link.grantedLimit = limit;
    this.sendFlow(link, drain);
  }

  /** A transfer beyond the credit granted: refused, unless the connection tolerates it (counted). */
  private onCreditOverrun(link: Link): void {
    if (!this.opts.tolerateCreditOverrun) throw new LinkError('transfer without link credit', 'amqp:link:transfer-limit-exceeded', link);
    this.creditOverruns++;
  }

  private sendFlow(link: Link, drain = false): void {
    const s = link.session;
    writeFlow(this.w, s.channel, s.nextIncomingId, s.incomingWindow, s.nextOutgoingId, 0x7fffffff, link.handle, link.deliveryCount, link.credit, drain || link.drain);
  }

  /** True when `link` (ours, sending) may send one more delivery now. */
  canSend(link: Link): boolean {
    const s = link.session;
    return link.credit > 0 && link.attached && !this.writeBlocked && this.w.off < this.maxPendingOutput && s.remoteIncomingWindow > 0 && s.stalled === null && !this.closed;
  }

  /** The engine holds as much output as it may: links wait for the transport to take it. */
  get outputFull(): boolean {
    return this.w.off >= this.maxPendingOutput;
  }

  /**
   * Sends a delivery on an outgoing link. `parts` are written back to back as the payload
   * (so an annotated message can be written without joining buffers). Splits across frames
   * when over the peer's max-frame-size.
   */
  /**
   * Sends a delivery on `link`. `state`: an encoded delivery-state for the first transfer frame
   * (a link-routed transactional send carries its transactional-state on), else none. `tag`: the
   * delivery-tag (at most 255 bytes; a link route relays the sender's), else the delivery-id's 4 bytes.
   */
  send(link: Link, payload: Buffer, settled: boolean, ctx: unknown, state: Buffer | null = null, tag: Buffer | null = null): OutDelivery {
    const s = link.session;
    const id = s.nextDeliveryId;
    s.nextDeliveryId = (id + 1) >>> 0;
    const d: OutDelivery = { link, id, settled, ctx, prev: null, next: null };
    if (!settled) {
      s.unsettledOut.set(id, d);
      linkOut(d);
    }
    link.credit--;
    link.deliveryCount = (link.deliveryCount + 1) >>> 0;
    this.deliveriesOut++;
    this.writeTransfers(s, link, id, payload, 0, settled, state, tag);
    return d;
  }

  /**
   * Writes transfer frames for `payload` from `off`, as many as the peer's session window
   * allows (AMQP 2.5.6); what does not fit waits in `s.stalled` until the window reopens.
   */
  private writeTransfers(s: Session, link: Link, id: number, payload: Buffer, off: number, settled: boolean, state: Buffer | null = null, tag: Buffer | null = null): void {
    const w = this.w;
    const max = this.peerMaxFrameSize;
    const total = payload.length;
    let first = off === 0;
    for (;;) {
      if (s.remoteIncomingWindow <= 0 && !first) {
        s.stalled = { link, id, payload, off, settled };
        return;
      }
      const f = beginFrame(w, 0, s.channel);
      w.descriptor(D.Transfer);
      const m = w.beginList();
      w.uint(link.handle);
      if (first) {
        w.uint(id);
        if (tag !== null) {
          w.ensure(2 + tag.length);
          w.buf[w.off++] = 0xa0;
          w.buf[w.off++] = tag.length;
          w.bytes(tag);
        } else {
          // delivery-tag: the delivery-id's 4 bytes are unique among unsettled deliveries.
          w.ensure(6);
          w.buf[w.off++] = 0xa0;
          w.buf[w.off++] = 4;
          w.buf.writeUInt32BE(id, w.off);
          w.off += 4;
        }
        w.uint(0);
      } else {
        w.null();
        w.null();
        w.null();
      }
      w.boolean(settled);
      let n = 5;
      const withState = first && state !== null;
      const room = max - (w.off - f) - 16 - (withState ? (state as Buffer).length + 2 : 0);
      const more = total - off > room;
      if (more || withState) {
        w.boolean(more);
        n = 6;
      }
      if (withState) {
        // rcv-settle-mode (unset), then the state (transfer field 7).
        w.null();
        w.bytes(state as Buffer, 0, (state as Buffer).length);
        n = 8;
      }
      w.endList(m, n);
      const take = more ? room : total - off;
      w.bytes(payload, off, off + take);
      endFrame(w, f);
      off += take;
      s.nextOutgoingId = (s.nextOutgoingId + 1) >>> 0;
      s.remoteIncomingWindow = s.remoteIncomingWindow > 0 ? s.remoteIncomingWindow - 1 : 0;
      first = false;
      if (!more) {
        s.stalled = null;
        return;
      }
    }
  }

  /** Completes a drain on an outgoing link: credit is consumed, delivery-count advanced. */
  drainComplete(link: Link): void {
    if (!link.attached || this.closed) return;
    link.deliveryCount = (link.deliveryCount + link.credit) >>> 0;
    link.credit = 0;
    const s = link.session;
    writeFlow(this.w, s.channel, s.nextIncomingId, s.incomingWindow, s.nextOutgoingId, 0x7fffffff, link.handle, link.deliveryCount, 0, true);
    link.drain = false;
  }

  /**
   * Sets an incoming delivery's state (and settles it when `settled`). Consecutive ids with the
   * same state object coalesce into one disposition range.
   */
  updateIn(d: InDelivery, state: Buffer | null, settled: boolean): void {
    const s = d.link.session;
    if (settled) s.unsettledIn.delete(d.id);
    this.queueDisposition(s, true, d.id, settled, state);
  }

  /** Settles (or updates) a delivery we sent. */
  updateOut(d: OutDelivery, state: Buffer | null, settled: boolean): void {
    const s = d.link.session;
    if (settled) {
      if (s.unsettledOut.get(d.id) === d) s.unsettledOut.delete(d.id);
      unlinkOut(d);
    }
    this.queueDisposition(s, false, d.id, settled, state);
  }

  private queueDisposition(s: Session, role: boolean, id: number, settled: boolean, state: Buffer | null): void {
    if (s.ended || this.closed) return;
    if (s.dispFirst >= 0) {
      if (s.dispRole === role && s.dispSettled === settled && s.dispState === state && id === ((s.dispLast + 1) >>> 0)) {
        s.dispLast = id;
        return;
      }
      this.flushDisposition(s);
    }
    s.dispRole = role;
    s.dispFirst = id;
    s.dispLast = id;
    s.dispSettled = settled;
    s.dispState = state;
  }

  private flushDisposition(s: Session): void {
    if (s.dispFirst < 0) return;
    writeDisposition(this.w, s.channel, s.dispRole, s.dispFirst, s.dispLast, s.dispSettled, s.dispState);
    s.dispFirst = -1;
    s.dispState = null;
  }

  /** Flushes pending dispositions and returns the bytes to write (or null). */
  takeOutput(): Buffer | null {
    for (const s of this.sessions.values()) if (s.dispFirst >= 0) this.flushDisposition(s);
    if (this.w.off === 0) return null;
    const out = this.w.take();
    if (this.opts.traceFrames !== undefined) for (const line of describeOutput(out)) this.opts.traceFrames(line);
    return out;
  }

  /**
   * Time passes: closes on input idle past our timeout; sends a heartbeat when we have been
   * quiet for half the peer's. Returns ms until the next check is useful.
   */
  onTick(now: number): void {
    if (this.closed) return;
    if (this.opts.idleTimeoutMs > 0 && now - this.lastInput > this.opts.idleTimeoutMs) {
      this.close({ condition: 'amqp:resource-limit-exceeded', description: 'local-idle-timeout expired' }, 'idle-timeout');
      return;
    }
    if (this.peerIdleTimeoutMs > 0 && now - this.lastOutput >= this.peerIdleTimeoutMs / 2 && this.state === ConnState.Open) {
      if (this.w.off === 0) writeHeartbeat(this.w);
    }
  }

  /** The I/O layer reports a write. */
  noteOutput(now: number): void {
    this.lastOutput = now;
  }

  /** The socket is gone (no close frame): drop everything. */
  onSocketClosed(reason: CloseReason): void {
    this.finish(reason, null);
  }

  get isOpen(): boolean {
    return this.state === ConnState.Open && !this.closed;
  }
}

