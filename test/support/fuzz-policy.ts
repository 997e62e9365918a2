/**
 * Fuzzing what policy and authentication add, without sockets: mutated client conversations
 * (SASL ANONYMOUS, PLAIN, SCRAM-SHA-256, SCRAM-SHA-1 exchanges; opens naming vhosts; sessions,
 * links and messages a policy decides on; management requests) go into a server-side engine whose
 * handler asks the same PolicyGate the router and the broker ask. Used by the unit suite (a few thousand
 * cases) and by bench/fuzz.ts (50,000 and more).
 *
 *   mutated bytes --> [Connection engine + SCRAM] --> handler: PolicyEngine decisions, user-id, management decode
 */
import { DecodeError } from '../../amqp/codec';
import { ByteBudget, Connection, ConnectionHandler, ConnectionOptions, InDelivery, Link } from '../../amqp/engine/connection';
import { ManagementError, decodeRequest } from '../../amqp/management';
import { STATE, type AttachFrame, type AmqpError } from '../../amqp/performatives';
import { MessageScan, scanMessage } from '../../router/protocol/message';
import { computeCredentials, type StoredCredentials } from '../../amqp/sasl/scram';
import { PolicyEngine } from '../../policy/engine';
import { PolicyConnection, PolicyGate } from '../../policy/gate';
import { compileVhost } from '../../policy/ruleset';
import { clientTraffic, mutate, pick, type FuzzSasl } from './fuzz';

/** The users every case knows (credentials made once: PBKDF2 is slow on purpose). */
const CREDENTIALS: Record<string, StoredCredentials> = { alice: computeCredentials('alice-pw'), bob: computeCredentials('bob-pw') };
const PASSWORDS: Record<string, string> = { alice: 'alice-pw', bob: 'bob-pw' };
const NONCE = 'fuzzservernonce';

/** The policy the server under test applies: two vhosts with narrow groups, one permissive default. */
export function fuzzPolicy(): PolicyEngine {
  return new PolicyEngine({
    maxConnections: 1 << 20, maxMessageSize: 4096, enableVhostPolicy: true, enableVhostNamePatterns: false, defaultVhost: '$default',
    vhosts: [
      compileVhost({ hostname: 'tenant', maxConnections: 65535, groups: { users: { users: 'alice, bob', remoteHosts: '127.0.0.1', sources: 'fuzz.q, ${user}.*', targets: 'fuzz.q', maxSenders: 2, maxReceivers: 2, maxSessions: 1, maxMessageSize: 2048 } } }),
      compileVhost({ hostname: '$default', allowUnknownUser: true, groups: { $default: { remoteHosts: '*', sourcePattern: 'fuzz.#', targetPattern: 'fuzz.#, $management', allowAnonymousSender: true, allowDynamicSource: true } } }),
    ],
  });
}

/** The conversations mutated: one per mechanism and vhost (the narrow `tenant` one, and the permissive default). */
export function fuzzConversations(): { bytes: Buffer; vhost: string; mechanism: string }[] {
  const sasls: FuzzSasl[] = [
    { mechanism: 'ANONYMOUS' },
    { mechanism: 'PLAIN', user: 'bob', password: PASSWORDS.bob },
    { mechanism: 'SCRAM-SHA-256', user: 'alice', password: PASSWORDS.alice, serverNonce: NONCE, credentials: CREDENTIALS.alice },
    { mechanism: 'SCRAM-SHA-1', user: 'bob', password: PASSWORDS.bob, serverNonce: NONCE, credentials: CREDENTIALS.bob },
  ];
  return sasls.flatMap((sasl) => ['tenant', 'elsewhere'].map((vhost) => ({ bytes: clientTraffic('fuzz.q', { sasl, hostname: vhost }), vhost, mechanism: sasl.mechanism })));
}

const OPTS: ConnectionOptions = {
  containerId: 'fuzz-router', maxFrameSize: 16384, channelMax: 7, idleTimeoutMs: 0, maxMessageSize: 1 << 20, handleMax: 15,
  saslMechanisms: ['ANONYMOUS', 'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-1'], requireSasl: false, offeredCapabilities: ['ANONYMOUS-RELAY'], properties: {}, incomingWindow: 100,
  checkPlain: (user, password) => PASSWORDS[user] !== undefined && PASSWORDS[user] === password,
  scramCredentials: (user) => CREDENTIALS[user],
  scramNonce: () => NONCE,
};

/** What the cases ran into. */
export interface FuzzTally {
  cases: number;
  /** onBytes threw, or the handler saw an internal error: must stay 0. */
  crashes: string[];
  /** A case that took longer than `slowMs`: must stay 0. */
  hangs: string[];
  /** Refusals seen, by kind (auth, connection, session, link, message, decode...). */
  refusals: Record<string, number>;
}

/** The server under test: the engine's handler, asking the same PolicyGate the router and broker ask. */
class PolicyHandler implements ConnectionHandler {
  errors: string[] = [];
  readonly pc: PolicyConnection;
  private readonly scan = new MessageScan();
  constructor(readonly gate: PolicyGate, readonly tally: FuzzTally, id: number) {
    this.pc = new PolicyConnection(id);
    gate.onAccept(this.pc, '127.0.0.1:1');
  }
  private count(kind: string): void {
    this.tally.refusals[kind] = (this.tally.refusals[kind] ?? 0) + 1;
  }
  decideOpen(conn: Connection): ReturnType<NonNullable<ConnectionHandler['decideOpen']>> {
    const d = this.gate.decideOpen(this.pc, conn, '127.0.0.1', conn.remoteOpen?.hostname ?? '');
    if (d !== null && 'refuse' in d) this.count('connection');
    return d;
  }
  decideBegin(_conn: Connection, open: number): AmqpError | null {
    const d = this.gate.decideBegin(this.pc, open);
    if (d !== null) this.count('session');
    return d;
  }
  onAuthFailed(): void {
    this.count('auth');
  }
  onOversize(link: Link): void {
    this.count('oversize');
    this.gate.onOversize(this.pc, link);
  }
  onOpen(): void {}
  onAttach(link: Link, a: AttachFrame): void {
    const refused = this.gate.decideAttach(this.pc, link, a);
    if (refused !== null) {
      this.count('link');
      return link.refuse(refused, a);
    }
    link.accept({}, a);
    link.address = (link.isSender ? a.source?.address : a.target?.address) ?? null;
    if (!link.isSender) link.conn.setCredit(link, 10);
  }
  onFlow(): void {}
  onDelivery(link: Link, d: InDelivery): void {
    try {
      // An anonymous sender's message: its `to`, as the router reads it.
      let to: string | null = null;
      if (link.address === null) {
        scanMessage(d.payload, 0, d.payload.length, this.scan, false);
        to = this.scan.to;
      }
      const rejected = this.gate.checkMessage(this.pc, d.payload, to);
      if (rejected !== null) {
        this.count('message-refused');
        if (!d.settled) link.conn.updateIn(d, rejected, true);
        return;
      }
      // Every message is also read as a management request, as the router reads those to $management.
      decodeRequest(d.payload);
    } catch (e) {
      if (!(e instanceof DecodeError) && !(e instanceof ManagementError)) throw e;
      this.count('message');
    }
    if (!d.settled) link.conn.updateIn(d, STATE.accepted, true);
  }
  onOutcome(): void {}
  onSessionWritable(): void {}
  onInSettled(): void {}
  onLinkGone(link: Link): void {
    this.gate.onLinkGone(this.pc, link);
  }
  onClosed(): void {
    this.gate.onClosed(this.pc, '127.0.0.1:1');
  }
  log(level: string, msg: string): void {
    if (level === 'error') this.errors.push(msg);
  }
}

/**
 * Runs `n` mutated conversations from `rand`, each in random splits; returns the tally. A case
 * that throws, logs an internal error, leaks budget or runs past `slowMs` is recorded.
 */
export function runPolicyFuzz(rand: () => number, n: number, slowMs = 1000, onCase?: (i: number) => void): FuzzTally {
  const gate = new PolicyGate(fuzzPolicy(), () => undefined);
  const conversations = fuzzConversations();
  const budget = new ByteBudget(1 << 30);
  const tally: FuzzTally = { cases: 0, crashes: [], hangs: [], refusals: {} };
  for (let i = 0; i < n; i++) {
    const base = conversations[pick(rand, conversations.length)].bytes;
    // Some cases keep the SASL exchange intact, so the policy decisions behind it are reached.
    const { bytes, ops } = mutate(base, rand, rand() < 0.5 ? 0 : Math.min(base.length - 1, 200));
    const h = new PolicyHandler(gate, tally, i);
    const c = new Connection({ ...OPTS, incompleteBudget: budget }, h, 0);
    const t0 = Date.now();
    try {
      let off = 0;
      while (off < bytes.length && !c.closed) {
        const k = 1 + pick(rand, 600);
        c.onBytes(bytes.subarray(off, off + k), 0);
        c.takeOutput();
        off += k;
      }
      c.onSocketClosed('socket-closed');
    } catch (e) {
      tally.crashes.push(`case ${i} (${ops.join(' ')}): ${(e as Error).stack}`);
    }
    if (h.errors.length > 0) tally.crashes.push(`case ${i} (${ops.join(' ')}): internal errors ${h.errors.join('; ')}`);
    if (budget.used !== 0) tally.crashes.push(`case ${i} (${ops.join(' ')}): ${budget.used} budget bytes not given back`);
    if (c.closeReason !== null) tally.refusals[`closed:${c.closeReason}`] = (tally.refusals[`closed:${c.closeReason}`] ?? 0) + 1;
    const ms = Date.now() - t0;
    if (ms > slowMs) tally.hangs.push(`case ${i} (${ops.join(' ')}): ${ms} ms`);
    tally.cases++;
    onCase?.(i);
  }
  return tally;
}

/**
 * The unmutated conversations the permissive vhost serves, each of which must authenticate and
 * run to its close (the well-behaved client never stalls).
 */
export function runCleanConversations(): { completed: number; total: number; problems: string[] } {
  const gate = new PolicyGate(fuzzPolicy(), () => undefined);
  const problems: string[] = [];
  let completed = 0;
  const conversations = fuzzConversations().filter((c) => c.vhost !== 'tenant');
  conversations.forEach(({ bytes, mechanism }, i) => {
    const tally: FuzzTally = { cases: 0, crashes: [], hangs: [], refusals: {} };
    const h = new PolicyHandler(gate, tally, 1_000_000 + i);
    const c = new Connection({ ...OPTS }, h, 0);
    c.onBytes(bytes, 0);
    c.takeOutput();
    if (c.closeReason === 'client-closed' && c.user !== null) completed++;
    else problems.push(`${mechanism} conversation ${i}: ended ${c.closeReason ?? 'open'} as ${c.user ?? '(no user)'}; refusals ${JSON.stringify(tally.refusals)}`);
  });
  return { completed, total: conversations.length, problems };
}
