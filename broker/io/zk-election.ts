/**
 * haPolicy replication, the election (docs/decisions/0012-broker-replication.md): ZooKeeper
 * decides which member of a group is live, with an epoch that fences every older live.
 *
 *   /amqp-mesh/<group>/members/<id>  ephemeral: MemberInfo (state, position, endpoints)
 *   /amqp-mesh/<group>/epoch         persistent: the newest epoch granted
 *   /amqp-mesh/<group>/live          ephemeral: {id, epoch, repl, host, port} of the live member
 *   /amqp-mesh/<group>/endpoints/<id> persistent: a member's client endpoint, kept while it is
 *                                    down, so failover-server-list names the whole group
 *
 * While there is a live member, the others follow it (ReplicaFollower). When its node goes (its
 * session expired, it released, or it was deposed because its replication port refuses
 * connections: the process is gone), the others stop following, publish their positions as
 * candidates, and the most advanced of a quorum claims: one ZooKeeper transaction creates the
 * live node and bumps the epoch (decideElection in broker/ha/replication.ts).
 *
 * As a StoreLock: acquire() resolves with the epoch once this member is live; checkFence fails
 * once its session may have expired (no successful round trip for a session timeout, on its own
 * clock), the live node is not its own any more, or ZooKeeper said the session expired.
 */
import { performance } from 'node:perf_hooks';
import * as zookeeper from 'node-zookeeper-client';
import { MemberInfo, Position, decideElection } from '../ha/replication';
import { reportLost, type StoreLock } from '../ha/lock';
import { FencedError } from '../store/types';
import type { Member, MemberDirectory } from './members';
import { LockError } from './file-lock';
import type { ReplicaFollower } from './replica-follower';

type Log = (level: 'error' | 'warning' | 'info' | 'debug', msg: string) => void;

/** Options of {@link ZkElection}. */
export interface ZkElectionOptions {
  /** ZooKeeper connect string, `host:port[,host:port...]`. */
  connect: string;
  group: string;
  id: string;
  groupSize: number;
  /** ZooKeeper session timeout: how long a silent live keeps its place. */
  sessionTimeoutMs: number;
  /** How often the election state is read while there is no live member (default 100 ms). */
  pollMs?: number;
  /** This member's replication endpoint, host:port. */
  repl: string;
  follower: ReplicaFollower;
  log?: Log;
  clock?: () => number;
}

interface LiveInfo {
  id: string;
  epoch: number;
  repl: string;
  host: string;
  port: number;
}

/** ZooKeeper error codes we act on. */
const NO_NODE = -101;
const NODE_EXISTS = -110;

/** The election and the member directory of one replicated group member. */
export class ZkElection implements StoreLock, MemberDirectory {
  private client: zookeeper.Client | null = null;
  private readonly root: string;
  private readonly pollMs: number;
  private readonly clock: () => number;
  private readonly log: Log;
  private state: 'idle' | 'acquiring' | 'held' = 'idle';
  private epoch = 0;
  private lastOk = 0;
  private endReason: string | null = null;
  private readonly lostCbs: ((reason: string) => void)[] = [];
  private renewTimer: NodeJS.Timeout | undefined;
  private endpointsTimer: NodeJS.Timeout | undefined;
  private endpoints: Member[] = [];
  private me: MemberInfo;
  private unreachable: { epoch: number; why: string } | null = null;
  private lastDecision = '';
  /** The session timeout the fence counts with (the shorter of asked and granted). */
  private fenceMs: number;

  constructor(private readonly opts: ZkElectionOptions) {
    this.root = `/amqp-mesh/${opts.group}`;
    this.pollMs = opts.pollMs ?? 100;
    this.clock = opts.clock ?? (() => performance.now());
    this.log = opts.log ?? (() => undefined);
    this.fenceMs = opts.sessionTimeoutMs;
    this.me = { id: opts.id, repl: opts.repl, host: '', port: 0, state: 'candidate', position: opts.follower.position };
    opts.follower.onLiveUnreachable = (epoch, why) => {
      this.unreachable = { epoch, why };
    };
  }

  get token(): number {
    return this.state === 'held' ? this.epoch : 0;
  }

  /** Connects, registers, follows whoever is live, and resolves with the epoch once this member is. */
  async acquire(signal?: AbortSignal): Promise<number> {
    if (this.state !== 'idle') throw new LockError(`election: acquire while ${this.state}`, 'ERR_LOCK_STATE');
    this.state = 'acquiring';
    try {
      const c = await this.connect();
      await this.mkdirp(`${this.root}/members`);
      await this.mkdirp(`${this.root}/endpoints`);
      await this.createIfMissing(`${this.root}/epoch`, Buffer.from('0'));
      await this.register();
      for (;;) {
        if (signal?.aborted) throw new LockError('election: aborted', 'ERR_LOCK_ABORTED', { cause: signal.reason });
        const started = this.clock();
        const won = await this.electOnce(c).catch((e) => {
          this.log('warning', `election: ${(e as Error).message}; retrying`);
          return 0;
        });
        if (won > 0) {
          this.epoch = won;
          this.lastOk = started;
          this.state = 'held';
          this.renewTimer = setInterval(() => void this.renew(), Math.max(20, Math.floor(this.fenceMs / 4)));
          this.renewTimer.unref();
          await this.refreshEndpoints().catch(() => undefined);
          this.endpointsTimer = setInterval(() => void this.refreshEndpoints().catch(() => undefined), 1000);
          this.endpointsTimer.unref();
          await this.publish({ state: 'live' }).catch(() => undefined);
          return won;
        }
        await new Promise((r) => setTimeout(r, this.pollMs));
      }
    } catch (e) {
      if (this.state === 'acquiring') this.state = 'idle';
      throw e;
    }
  }

  checkFence(): void {
    if (this.state !== 'held') throw new FencedError(this.endReason ? `election lost: ${this.endReason}` : 'not the live member of the group');
    const age = this.clock() - this.lastOk;
    if (age > this.fenceMs) {
      const why = `no word from ZooKeeper for ${Math.round(age)} ms (session timeout ${this.fenceMs} ms): another member may be live`;
      this.lose(why);
      throw new FencedError(why);
    }
  }

  onLost(cb: (reason: string) => void): void {
    this.lostCbs.push(cb);
  }

  /** Gives up being live (the live node goes at once) and leaves ZooKeeper. */
  async release(): Promise<void> {
    const wasHeld = this.state === 'held';
    this.end('released');
    const c = this.client;
    this.client = null;
    if (!c) return;
    if (wasHeld) await this.removeLiveIfOurs(c).catch(() => undefined);
    c.close();
  }

  // ------------------------------------------------------------------ MemberDirectory

  async announce(m: Member): Promise<void> {
    this.me = { ...this.me, host: m.host, port: m.port };
    if (this.client) {
      await this.publish({}).catch(() => undefined);
      await this.writeEndpoint().catch(() => undefined);
    }
  }

  list(): Member[] {
    return this.endpoints;
  }

  async close(): Promise<void> {
    await this.release();
  }

  // ------------------------------------------------------------------ the election

  /** One look at the group: follow the live member, depose a dead one, or run the election. Returns the epoch won, or 0. */
  private async electOnce(c: zookeeper.Client): Promise<number> {
    const live = await this.getLive(c);
    const f = this.opts.follower;
    if (live !== null) {
      if (live.info.id === this.opts.id) {
        // Left by an earlier run of this member whose session has not expired yet.
        this.log('warning', `election: the live node names this member (a previous run); removing it`);
        await this.remove(`${this.root}/live`, live.version);
        return 0;
      }
      if (this.unreachable && this.unreachable.epoch === live.info.epoch) {
        this.log('warning', `election: the live member ${live.info.id} (epoch ${live.info.epoch}) is gone (${this.unreachable.why}); deposing it`);
        this.unreachable = null;
        f.unfollow();
        await this.remove(`${this.root}/live`, live.version);
        return 0;
      }
      if (f.followingEpoch !== live.info.epoch) {
        // Say "following" before the first acknowledgement: a candidate's position never moves.
        await this.publish({ state: 'following', position: f.position });
        this.log('info', `election: following ${live.info.id} (epoch ${live.info.epoch}) at ${live.info.repl}`);
        f.follow(live.info.epoch, live.info.repl);
      }
      return 0;
    }
    if (f.followingEpoch !== 0) f.unfollow();
    if (this.me.state !== 'candidate' || this.me.position.seq !== f.position.seq || this.me.position.epoch !== f.position.epoch) {
      await this.publish({ state: 'candidate', position: f.position });
    }
    const members = await this.readJsonChildren<MemberInfo>('members', c);
    const [epochData, epochStat] = await this.getData(`${this.root}/epoch`);
    const lastEpoch = Number(epochData.toString('utf8')) || 0;
    const d = decideElection(this.opts.id, members, this.opts.groupSize, lastEpoch);
    const summary = d.action === 'claim' ? `claim epoch ${d.epoch}` : `${d.reason} (${d.candidates} candidates${d.leader ? `, ${d.leader} leads` : ''})`;
    if (summary !== this.lastDecision) {
      this.log('info', `election: ${summary}`);
      this.lastDecision = summary;
    }
    if (d.action !== 'claim') return 0;
    const info: LiveInfo = { id: this.opts.id, epoch: d.epoch, repl: this.opts.repl, host: this.me.host, port: this.me.port };
    const ok = await new Promise<boolean>((resolve, reject) => {
      c.transaction()
        .create(`${this.root}/live`, Buffer.from(JSON.stringify(info)), zookeeper.CreateMode.EPHEMERAL)
        .setData(`${this.root}/epoch`, Buffer.from(String(d.epoch)), epochStat.version)
        .commit((err) => {
          if (!err) resolve(true);
          else if (isCode(err, NODE_EXISTS) || isCode(err, -103 /* BAD_VERSION */)) resolve(false);
          else reject(err);
        });
    });
    if (ok) this.log('info', `election: live with epoch ${d.epoch} at position ${fmt(f.position)}`);
    return ok ? d.epoch : 0;
  }

  private async renew(): Promise<void> {
    if (this.state !== 'held' || !this.client) return;
    const started = this.clock();
    try {
      this.checkFence();
    } catch {
      return;
    }
    // One look at a time: while ZooKeeper does not answer, the fence above lapses on its own.
    if (this.renewing) return;
    this.renewing = true;
    try {
      const live = await this.getLive(this.client);
      if (this.state !== 'held') return;
      const ours = live !== null && live.info.id === this.opts.id && live.info.epoch === this.epoch && live.ownerIsUs;
      if (ours) this.lastOk = started;
      else this.lose(live === null ? 'the live node is gone' : `superseded by ${live.info.id} (epoch ${live.info.epoch})`);
    } catch (e) {
      this.log('warning', `election: cannot reach ZooKeeper: ${(e as Error).message}`);
    } finally {
      this.renewing = false;
    }
  }

  private renewing = false;

  private async getLive(c: zookeeper.Client): Promise<{ info: LiveInfo; version: number; ownerIsUs: boolean } | null> {
    try {
      const [data, stat] = await this.getData(`${this.root}/live`, c);
      const info = JSON.parse(data.toString('utf8')) as LiveInfo;
      return { info, version: stat.version, ownerIsUs: stat.ephemeralOwner.equals(c.getSessionId()) };
    } catch (e) {
      if (isCode(e, NO_NODE)) return null;
      throw e;
    }
  }

  private async removeLiveIfOurs(c: zookeeper.Client): Promise<void> {
    const live = await this.getLive(c);
    if (live && live.ownerIsUs) await this.remove(`${this.root}/live`, live.version, c);
  }

  /** Every child node of `dir` under the group's root, parsed; nodes gone meanwhile or unreadable are skipped. */
  private async readJsonChildren<T>(dir: string, c: zookeeper.Client): Promise<T[]> {
    const names = await new Promise<string[]>((resolve, reject) => c.getChildren(`${this.root}/${dir}`, (e, ch) => (e ? reject(e) : resolve(ch))));
    const out: T[] = [];
    for (const n of names.sort()) {
      try {
        const [data] = await this.getData(`${this.root}/${dir}/${n}`, c);
        out.push(JSON.parse(data.toString('utf8')) as T);
      } catch {
        // gone between the listing and the read, or not ours to read
      }
    }
    return out;
  }

  /** Re-reads the group's client endpoints (what {@link list} answers). */
  private async refreshEndpoints(): Promise<void> {
    const c = this.client;
    if (!c) return;
    const all = await this.readJsonChildren<Member>('endpoints', c);
    this.endpoints = all.filter((m) => typeof m.host === 'string' && Number.isInteger(m.port) && m.port > 0);
  }

  /** Records this member's client endpoint (persistent: it stays listed while the member is down). */
  private async writeEndpoint(): Promise<void> {
    const c = this.client as zookeeper.Client;
    const p = `${this.root}/endpoints/${this.opts.id}`;
    const data = Buffer.from(JSON.stringify({ id: this.opts.id, host: this.me.host, port: this.me.port }));
    const err = await new Promise<unknown>((resolve) => c.setData(p, data, -1, (e) => resolve(e)));
    if (!err) return;
    if (!isCode(err, NO_NODE)) throw err;
    await this.createIfMissing(p, data);
  }

  /** Registers this member (ephemeral); a node left by a previous run of the same id is replaced. */
  private async register(): Promise<void> {
    const c = this.client as zookeeper.Client;
    const p = `${this.root}/members/${this.opts.id}`;
    for (let i = 0; i < 3; i++) {
      const err = await new Promise<unknown>((resolve) => c.create(p, Buffer.from(JSON.stringify(this.me)), zookeeper.CreateMode.EPHEMERAL, (e) => resolve(e)));
      if (!err) {
        if (this.me.port > 0) await this.writeEndpoint();
        return;
      }
      if (!isCode(err, NODE_EXISTS)) throw err;
      await this.remove(p, -1).catch(() => undefined);
    }
    throw new LockError(`election: cannot register member ${this.opts.id}`, 'ERR_LOCK_IO');
  }

  private async publish(change: Partial<MemberInfo>): Promise<void> {
    this.me = { ...this.me, ...change };
    const c = this.client as zookeeper.Client;
    await new Promise<void>((resolve, reject) => c.setData(`${this.root}/members/${this.opts.id}`, Buffer.from(JSON.stringify(this.me)), -1, (e) => (e ? reject(e) : resolve())));
  }

  private connect(): Promise<zookeeper.Client> {
    const c = zookeeper.createClient(this.opts.connect, { sessionTimeout: this.opts.sessionTimeoutMs, spinDelay: 100, retries: 1000000 });
    this.client = c;
    c.on('expired', () => {
      this.log('warning', 'election: ZooKeeper session expired');
      this.lose('the ZooKeeper session expired');
    });
    return new Promise((resolve) => {
      c.once('connected', () => {
        // The server may grant another timeout than asked (its min/maxSessionTimeout): fence by
        // the shorter, so this member never believes it is live after the server let it go.
        const granted = c.getSessionTimeout();
        this.fenceMs = Math.min(this.opts.sessionTimeoutMs, granted > 0 ? granted : this.opts.sessionTimeoutMs);
        this.log('info', `election: connected to ZooKeeper ${this.opts.connect} (session timeout ${granted} ms; fenced after ${this.fenceMs} ms without a reply)`);
        resolve(c);
      });
      c.connect();
    });
  }

  private mkdirp(p: string): Promise<void> {
    const c = this.client as zookeeper.Client;
    return new Promise((resolve, reject) => c.mkdirp(p, (e) => (e ? reject(e) : resolve())));
  }

  private createIfMissing(p: string, data: Buffer): Promise<void> {
    const c = this.client as zookeeper.Client;
    return new Promise((resolve, reject) => c.create(p, data, (e) => (e && !isCode(e, NODE_EXISTS) ? reject(e) : resolve())));
  }

  private getData(p: string, client?: zookeeper.Client): Promise<[Buffer, zookeeper.Stat]> {
    const c = client ?? (this.client as zookeeper.Client);
    return new Promise((resolve, reject) => c.getData(p, (e, data, stat) => (e ? reject(e) : resolve([data ?? Buffer.alloc(0), stat]))));
  }

  private remove(p: string, version: number, client?: zookeeper.Client): Promise<void> {
    const c = client ?? (this.client as zookeeper.Client);
    return new Promise((resolve, reject) => c.remove(p, version, (e) => (e && !isCode(e, NO_NODE) ? reject(e) : resolve())));
  }

  private lose(reason: string): void {
    if (this.state !== 'held') return;
    this.end(reason);
    reportLost(this.lostCbs, reason, this.log, 'election');
  }

  private end(reason: string): void {
    clearInterval(this.renewTimer);
    clearInterval(this.endpointsTimer);
    this.renewTimer = undefined;
    this.endpointsTimer = undefined;
    if (this.state === 'held') this.epoch = 0;
    this.state = 'idle';
    this.endReason = reason;
  }
}

function isCode(e: unknown, code: number): boolean {
  return typeof e === 'object' && e !== null && (e as { getCode?: () => number }).getCode?.() === code;
}

function fmt(p: Position): string {
  return `${p.epoch}/${p.seq}`;
}
