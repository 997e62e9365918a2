/**
 * Where a server's connections meet the policy engine: the router's and the broker's accepted
 * sockets, opens, sessions, links and messages go through one gate, which asks the engine,
 * keeps each connection's policy state, applies the settings to the engine (frame size, channels,
 * session window, message size) and logs the refusals as qdrouterd does.
 */
import type { Connection, Link } from '../amqp/engine/connection';
import { encodeRejected, type AmqpError, type AttachFrame } from '../amqp/performatives';
import { readUserId } from '../amqp/sections';
import { CONNECTION_DISALLOWED, RESOURCE_LIMIT_EXCEEDED, type ConnectionPolicy, type PolicyEngine } from './engine';

/** qdrouterd 1.19's outcomes for messages its policy refuses (router_node.c). */
const REJECT_POLICY_TARGET = encodeRejected({ condition: 'amqp:unauthorized-access', description: 'policy violation on target' });
const REJECT_USER_ID = encodeRejected({ condition: 'amqp:unauthorized-access', description: 'user_id proxy violation' });

/** One connection's policy state. */
export class PolicyConnection {
  /** Counted against the global maxConnections (an accepted socket). */
  counted = false;
  /** The rules its open was approved under (vhost policy on). */
  policy: ConnectionPolicy | null = null;
  /** Links counted against maxSenders/maxReceivers. */
  readonly links = new Set<Link>();
  constructor(readonly id: number) {}
}

/** What the gate logs through (the server's logger, module POLICY). */
export type PolicyLog = (level: 'info' | 'debug' | 'error', text: string) => void;

export class PolicyGate {
  constructor(readonly engine: PolicyEngine, private readonly log: PolicyLog) {}

  /** An accepted socket: false when it is past the global limit (close it before any AMQP). */
  onAccept(pc: PolicyConnection, peer: string): boolean {
    if (!this.engine.decideSocket()) {
      this.log('info', `DENY Connection '${peer}' based on global connection count. nConnections= ${this.engine.counters.connectionsCurrent}`);
      return false;
    }
    pc.counted = true;
    return true;
  }

  /**
   * A peer's open on an accepted connection: its vhost (`vhost`: a listener's policyVhost, else
   * the open's hostname) and user decide. Returns the refusal, or the limits to open with.
   */
  decideOpen(pc: PolicyConnection, conn: Connection, host: string, vhost: string): { refuse: AmqpError } | { maxFrameSize?: number; channelMax?: number } | null {
    if (!this.engine.enabled) return null;
    const d = this.engine.decideOpen({ connId: pc.id, user: conn.user ?? '', host, vhost });
    if (!d.ok) {
      this.log('info', `[C${pc.id}] ${d.log}`);
      return { refuse: { condition: d.condition, description: d.description } };
    }
    if (d.policy === null) return null;
    this.adopt(pc, conn, d.policy);
    this.log('debug', `[C${pc.id}] ALLOW AMQP Open user: ${d.policy.user}, rhost: ${host}, vhost: ${d.policy.vhost}. Usergroup: '${d.policy.group}'`);
    const s = d.policy.settings;
    if (s.maxSessionWindow > 0) conn.opts.incomingWindow = Math.max(1, Math.floor(s.maxSessionWindow / (s.maxFrameSize || conn.opts.maxFrameSize)));
    return {
      ...(s.maxFrameSize > 0 ? { maxFrameSize: s.maxFrameSize } : {}),
      ...(s.maxSessions > 0 ? { channelMax: s.maxSessions - 1 } : {}),
    };
  }

  /** A connection the server made whose connector names a policyVhost: its `$connector` group, or a refusal. */
  decideConnectorOpen(pc: PolicyConnection, conn: Connection, vhost: string): { refuse: AmqpError } | null {
    if (!this.engine.enabled) return null;
    const p = this.engine.connectorPolicy(vhost, conn.user ?? '');
    if (p === null) {
      this.log('error', `[C${pc.id}] Failed to find policyVhost settings for connection '${pc.id}', policyVhost: '${vhost}'`);
      return { refuse: { condition: RESOURCE_LIMIT_EXCEEDED, description: CONNECTION_DISALLOWED } };
    }
    this.adopt(pc, conn, p);
    return null;
  }

  private adopt(pc: PolicyConnection, conn: Connection, p: ConnectionPolicy): void {
    pc.policy = p;
    if (p.maxMessageSize > 0) {
      conn.opts.maxMessageSize = Math.min(conn.opts.maxMessageSize, p.maxMessageSize);
      conn.opts.oversizeClosesConnection = true;
    }
  }

  /** A session the peer begins (`open` of its sessions open already). */
  decideBegin(pc: PolicyConnection, open: number): AmqpError | null {
    if (pc.policy === null) return null;
    const d = this.engine.decideSession(pc.policy, open);
    if (d.ok) return null;
    this.log('info', `[C${pc.id}] ${d.log}`);
    return { condition: d.condition, description: d.description };
  }

  /** A peer's attach: the refusal, or null (then the link counts until it goes). */
  decideAttach(pc: PolicyConnection, link: Link, a: AttachFrame): AmqpError | null {
    const p = pc.policy;
    if (p === null) return null;
    const d = link.isSender
      ? this.engine.decideReceiver(p, a.source?.address ?? null, a.source?.dynamic ?? false, a.source?.capabilities ?? [])
      : this.engine.decideSender(p, a.target?.address ?? null, a.target?.capabilities ?? []);
    if (d.ok) {
      pc.links.add(link);
      return null;
    }
    this.log('info', `[C${pc.id}] ${d.log}`);
    return { condition: d.condition, description: d.description };
  }

  /** A link gone (either side closed it). */
  onLinkGone(pc: PolicyConnection, link: Link): void {
    if (pc.policy !== null && pc.links.delete(link)) this.engine.onLinkClosed(pc.policy, !link.isSender);
  }

  /**
   * A message from the peer: the rejection to answer with (a user-id that is not the connection's
   * user, unless the group allows proxying; an anonymous sender's `to` outside the targets), or null.
   */
  checkMessage(pc: PolicyConnection, payload: Buffer, anonymousTo: string | null): Buffer | null {
    const p = pc.policy;
    if (p === null) return null;
    if (!p.settings.allowUserIdProxy) {
      const uid = readUserId(payload, 0, payload.length);
      if (uid !== null && uid.toString('utf8') !== p.user) {
        this.log('debug', `[C${pc.id}] Message rejected due to user_id proxy violation. User:${p.user}`);
        return REJECT_USER_ID;
      }
    }
    if (anonymousTo !== null && !this.engine.approveLinkName(p, anonymousTo, false)) {
      this.log('debug', `[C${pc.id}] Message rejected due to policy violation on target. User:${p.user}`);
      return REJECT_POLICY_TARGET;
    }
    return null;
  }

  /** An oversize message was refused. */
  onOversize(pc: PolicyConnection, link: Link): void {
    this.engine.countOversize(pc.policy);
    this.log('info', `[C${pc.id}] DENY AMQP Transfer maxMessageSize exceeded on link ${link.name}`);
  }

  /** The connection closed: its counts go. */
  onClosed(pc: PolicyConnection, peer: string): void {
    if (!pc.counted) return;
    pc.counted = false;
    this.engine.onSocketClosed(pc.id, true);
    const p = pc.policy;
    if (p !== null) {
      this.log('debug', `[C${pc.id}] Connection '${peer}' closed with resources n_senders=${p.senders}, n_receivers=${p.receivers}, senders_denied=${p.stats.senderDenied}, receivers_denied=${p.stats.receiverDenied}`);
    }
  }
}
