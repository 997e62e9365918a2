/**
 * Where the members of a broker group announce their client endpoints, so every member can put
 * the whole group in failover-server-list: files in the shared dataDir (shared-store), rows in
 * the database (jdbc). `list()` is synchronous (it runs in every open frame): it answers from a
 * cache refreshed at most once a second.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from 'pg';
import { connectPg } from '../store/pg-schema';

/** One member's client endpoint. */
export interface Member {
  id: string;
  host: string;
  port: number;
}

/** The group's member directory. */
export interface MemberDirectory {
  /** Records (or replaces) this member's endpoint. */
  announce(m: Member): Promise<void>;
  /** The members known, sorted by id (cached). */
  list(): Member[];
  close(): Promise<void>;
}

const REFRESH_MS = 1000;

/** Members as `<dataDir>/members/<id>.json`. */
export class FileMembers implements MemberDirectory {
  private cache: { at: number; list: Member[] } = { at: 0, list: [] };
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'members');
  }

  async announce(m: Member): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    const tmp = path.join(this.dir, `.${m.id}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify(m));
    fs.renameSync(tmp, path.join(this.dir, `${m.id}.json`));
    this.cache.at = 0;
  }

  list(): Member[] {
    const now = Date.now();
    if (now - this.cache.at > REFRESH_MS) this.cache = { at: now, list: this.read() };
    return this.cache.list;
  }

  async close(): Promise<void> {
    // nothing held open
  }

  private read(): Member[] {
    const out: Member[] = [];
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return out;
    }
    for (const n of names.sort()) {
      if (!n.endsWith('.json')) continue;
      try {
        const m = JSON.parse(fs.readFileSync(path.join(this.dir, n), 'utf8')) as Member;
        if (typeof m.host === 'string' && typeof m.port === 'number' && m.port > 0) out.push(m);
      } catch {
        // A member file being replaced is skipped this time.
      }
    }
    return out;
  }
}

/** Members as rows of amqp_mesh_member (jdbc), read in the background. */
export class PgMembers implements MemberDirectory {
  private listCache: Member[] = [];
  private client: Client | null = null;
  private timer: NodeJS.Timeout | undefined;
  private reading = false;

  constructor(private readonly url: string, private readonly group: string, private readonly log: (msg: string) => void) {}

  async announce(m: Member): Promise<void> {
    const c = await this.connect();
    await c.query('INSERT INTO amqp_mesh_member (grp, id, host, port) VALUES ($1, $2, $3, $4) ON CONFLICT (grp, id) DO UPDATE SET host = EXCLUDED.host, port = EXCLUDED.port', [this.group, m.id, m.host, m.port]);
    await this.refresh();
    if (!this.timer) {
      this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
      this.timer.unref();
    }
  }

  list(): Member[] {
    return this.listCache;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }

  private async refresh(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const c = await this.connect();
      const r = await c.query('SELECT id, host, port FROM amqp_mesh_member WHERE grp = $1 ORDER BY id', [this.group]);
      this.listCache = r.rows.map((x) => ({ id: x.id as string, host: x.host as string, port: Number(x.port) }));
    } catch (e) {
      this.log(`member list not refreshed: ${(e as Error).message}`);
      const c = this.client;
      this.client = null;
      c?.end().catch(() => undefined);
    } finally {
      this.reading = false;
    }
  }

  private async connect(): Promise<Client> {
    if (!this.client) {
      this.client = await connectPg(this.url, (e) => {
        this.log(`member list connection lost: ${e.message}`);
        this.client = null;
      });
    }
    return this.client;
  }
}
