/**
 * The broker's I/O: its listeners (amqp/transport), one {@link Connection} engine per transport
 * driven by the shared {@link ConnectionPump}, and the glue between the engines, the
 * {@link BrokerCore} and the store's group commit. A producer's durable message
 * is settled accepted only in the store's sync callback; producer credit is topped up as its
 * messages become durable, so unsynced messages per link are bounded by the link's window.
 */
import { PolicyEngine, type PolicySettings } from '../../policy/engine';
import { PolicyConnection, PolicyGate } from '../../policy/gate';
import { POLICY_DEFAULTS } from '../../policy/config';
import { AuthGuard } from '../../amqp/transport/auth-guard';
import { splitHostPort } from '../../amqp/transport/transport';
import type { Users } from '../../config/users';
import { Listener, openListeners } from '../../amqp/transport/listener';
import { VERSION } from '../../lib/version';
import { ConnIo, ConnectionPump } from '../../amqp/transport/pump';
import { acceptedConnectionOptions, type ServerListenerSettings } from '../../amqp/transport/accept';
import type { Transport } from '../../amqp/transport/transport';
import { randomBytes } from 'node:crypto';
import { Connection, ConnectionHandler, CloseReason, InDelivery, Link, OutDelivery, LinkGoneReason, Session } from '../../amqp/engine/connection';
import { AmqpError, AttachFrame, D, STATE, Terminus, decodeModified, descriptorCode, encodeRejected } from '../../amqp/performatives';
import { DecodeError, Described, Reader, Sym, Writer } from '../../amqp/codec';
import { checkAddress } from '../../amqp/address';
import { FAILOVER_SERVER_LIST, failoverServerList } from '../../amqp/failover';
import { Logger } from '../../lib/log';
import { BrokerCore, BrokerEffects, BrokerError } from '../core/broker';
import { Consumer, Ref } from '../core/queue';
import { scanBrokerMessage } from '../core/message-info';

export { VERSION };

/** A broker listener's settings: those every listener has. */
export type BrokerListenerSettings = ServerListenerSettings;

/** What the server needs besides the core. */
export interface BrokerServerSettings {
  id: string;
  listeners: BrokerListenerSettings[];
  maxMessageSize: number;
  maxAddressLength: number;
  /** SASL users (PLAIN, SCRAM). */
  users?: Users;
  /** Who may connect, send to and consume from which addresses (qdrouterd's policy); none: everyone. */
  policy?: PolicySettings;
  /** Credit window per producer link. */
  linkCredit: number;
  /** `failover-server-list` entries announced in the open frame (Artemis's form). */
  failoverServers: () => { host: string; port: number }[];
}

/** The selector filter key (Artemis, ActiveMQ, qpid-jms). */
const SELECTOR_FILTER_SYMBOL = 'apache.org:selector-filter:string';
const SELECTOR_FILTER_CODE = 0x0000468c00000004n;

const REJECT_DECODE = encodeRejected({ condition: 'amqp:decode-error', description: 'malformed message sections' });
const REJECT_NO_TO = encodeRejected({ condition: 'amqp:invalid-field', description: 'anonymous producer: the message has no "to" address' });
const REJECT_BAD_TO = encodeRejected({ condition: 'amqp:invalid-field', description: 'anonymous producer: the message\'s "to" address is not valid UTF-8' });

class ConnCtx extends ConnIo {
  readonly consumers = new Set<Consumer>();
  readonly producers = new Set<Link>();
  readonly txIds: Buffer[] = [];
  /** Its policy state (global count, vhost rules, counted links). */
  readonly policy: PolicyConnection;
  constructor(transport: Transport, readonly listener: BrokerListenerSettings, id: number) {
    super(transport, id);
    this.policy = new PolicyConnection(id);
  }
}

/** State of a link on which the peer sends to us. */
class ProducerCtx {
  /** Deliveries awaiting the store's sync. */
  pending = 0;
  constructor(readonly address: string | null, readonly hint: 'queue' | 'topic' | null, readonly coordinator: boolean) {}
}

/** A receiving peer's link: its consumer. */
class ConsumerLinkCtx {
  constructor(readonly consumer: Consumer) {}
}

/** The broker process's network side. */
export class BrokerServer implements ConnectionHandler, BrokerEffects {
  core!: BrokerCore;
  private readonly listeners: Listener[] = [];
  private readonly pump: ConnectionPump;
  private tickTimer: NodeJS.Timeout | null = null;
  private nextConnId = 1;
  readonly bound: { name: string; host: string; port: number }[] = [];
  private stopping = false;
  /** Producers waiting for the next sync: settled accepted in its callback. */
  private awaitingSync: InDelivery[] = [];
  private readonly producersByAddress = new Map<string, Set<Link>>();
  private readonly drainLinks = new Set<Link>();
  /** Called when a store write fails (fenced: the lock is lost). */
  onStoreFailure: (e: Error) => void = () => {};
  /** The policy engine (the same as a router's) and where connections meet it. */
  readonly policy: PolicyEngine;
  private readonly policyGate: PolicyGate;
  /** Failed authentications: logged, counted by host; repeated failures slow that host's new connections. */
  readonly authGuard: AuthGuard;

  constructor(readonly settings: BrokerServerSettings, readonly logger: Logger) {
    this.pump = new ConnectionPump({ beforeWrite: (now) => this.beforeWrite(now), onWritable: (c) => this.onWritable(c) }, logger);
    this.policy = new PolicyEngine(settings.policy ?? { ...POLICY_DEFAULTS, vhosts: [] });
    this.policyGate = new PolicyGate(this.policy, (level, text) => this.logger.log('POLICY', level, text));
    this.authGuard = new AuthGuard(logger);
  }

  /** Opens every listener; resolves when all listen. */
  async start(): Promise<void> {
    this.listeners.push(...await openListeners(this.settings.listeners, (t, deadline, l) => this.accept(t, deadline, l), this.logger));
    this.settings.listeners.forEach((l, i) => this.bound.push({ name: l.name, host: this.listeners[i].host, port: this.listeners[i].port }));
    this.tickTimer = setInterval(() => this.tick(), 100);
  }

  private accept(t: Transport, deadline: number, l: BrokerListenerSettings, throttled = false): void {
    if (this.stopping) {
      t.stream.destroy();
      return;
    }
    // A host whose authentications keep failing is served, later.
    if (!throttled && this.authGuard.holdBack(t.peer, l.name, (waited) => this.accept(t, deadline + waited, l, true))) return;
    const ctx = new ConnCtx(t, l, this.nextConnId++);
    if (!this.policyGate.onAccept(ctx.policy, t.peer)) {
      t.stream.destroy();
      return;
    }
    // A pair's members share their listener settings: the scheme is this listener's.
    const scheme = l.transport?.tls && l.transport.requireSsl ? 'amqps' : 'amqp';
    // Artemis's exact form (symbol keys, int port): qdrouterd 1.19 crashes on string keys.
    const failover = failoverServerList(this.settings.failoverServers(), scheme);
    const conn = new Connection(
      acceptedConnectionOptions(l, t, {
        containerId: this.settings.id,
        maxMessageSize: this.settings.maxMessageSize,
        users: this.settings.users,
        offeredCapabilities: ['ANONYMOUS-RELAY', 'SHARED-SUBS', 'DELAYED_DELIVERY'],
        properties: { product: 'amqp-mesh-broker', version: VERSION, [FAILOVER_SERVER_LIST]: failover },
      }),
      this,
      Date.now(),
    );
    this.pump.attach(conn, ctx, deadline);
    this.logger.log('SERVER', 'info', `[C${ctx.id}] Accepted connection from ${t.peer} on ${l.name}${t.kind === 'tcp' ? '' : ` (${t.kind}${t.externalId ? `, certificate ${t.externalId}` : ''})`}`);
  }

  /** A blocked connection's transport drained: its consumers may be fed again. */
  private onWritable(conn: Connection): void {
    for (const c of (conn.ctx as ConnCtx).consumers) this.core.onWritable(c);
  }

  private touch(conn: Connection): void {
    this.pump.touch(conn);
  }

  /** Before a batch is written: dispatch, finish drains, start the group commit. */
  private beforeWrite(now: number): void {
    this.core.dispatch(now);
    if (this.drainLinks.size > 0) {
      for (const link of this.drainLinks) {
        const lc = link.ctx as ConsumerLinkCtx | null;
        if (link.credit > 0 && link.attached) {
          link.conn.drainComplete(link);
          this.touch(link.conn);
        }
        if (lc) this.core.onCredit(lc.consumer, link.credit);
      }
      this.drainLinks.clear();
    }
    if (this.core.takeStoreDirty() || this.awaitingSync.length > 0) this.requestSync();
  }

  /** One store sync for every durable delivery received since the last one (group commit). */
  private requestSync(): void {
    const batch = this.awaitingSync;
    this.awaitingSync = [];
    const mark = this.core.evictionMark();
    this.core.store.sync((err) => {
      if (err) {
        this.logger.log('STORE', 'error', `store write failed: ${err.message}; ${batch.length} deliveries left unsettled`);
        this.onStoreFailure(err);
        return;
      }
      for (const d of batch) {
        const p = d.link.ctx as ProducerCtx;
        p.pending--;
        const conn = d.link.conn;
        if (conn.closed) continue;
        conn.updateIn(d, STATE.accepted, true);
        this.topUp(d.link);
        this.touch(conn);
      }
      this.core.evictIfNeeded(mark);
    });
  }

  private tick(): void {
    const now = Date.now();
    this.core.onTick(now);
    this.pump.tick(now);
    this.pump.schedule();
  }

  /** Closes every connection and stops listening. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    for (const l of this.listeners) l.close();
    await this.pump.stop({ condition: 'amqp:connection:forced', description: 'broker shutting down' });
  }

  /** Drops every transport at once (stepping down: nothing more may be written or acknowledged). */
  abort(): void {
    this.stopping = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    for (const l of this.listeners) l.close();
    this.pump.abort();
  }

  // ------------------------------------------------------------------ BrokerEffects

  canSend(c: Consumer): boolean {
    const link = c.handle as Link;
    return link.conn.canSend(link);
  }

  deliver(c: Consumer, ref: Ref, payload: Buffer): void {
    const link = c.handle as Link;
    const settled = c.preSettled || c.browse;
    link.conn.send(link, payload, settled, settled ? null : ref);
    this.touch(link.conn);
  }

  addressHasRoom(address: string): void {
    const links = this.producersByAddress.get(address);
    if (links) for (const l of links) this.topUp(l);
  }

  log(level: 'error' | 'warning' | 'info' | 'debug' | 'trace', msg: string): void {
    this.logger.log('BROKER', level, msg);
  }

  // ------------------------------------------------------------------ ConnectionHandler

  /** A client's open: its vhost (the open's hostname) and user decide, as on a router. */
  decideOpen(conn: Connection): { refuse: AmqpError } | { maxFrameSize?: number; channelMax?: number } | null {
    const ctx = conn.ctx as ConnCtx;
    return this.policyGate.decideOpen(ctx.policy, conn, splitHostPort(ctx.transport.peer)[0], conn.remoteOpen?.hostname ?? '');
  }

  decideBegin(conn: Connection, open: number): AmqpError | null {
    return this.policyGate.decideBegin((conn.ctx as ConnCtx).policy, open);
  }

  onOversize(link: Link): void {
    this.policyGate.onOversize((link.conn.ctx as ConnCtx).policy, link);
  }

  onAuthFailed(conn: Connection, mechanism: string, user: string | null, reason: string): void {
    const ctx = conn.ctx as ConnCtx;
    this.authGuard.onFailure(ctx.id, ctx.transport.peer, ctx.listener.name, mechanism, user, reason);
  }

  onOpen(conn: Connection): void {
    const ctx = conn.ctx as ConnCtx;
    if (conn.saslMechanism !== null && conn.saslMechanism !== 'ANONYMOUS') this.authGuard.onSuccess(ctx.transport.peer);
    this.logger.log('SERVER', 'info', `[C${ctx.id}] Connection open: container-id ${conn.remoteOpen?.containerId}, user ${conn.user}`);
  }

  private refuse(link: Link, a: AttachFrame, error: AmqpError): void {
    this.logger.log('BROKER', 'info', `[C${(link.conn.ctx as ConnCtx).id}] refusing link ${link.name}: ${error.condition}: ${error.description}`);
    link.refuse(error, a);
  }

  onAttach(link: Link, a: AttachFrame): void {
    const refused = this.policyGate.decideAttach((link.conn.ctx as ConnCtx).policy, link, a);
    if (refused !== null) return this.refuse(link, a, refused);
    try {
      if (link.isSender) this.attachConsumer(link, a);
      else this.attachProducer(link, a);
    } catch (e) {
      if (e instanceof BrokerError) return this.refuse(link, a, { condition: e.condition, description: e.message });
      if (e instanceof DecodeError) return this.refuse(link, a, { condition: 'amqp:decode-error', description: e.message });
      throw e;
    }
  }

  private attachProducer(link: Link, a: AttachFrame): void {
    const tgt = a.target;
    const ctx = link.conn.ctx as ConnCtx;
    if (tgt !== null && tgt.type === 'coordinator') {
      link.ctx = new ProducerCtx(null, null, true);
      link.accept({}, a);
      ctx.producers.add(link);
      this.topUp(link);
      return;
    }
    if (tgt !== null && tgt.dynamic) throw new BrokerError('dynamic targets are not supported; use a dynamic source for a temporary queue', 'amqp:not-implemented');
    let address: string | null = null;
    if (tgt !== null && tgt.address !== null) {
      const problem = checkAddress(tgt.address, this.settings.maxAddressLength);
      if (problem) throw new BrokerError(`invalid target address: ${problem}`, 'amqp:invalid-field');
      address = tgt.address;
      // Creates the address now so an attach to a non-existent one (autoCreate off) is refused.
      this.core.address(address, hintOf(tgt), true);
    }
    link.address = address;
    link.ctx = new ProducerCtx(address, tgt ? hintOf(tgt) : null, false);
    link.accept({}, a);
    ctx.producers.add(link);
    if (address !== null) {
      let set = this.producersByAddress.get(address);
      if (!set) this.producersByAddress.set(address, (set = new Set()));
      set.add(link);
    }
    this.topUp(link);
  }

  /** Grants credit up to the window minus unsynced deliveries, unless the address is blocked. */
  private topUp(link: Link): void {
    const p = link.ctx as ProducerCtx;
    if (!link.attached || link.detachSent) return;
    if (p.address !== null && this.core.isFull(p.address) && this.core.settingsOf(p.address).addressFullPolicy === 'BLOCK') {
      if (link.credit > 0) link.conn.setCredit(link, 0);
      this.touch(link.conn);
      return;
    }
    const want = this.settings.linkCredit - p.pending;
    if (want > 0 && link.credit < want / 2 + 1) {
      link.conn.setCredit(link, want);
      this.touch(link.conn);
    }
  }

  private attachConsumer(link: Link, a: AttachFrame): void {
    const src = a.source;
    const ctx = link.conn.ctx as ConnCtx;
    const containerId = link.conn.remoteOpen?.containerId ?? '';
    if (src === null) throw new BrokerError('a receiving link needs a source', 'amqp:invalid-field');
    const fields = sourceFields(src);
    const selector = fields.selector;
    const shared = src.capabilities.includes('shared');
    const global = src.capabilities.includes('global');
    let address = src.address;
    let replySource: Parameters<Link['accept']>[0]['source'];
    let subscription: { name: string; durable: boolean; shared: boolean } | null = null;
    const durable = src.durable > 0 && src.expiryPolicy === 'never';
    const subName = () => {
      // qpid-jms names shared subscriber links "name", "name|2"...; non-durable shared ones "name|volatile1".
      const base = shared ? link.name.replace(/\|(volatile)?\d+$/, '') : link.name;
      return shared && global ? base : `${containerId}:${base}`;
    };
    if (src.dynamic) {
      address = `temp.${randomBytes(9).toString('base64url')}`;
      this.core.address(address, 'queue', true);
      replySource = { type: 'source', address, dynamic: true };
    } else if (address === null) {
      // Re-attach to (or unsubscribe from) an existing durable subscription by link name.
      const q = this.core.subscription(subName());
      if (q === undefined) throw new BrokerError(`no subscription named ${subName()}`, 'amqp:not-found');
      address = q.address;
      subscription = { name: q.name, durable: q.durable, shared: q.shared };
      replySource = { type: 'source', address, durable: src.durable, expiryPolicy: 'never', capabilities: ['topic'] };
    } else {
      const problem = checkAddress(address, this.settings.maxAddressLength);
      if (problem) throw new BrokerError(`invalid source address: ${problem}`, 'amqp:invalid-field');
    }
    const hint = hintOf(src);
    const settings = this.core.address(address, hint, true).settings;
    if (settings.multicast && subscription === null && (durable || shared)) {
      subscription = { name: subName(), durable, shared };
    }
    const browse = src.distributionMode === 'copy';
    const c = this.core.attachConsumer({ address, handle: link, selector: selector ?? (subscription === null ? null : null), browse, preSettled: a.sndSettleMode === 1 || browse, hint, subscription });
    if (subscription !== null && selector !== null) {
      // The filter belongs to the subscription (kept for its whole life).
    }
    link.ctx = new ConsumerLinkCtx(c);
    link.address = address;
    link.accept({ source: replySource, sndSettleMode: browse ? 1 : undefined }, a);
    ctx.consumers.add(c);
    this.logger.log('BROKER', 'debug', `[C${ctx.id}] consumer ${link.name} on ${c.queue.name}${browse ? ' (browse)' : ''}${selector ? ` selector ${selector}` : ''}`);
  }

  onFlow(link: Link, drain: boolean): void {
    const lc = link.ctx as ConsumerLinkCtx | null;
    if (lc === null || !(lc instanceof ConsumerLinkCtx)) return;
    this.core.onCredit(lc.consumer, link.credit);
    if (drain) this.drainLinks.add(link);
    this.pump.schedule();
  }

  onDelivery(link: Link, d: InDelivery): void {
    const p = link.ctx as ProducerCtx;
    const conn = link.conn;
    const now = Date.now();
    if (p.coordinator) return this.onCoordinatorMessage(link, d, now);
    try {
      let address = p.address;
      let hint = p.hint;
      // The payload is a view of a socket chunk shared with other messages: a queue keeps its own copy
      // so that memory accounting and body eviction free what they count.
      d.payload = Buffer.from(d.payload);
      const info = scanBrokerMessage(d.payload);
      const pc = (conn.ctx as ConnCtx).policy;
      if (pc.policy !== null) {
        const rejected = this.policyGate.checkMessage(pc, d.payload, address === null ? info.to : null);
        if (rejected !== null) {
          if (!d.settled) conn.updateIn(d, rejected, true);
          return this.topUp(link);
        }
      }
      if (address === null) {
        if (info.to === null) {
          if (!d.settled) conn.updateIn(d, info.toInvalid ? REJECT_BAD_TO : REJECT_NO_TO, true);
          return this.topUp(link);
        }
        address = info.to;
        hint = null;
        const problem = checkAddress(address, this.settings.maxAddressLength);
        if (problem) throw new BrokerError(`invalid "to" address: ${problem}`, 'amqp:invalid-field');
        if (this.core.isFull(address)) {
          // An anonymous link cannot be blocked for one address: refuse this message instead.
          throw new BrokerError(`address ${address} is full`, 'amqp:resource-limit-exceeded');
        }
      }
      if (d.state !== null && stateCodeOf(d.state) === D.TransactionalState) {
        const txnId = transactionId(d.state);
        const tx = txnId === null ? undefined : this.core.txOf(txnId);
        if (tx === undefined) throw new BrokerError('unknown transaction', 'amqp:transaction:unknown-id');
        this.core.txSend(tx, address, hint, d.payload);
        if (!d.settled) conn.updateIn(d, transactionalState(tx.id, STATE.accepted), true);
        return this.topUp(link);
      }
      const r = this.core.send(address, hint, d.payload, now, info);
      if (r.needsSync && !d.settled) {
        p.pending++;
        this.awaitingSync.push(d);
      } else if (r.needsSync) {
        // Pre-settled: nobody waits, but the message is stored all the same.
      } else if (!d.settled) conn.updateIn(d, STATE.accepted, true);
    } catch (e) {
      if (!d.settled) {
        if (e instanceof BrokerError) conn.updateIn(d, encodeRejected({ condition: e.condition, description: e.message }), true);
        else if (e instanceof DecodeError) conn.updateIn(d, REJECT_DECODE, true);
        else throw e;
      }
    }
    this.topUp(link);
  }

  private onCoordinatorMessage(link: Link, d: InDelivery, now: number): void {
    const conn = link.conn;
    const ctx = conn.ctx as ConnCtx;
    let body: unknown;
    try {
      body = amqpValueOf(d.payload);
    } catch {
      if (!d.settled) conn.updateIn(d, REJECT_DECODE, true);
      return this.topUp(link);
    }
    const code = body instanceof Described ? descriptorCode(body.descriptor) : -1;
    const fields = body instanceof Described && Array.isArray(body.value) ? body.value : [];
    if (code === D.Declare) {
      const tx = this.core.declare();
      ctx.txIds.push(tx.id);
      conn.updateIn(d, declaredState(tx.id), true);
    } else if (code === D.Discharge) {
      const id = Buffer.isBuffer(fields[0]) ? fields[0] : null;
      const tx = id === null ? undefined : this.core.txOf(id);
      if (tx === undefined) {
        conn.updateIn(d, encodeRejected({ condition: 'amqp:transaction:unknown-id', description: 'no such transaction' }), true);
      } else {
        const i = ctx.txIds.findIndex((x) => x.equals(tx.id));
        if (i >= 0) ctx.txIds.splice(i, 1);
        const needsSync = this.core.discharge(tx, fields[1] === true, now);
        if (needsSync) {
          (link.ctx as ProducerCtx).pending++;
          this.awaitingSync.push(d);
        } else conn.updateIn(d, STATE.accepted, true);
      }
    } else {
      conn.updateIn(d, encodeRejected({ condition: 'amqp:not-implemented', description: 'the coordinator takes declare and discharge only' }), true);
    }
    this.topUp(link);
  }

  onOutcome(od: OutDelivery, code: number, state: Buffer | null, settled: boolean): void {
    const ref = od.ctx as Ref | null;
    if (ref === null) return;
    const lc = od.link.ctx as ConsumerLinkCtx;
    let outcome = code;
    let outcomeState = state;
    if (code === D.TransactionalState && state !== null) {
      const parsed = transactionalOutcome(state);
      const tx = parsed.txnId === null ? undefined : this.core.txOf(parsed.txnId);
      if (tx !== undefined && parsed.outcome === D.Accepted) {
        this.core.txAck(tx, ref);
        if (!settled) od.link.conn.updateOut(od, state, true);
        return;
      }
      outcome = parsed.outcome;
      outcomeState = parsed.outcomeRaw;
    }
    switch (outcome) {
      case D.Accepted:
        this.core.accept(ref);
        break;
      case D.Released:
        this.core.redeliver(ref, false, false, lc.consumer);
        break;
      case D.Modified: {
        const m = outcomeState ? decodeModified(outcomeState) : { deliveryFailed: false, undeliverableHere: false };
        this.core.redeliver(ref, m.deliveryFailed, m.undeliverableHere, lc.consumer);
        break;
      }
      case D.Rejected:
        this.core.reject(ref);
        break;
      default:
        // received, or settled with no outcome: settled without an outcome counts as accepted (AMQP 3.4).
        if (settled) this.core.accept(ref);
        return;
    }
    if (!settled) od.link.conn.updateOut(od, null, true);
    this.touch(od.link.conn);
  }

  onSessionWritable(session: Session): void {
    const ctx = session.conn.ctx as ConnCtx;
    for (const c of ctx.consumers) if ((c.handle as Link).session === session) this.core.onWritable(c);
    this.pump.schedule();
  }

  onInSettled(): void {}

  onLinkGone(link: Link, _error: AmqpError | null, reason: LinkGoneReason): void {
    const ctx = link.conn.ctx as ConnCtx;
    this.policyGate.onLinkGone(ctx.policy, link);
    if (link.ctx instanceof ConsumerLinkCtx) {
      const c = link.ctx.consumer;
      ctx.consumers.delete(c);
      this.core.detachConsumer(c, reason === 'detached' && link.remoteClosed);
      this.pump.schedule();
    } else if (link.ctx instanceof ProducerCtx) {
      ctx.producers.delete(link);
      if (link.ctx.address !== null) this.producersByAddress.get(link.ctx.address)?.delete(link);
    }
  }

  onClosed(conn: Connection, reason: CloseReason, error: AmqpError | null): void {
    const ctx = conn.ctx as ConnCtx;
    this.policyGate.onClosed(ctx.policy, ctx.transport.peer);
    // Undischarged transactions die with their connection (AMQP 4.4.1: rolled back).
    this.core.rollbackAll(ctx.txIds, Date.now());
    ctx.txIds.length = 0;
    this.logger.log('SERVER', 'info', `[C${ctx.id}] Connection closed (${reason})${error ? `: ${error.condition} ${error.description ?? ''}` : ''}`);
    this.touch(conn);
  }

}

/** 'queue' or 'topic' from a terminus's capabilities (qpid-jms, Artemis). */
function hintOf(t: Terminus): 'queue' | 'topic' | null {
  for (const c of t.capabilities) {
    if (c === 'queue' || c === 'temporary-queue') return 'queue';
    if (c === 'topic' || c === 'temporary-topic') return 'topic';
  }
  return null;
}

/** The parts of a source the core needs beyond {@link Terminus}: the selector filter. */
function sourceFields(src: Terminus): { selector: string | null } {
  const v = new Reader(src.raw).read();
  const f = v instanceof Described && Array.isArray(v.value) ? (v.value as unknown[]) : [];
  const filter = f[7];
  if (filter === null || filter === undefined) return { selector: null };
  const entries: [unknown, unknown][] = filter instanceof Map ? [...filter.entries()] : Object.entries(filter as Record<string, unknown>);
  for (const [, val] of entries) {
    if (!(val instanceof Described)) continue;
    const d = val.descriptor;
    const isSelector = d === SELECTOR_FILTER_SYMBOL || (d instanceof Sym && d.name === SELECTOR_FILTER_SYMBOL) || (typeof d === 'bigint' && d === SELECTOR_FILTER_CODE) || d === Number(SELECTOR_FILTER_CODE);
    if (isSelector) {
      if (typeof val.value !== 'string') throw new BrokerError('selector filter value must be a string', 'amqp:invalid-field');
      return { selector: val.value };
    }
  }
  return { selector: null };
}

function stateCodeOf(state: Buffer): number {
  if (state.length < 3 || state[0] !== 0x00) return -1;
  if (state[1] === 0x53) return state[2];
  const v = new Reader(state).read();
  return v instanceof Described ? descriptorCode(v.descriptor) : -1;
}

function transactionId(state: Buffer): Buffer | null {
  const v = new Reader(state).read();
  if (!(v instanceof Described) || !Array.isArray(v.value)) return null;
  return Buffer.isBuffer(v.value[0]) ? Buffer.from(v.value[0]) : null;
}

/** The txn-id and inner outcome of a transactional-state. */
function transactionalOutcome(state: Buffer): { txnId: Buffer | null; outcome: number; outcomeRaw: Buffer | null } {
  const v = new Reader(state).read();
  if (!(v instanceof Described) || !Array.isArray(v.value)) return { txnId: null, outcome: 0, outcomeRaw: null };
  const id = Buffer.isBuffer(v.value[0]) ? Buffer.from(v.value[0]) : null;
  const inner = v.value[1];
  if (!(inner instanceof Described)) return { txnId: id, outcome: 0, outcomeRaw: null };
  const w = new Writer(64);
  w.value(inner);
  return { txnId: id, outcome: descriptorCode(inner.descriptor), outcomeRaw: w.take() };
}

function transactionalState(txnId: Buffer, outcome: Buffer): Buffer {
  const w = new Writer(64);
  w.descriptor(D.TransactionalState);
  const m = w.beginList();
  w.binary(txnId);
  w.bytes(outcome);
  w.endList(m, 2);
  return w.take();
}

function declaredState(txnId: Buffer): Buffer {
  const w = new Writer(32);
  w.descriptor(D.Declared);
  const m = w.beginList();
  w.binary(txnId);
  w.endList(m, 1);
  return w.take();
}

/** The amqp-value section's value of a coordinator message. */
function amqpValueOf(payload: Buffer): unknown {
  const r = new Reader(payload);
  while (r.off < payload.length) {
    const s = r.read();
    if (s instanceof Described && descriptorCode(s.descriptor) === D.AmqpValue) return s.value;
  }
  throw new DecodeError('coordinator message has no amqp-value section');
}
