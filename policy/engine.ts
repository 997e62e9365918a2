/**
 * The policy of a router or broker (qdrouterd's `policy` and `vhost`): which connections are
 * allowed and with which settings, which sessions and links, and the counters management shows.
 * Pure and synchronous: the I/O layer asks before it acts and applies the decision (refusal
 * conditions and descriptions are qdrouterd's, which clients and tests match).
 */
import { addressTokens, compareMatchers, compileAddressMatcher, matchesTokens } from '../amqp/address';
import { matchesHostSpecs } from './hosts';
import { approveName, approveNameByPattern } from './names';
import { DEFAULT_GROUP, type GroupSettings, type VhostRules } from './ruleset';

/** The global policy (qdrouterd's `policy` entity) and the vhosts. */
export interface PolicySettings {
  /** Open connections at most (every listener; counted whether or not vhost policy is on). */
  readonly maxConnections: number;
  /** Apply vhost rules to connections opened by peers. */
  readonly enableVhostPolicy: boolean;
  /** Vhost names (and aliases) are address patterns (`*.example.com`). */
  readonly enableVhostNamePatterns: boolean;
  /** The vhost used when the open frame names none that exists (when it exists). */
  readonly defaultVhost: string;
  /** The largest message (bytes, 0: no limit) where neither vhost nor group says. */
  readonly maxMessageSize: number;
  readonly vhosts: readonly VhostRules[];
}

/** qdrouterd's words on refusal. */
export const CONNECTION_DISALLOWED = 'connection disallowed by local policy';
export const SESSION_DISALLOWED = 'session disallowed by local policy';
export const LINK_DISALLOWED = 'link disallowed by local policy';
export const RESOURCE_LIMIT_EXCEEDED = 'amqp:resource-limit-exceeded';
export const UNAUTHORIZED_ACCESS = 'amqp:unauthorized-access';

/** A vhost's counters (management's vhostStats). */
export interface VhostStats {
  connectionsApproved: number;
  connectionsDenied: number;
  connectionsCurrent: number;
  sessionDenied: number;
  senderDenied: number;
  receiverDenied: number;
  maxMessageSizeDenied: number;
  readonly perUser: Map<string, Set<number>>;
  readonly perHost: Map<string, Set<number>>;
}

/** What an approved connection may do (its vhost, group and their settings). */
export interface ConnectionPolicy {
  readonly vhost: string;
  readonly group: string;
  readonly user: string;
  readonly settings: GroupSettings;
  /** Resolved: group, else vhost, else global (0: no limit). */
  readonly maxMessageSize: number;
  readonly stats: VhostStats;
  /** Senders (peer sends) and receivers (peer receives) the connection has open. */
  senders: number;
  receivers: number;
}

/** The outcome of a decision: allowed, or refused with an AMQP condition and a line for the log. */
export type PolicyDecision = { ok: true } | { ok: false; condition: string; description: string; log: string };

/** The global counters (management's `policy` entity). */
export interface PolicyCounters {
  connectionsProcessed: number;
  connectionsDenied: number;
  connectionsCurrent: number;
  linksDenied: number;
  maxMessageSizeDenied: number;
  totalDenials: number;
}

/** What is known of a connection when its open arrives. */
export interface OpenFacts {
  readonly connId: number;
  readonly user: string;
  /** The peer's address. */
  readonly host: string;
  /** The vhost asked for: the listener's policyVhost, else the open's hostname, else ''. */
  readonly vhost: string;
}

const newStats = (): VhostStats => ({
  connectionsApproved: 0, connectionsDenied: 0, connectionsCurrent: 0, sessionDenied: 0, senderDenied: 0, receiverDenied: 0, maxMessageSizeDenied: 0,
  perUser: new Map(), perHost: new Map(),
});

const deny = (condition: string, description: string, log: string): PolicyDecision => ({ ok: false, condition, description, log });
const OK: PolicyDecision = { ok: true };

/** The capability that marks a waypoint terminus (its prefix) and a fallback one. */
const WAYPOINT_CAPABILITY = 'qd.waypoint';
const FALLBACK_CAPABILITY = 'qd.fallback';

/** The policy state of a router or broker: rules, counters, the connections it counted. */
export class PolicyEngine {
  private settings: PolicySettings;
  private vhosts = new Map<string, VhostRules>();
  private aliases = new Map<string, string>();
  /** Vhost names and aliases compiled as patterns (enableVhostNamePatterns), made once per settings. */
  private patterns: { key: string; m: ReturnType<typeof compileAddressMatcher> }[] = [];
  /** Kept when a vhost is deleted, as qdrouterd keeps them. */
  readonly stats = new Map<string, VhostStats>();
  readonly counters: PolicyCounters = { connectionsProcessed: 0, connectionsDenied: 0, connectionsCurrent: 0, linksDenied: 0, maxMessageSizeDenied: 0, totalDenials: 0 };
  private readonly opened = new Map<number, { stats: VhostStats; user: string; host: string }>();

  constructor(settings: PolicySettings) {
    this.settings = settings;
    this.setSettings(settings);
  }

  /** New rules (start, reload, a vhost created, updated or deleted through management); counts stay. */
  setSettings(settings: PolicySettings): void {
    this.settings = settings;
    this.vhosts = new Map(settings.vhosts.map((v) => [v.hostname, v]));
    this.aliases = new Map();
    for (const v of settings.vhosts) {
      for (const a of v.aliases) this.aliases.set(a, v.hostname);
      if (!this.stats.has(v.hostname)) this.stats.set(v.hostname, newStats());
    }
    this.patterns = settings.enableVhostNamePatterns
      ? [...this.vhosts.keys(), ...this.aliases.keys()].map((key) => ({ key, m: compileAddressMatcher({ pattern: key }) }))
      : [];
  }

  get enabled(): boolean {
    return this.settings.enableVhostPolicy;
  }

  /** A socket accepted: within the global connection limit? (Counted either way.) */
  decideSocket(): boolean {
    this.counters.connectionsProcessed++;
    if (this.counters.connectionsCurrent < this.settings.maxConnections) {
      this.counters.connectionsCurrent++;
      return true;
    }
    this.counters.connectionsDenied++;
    this.counters.totalDenials++;
    return false;
  }

  /** A socket that {@link decideSocket} allowed closed (and its vhost counts, if its open was approved). */
  onSocketClosed(connId: number, counted: boolean): void {
    if (counted && this.counters.connectionsCurrent > 0) this.counters.connectionsCurrent--;
    const o = this.opened.get(connId);
    if (o === undefined) return;
    this.opened.delete(connId);
    o.stats.connectionsCurrent--;
    for (const [map, key] of [[o.stats.perUser, o.user], [o.stats.perHost, o.host]] as const) {
      const set = map.get(key);
      set?.delete(connId);
      if (set?.size === 0) map.delete(key);
    }
  }

  /** The vhost whose rules apply to a name: itself, the vhost it aliases, a matching pattern, else the default vhost; '' if none. */
  lookupVhost(name: string): string {
    let v = name;
    if (this.settings.enableVhostNamePatterns && !this.vhosts.has(v) && !this.aliases.has(v)) v = this.matchVhostPattern(v) ?? v;
    v = this.aliases.get(v) ?? v;
    if (this.vhosts.has(v)) return v;
    const d = this.settings.defaultVhost;
    return d !== '' && this.vhosts.has(d) ? d : '';
  }

  private matchVhostPattern(name: string): string | undefined {
    const tokens = addressTokens(name);
    let best: (typeof this.patterns)[number] | undefined;
    for (const p of this.patterns) {
      if (matchesTokens(p.m, tokens) && (best === undefined || compareMatchers(p.m, best.m) < 0)) best = p;
    }
    return best?.key;
  }

  /**
   * A peer's open: the connection's vhost and group, or a refusal (counted). With vhost policy
   * off every open is allowed without settings (null).
   */
  decideOpen(f: OpenFacts): { ok: true; policy: ConnectionPolicy | null } | { ok: false; condition: string; description: string; log: string } {
    if (!this.settings.enableVhostPolicy) return { ok: true, policy: null };
    const refuse = (why: string) => {
      this.counters.connectionsDenied++;
      this.counters.totalDenials++;
      return { ok: false as const, condition: RESOURCE_LIMIT_EXCEEDED, description: CONNECTION_DISALLOWED, log: `DENY AMQP Open for user '${f.user}', rhost '${f.host}', vhost '${f.vhost}': ${why}` };
    };
    const name = this.lookupVhost(f.vhost);
    if (name === '') return refuse('No policy defined for vhost');
    const rules = this.vhosts.get(name)!;
    const stats = this.stats.get(name)!;
    const group = rules.userGroups.get(f.user) ?? rules.userGroups.get('*') ?? (rules.allowUnknownUser ? DEFAULT_GROUP : undefined);
    if (group === undefined) {
      stats.connectionsDenied++;
      return refuse('User is not in a user group and unknown users are denied');
    }
    const settings = rules.groups.get(group)!;
    if (!matchesHostSpecs(settings.remoteHosts, f.host)) {
      stats.connectionsDenied++;
      return refuse('User is not allowed to connect from this network host');
    }
    const nUser = stats.perUser.get(f.user)?.size ?? 0;
    const nHost = stats.perHost.get(f.host)?.size ?? 0;
    const why: string[] = [];
    if (stats.connectionsCurrent >= rules.maxConnections) why.push('Connection denied by application connection limit');
    if (nUser >= (settings.maxConnectionsPerUser ?? rules.maxConnectionsPerUser)) why.push('Connection denied by application per user limit');
    if (nHost >= (settings.maxConnectionsPerHost ?? rules.maxConnectionsPerHost)) why.push('Connection denied by application per host limit');
    if (why.length > 0) {
      stats.connectionsDenied++;
      return refuse(why.join('; '));
    }
    stats.connectionsApproved++;
    stats.connectionsCurrent++;
    for (const [map, key] of [[stats.perUser, f.user], [stats.perHost, f.host]] as const) {
      let set = map.get(key);
      if (set === undefined) map.set(key, (set = new Set()));
      set.add(f.connId);
    }
    this.opened.set(f.connId, { stats, user: f.user, host: f.host });
    const maxMessageSize = settings.maxMessageSize ?? rules.maxMessageSize ?? this.settings.maxMessageSize;
    return { ok: true, policy: { vhost: name, group, user: f.user, settings, maxMessageSize, stats, senders: 0, receivers: 0 } };
  }

  /**
   * The settings of a connection the router opened itself (a connector with `policyVhost`): the
   * vhost's `$connector` group, or null when there is none.
   */
  connectorPolicy(vhost: string, user: string): ConnectionPolicy | null {
    const name = this.lookupVhost(vhost);
    const rules = this.vhosts.get(name);
    const settings = rules?.groups.get('$connector');
    if (rules === undefined || settings === undefined) return null;
    const maxMessageSize = settings.maxMessageSize ?? rules.maxMessageSize ?? this.settings.maxMessageSize;
    return { vhost: name, group: '$connector', user, settings, maxMessageSize, stats: this.stats.get(name)!, senders: 0, receivers: 0 };
  }

  /** A session the peer begins, `open` of its sessions being open already. */
  decideSession(p: ConnectionPolicy, open: number): PolicyDecision {
    if (p.settings.maxSessions > 0 && open >= p.settings.maxSessions) {
      this.counters.totalDenials++;
      p.stats.sessionDenied++;
      return deny(RESOURCE_LIMIT_EXCEEDED, SESSION_DISALLOWED, `DENY AMQP Begin Session due to session limit. user: ${p.user}`);
    }
    return OK;
  }

  private denyLink(p: ConnectionPolicy, sender: boolean, condition: string, log: string): PolicyDecision {
    this.counters.linksDenied++;
    this.counters.totalDenials++;
    if (sender) p.stats.senderDenied++;
    else p.stats.receiverDenied++;
    return deny(condition, LINK_DISALLOWED, log);
  }

  /** A link on which the peer sends (qdrouterd's "sender"): target address (null: anonymous) and capabilities. */
  decideSender(p: ConnectionPolicy, target: string | null, capabilities: readonly string[]): PolicyDecision {
    const s = p.settings;
    if (s.maxSenders > 0 && p.senders >= s.maxSenders) {
      return this.denyLink(p, true, RESOURCE_LIMIT_EXCEEDED, `DENY AMQP Attach sender for user '${p.user}', vhost '${p.vhost}' based on maxSenders limit`);
    }
    if (target !== null && target !== '') {
      const refused = this.capabilityRefusal(p, true, target, capabilities);
      if (refused) return refused;
      if (!this.approveLinkName(p, target, false)) {
        return this.denyLink(p, true, UNAUTHORIZED_ACCESS, `DENY AMQP Attach sender link '${target}' for user '${p.user}', vhost '${p.vhost}' based on link target name`);
      }
    } else if (!s.allowAnonymousSender) {
      return this.denyLink(p, true, UNAUTHORIZED_ACCESS, `DENY AMQP Attach anonymous sender for user '${p.user}', vhost '${p.vhost}'`);
    }
    p.senders++;
    return OK;
  }

  /** A link on which the peer receives: source address, dynamic or not, capabilities. */
  decideReceiver(p: ConnectionPolicy, source: string | null, dynamic: boolean, capabilities: readonly string[]): PolicyDecision {
    const s = p.settings;
    if (s.maxReceivers > 0 && p.receivers >= s.maxReceivers) {
      return this.denyLink(p, false, RESOURCE_LIMIT_EXCEEDED, `DENY AMQP Attach receiver for user '${p.user}', vhost '${p.vhost}' based on maxReceivers limit`);
    }
    if (dynamic) {
      if (!s.allowDynamicSource) return this.denyLink(p, false, UNAUTHORIZED_ACCESS, `DENY AMQP Attach receiver dynamic source for user '${p.user}', vhost '${p.vhost}'`);
    } else {
      if (source === null || source === '') return this.denyLink(p, false, UNAUTHORIZED_ACCESS, `DENY AMQP Attach receiver link '' for user '${p.user}', vhost '${p.vhost}'`);
      const refused = this.capabilityRefusal(p, false, source, capabilities);
      if (refused) return refused;
      if (!this.approveLinkName(p, source, true)) {
        return this.denyLink(p, false, UNAUTHORIZED_ACCESS, `DENY AMQP Attach receiver link '${source}' for user '${p.user}', vhost '${p.vhost}' based on link source name`);
      }
    }
    p.receivers++;
    return OK;
  }

  private capabilityRefusal(p: ConnectionPolicy, sender: boolean, address: string, capabilities: readonly string[]): PolicyDecision | null {
    // As qdrouterd: only the first capability is looked at; a denial counts as a sender's.
    const first = capabilities[0];
    const what = sender ? 'sender' : 'receiver';
    if (!p.settings.allowWaypointLinks && first !== undefined && first.startsWith(WAYPOINT_CAPABILITY)) {
      return this.denyLink(p, true, UNAUTHORIZED_ACCESS, `DENY AMQP Attach ${what} link '${address}' for user '${p.user}', vhost '${p.vhost}'.  Waypoint capability not permitted`);
    }
    if (!p.settings.allowFallbackLinks && first === FALLBACK_CAPABILITY) {
      return this.denyLink(p, true, UNAUTHORIZED_ACCESS, `DENY AMQP Attach ${what} link '${address}' for user '${p.user}', vhost '${p.vhost}'.  Fallback capability not permitted`);
    }
    return null;
  }

  /** A link (or message) address under the group's sources (receiving) or targets (sending). */
  approveLinkName(p: ConnectionPolicy, address: string, receiving: boolean): boolean {
    const s = p.settings;
    const patterns = receiving ? s.sourcePattern : s.targetPattern;
    if (patterns !== null) return approveNameByPattern(p.user, patterns, address);
    return approveName(p.user, receiving ? s.sources : s.targets, address);
  }

  /** A link closed by either side: it no longer counts towards maxSenders/maxReceivers. */
  onLinkClosed(p: ConnectionPolicy, peerSends: boolean): void {
    if (peerSends) p.senders = Math.max(0, p.senders - 1);
    else p.receivers = Math.max(0, p.receivers - 1);
  }

  /** A message over the connection's maxMessageSize was refused. */
  countOversize(p: ConnectionPolicy | null): void {
    this.counters.maxMessageSizeDenied++;
    this.counters.totalDenials++;
    if (p !== null) p.stats.maxMessageSizeDenied++;
  }
}
