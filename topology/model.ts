/**
 * The declarative topology `amqp-mesh up` boots: routers, the inter-router links between them,
 * master/slave broker pairs attached to routers, and address rules. Read from YAML:
 *
 * ```yaml
 * routers:
 *   A: { port: 5672 }            # client listener (0: any free port; host defaults to 127.0.0.1)
 *   B: {}                        # every router also gets an inter-router listener on an OS port
 * links:                         # inter-router connections: `from` connects to `to`
 *   - { from: B, to: A, cost: 1 }
 * brokerPairs:
 *   pair1:                       # two brokers (pair1.b1, pair1.b2) on one dataDir, attached to A
 *     router: A
 *     queues: [queue.orders]     # one autoLink in + out per queue and topic (waypoints)
 *     topics: [topic.news]
 *     dataDir: ./data/pair1      # optional (relative to this file); default: in the run directory
 *   orders:                      # a replicated group: three brokers (orders.b1..b3), each on its
 *     router: B                  # own disk, one live; `up` starts a ZooKeeper for them
 *     haPolicy: replication      # shared-store (default) | replication | jdbc
 *     members: 3                 # replication: 3 (default) or more; the others: 2
 *     queues: [orders.in]
 *   billing:                     # a JDBC pair: store and lock in PostgreSQL; `up` starts one
 *     router: A                  # unless jdbcUrl names one
 *     haPolicy: jdbc
 *     jdbcUrl: postgresql://amq@db.example:5432/amq   # optional
 * zookeeper: zk1:2181,zk2:2181,zk3:2181   # optional: an ensemble for replicated groups; none:
 *                                         # `up` starts one ZooKeeper server in its run directory
 * addresses:
 *   - { prefix: closest, distribution: closest }
 *   - { prefix: queue., waypoint: pair1 }
 *   - { prefix: topic., waypoint: pair1, distribution: multicast }
 *   - { prefix: orders, linkRoute: pair1 }
 * ```
 *
 * Everything {@link parseTopology} returns has been checked as a whole (names resolve, the mesh
 * is connected, every queue and topic falls under a waypoint of its own pair), so the generator
 * never meets a dangling reference. A refusal is a {@link ConfigError} whose message starts with
 * `FILE:LINE:`, as the router's own configuration errors do.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { ConfigError, quote, type ConfigErrorCode } from '../config/errors';

/** Largest topology file accepted: a topology is a handful of lines; this keeps the YAML parser's memory small. */
export const MAX_TOPOLOGY_FILE_BYTES = 1024 * 1024;

/** How a router spreads messages of an address (qdrouterd's `distribution`). */
export type TopologyDistribution = 'closest' | 'balanced' | 'multicast';
const DISTRIBUTIONS: readonly TopologyDistribution[] = ['closest', 'balanced', 'multicast'];

/**
 * Router and pair names become router ids, connector names, broker ids and log file names, so
 * they are kept to characters safe in all four. No dots: broker names are `<pair>.b1`/`.b2`,
 * which can then never collide with a router's.
 */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const NAME_RULE = '1 to 64 letters, digits, "_" or "-", starting with a letter or digit';

/** One router. */
export interface TopologyRouter {
  name: string;
  /** Client listener host (default 127.0.0.1: `up` is a local mesh). */
  host: string;
  /** Client listener port; 0 lets the OS pick. */
  port: number;
  /** 1-based line of the router's entry. */
  line: number;
}

/** An inter-router connection: `from` has a connector to `to`'s inter-router listener. */
export interface TopologyLink {
  from: string;
  to: string;
  /** qdrouterd link cost (>= 1). */
  cost: number;
  line: number;
}

/** How a group of brokers keeps its store available (the broker's haPolicy). */
export type TopologyHaPolicy = 'shared-store' | 'replication' | 'jdbc';
const HA_POLICIES: readonly TopologyHaPolicy[] = ['shared-store', 'replication', 'jdbc'];

/**
 * Brokers serving one logical broker (one live, the others waiting), attached to `router`: two
 * sharing one store (shared-store, jdbc), or a replicated group of `members`.
 */
export interface TopologyBrokerPair {
  name: string;
  router: string;
  haPolicy: TopologyHaPolicy;
  /** How many brokers: 2 for shared-store and jdbc; replication: 3 (default) up to 7. */
  members: number;
  /** jdbc: the database to use; none: `up` starts a PostgreSQL in its run directory. */
  jdbcUrl?: string;
  /** Concrete anycast addresses served through waypoints (one autoLink in and out each). */
  queues: string[];
  /** Concrete multicast addresses served through waypoints. */
  topics: string[];
  /**
   * Absolute store directory when the file names one; otherwise `up` uses its run directory.
   * shared-store: the brokers' one store; replication and jdbc: each broker has `<dataDir>/<broker>`.
   */
  dataDir?: string;
  line: number;
  /** Line of each queue and topic, by name (for errors about one of them). */
  itemLines: Record<string, number>;
}

/** An address rule, written on every router. */
export interface TopologyAddress {
  prefix?: string;
  pattern?: string;
  /** As written; undefined means the router's default (balanced). */
  distribution?: TopologyDistribution;
  /** A broker pair holding this address space as waypoints (queues/topics of the pair). */
  waypoint?: string;
  /** A broker pair the links of this address space are routed to. */
  linkRoute?: string;
  line: number;
}

/** A checked topology. */
export interface Topology {
  /** The file name errors are reported against. */
  file: string;
  routers: TopologyRouter[];
  links: TopologyLink[];
  brokerPairs: TopologyBrokerPair[];
  addresses: TopologyAddress[];
  /** An ensemble the replicated groups use (connect string); none: `up` starts a ZooKeeper. */
  zookeeper?: string;
}

const TOP_KEYS = ['routers', 'links', 'brokerPairs', 'addresses', 'zookeeper'];
const ROUTER_KEYS = ['port', 'host'];
const LINK_KEYS = ['from', 'to', 'cost'];
const PAIR_KEYS = ['router', 'queues', 'topics', 'dataDir', 'haPolicy', 'members', 'jdbcUrl'];
const ADDRESS_KEYS = ['prefix', 'pattern', 'distribution', 'waypoint', 'linkRoute'];

/**
 * Reads and checks a topology file.
 * @throws ConfigError naming the file and line (ERR_CONFIG_READ when it cannot be read).
 */
export function loadTopologyFile(file: string): Topology {
  let buf: Buffer;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_TOPOLOGY_FILE_BYTES) {
      throw new ConfigError('ERR_CONFIG_TOO_LARGE', file, undefined, `topology file is ${st.size} bytes, over the limit of ${MAX_TOPOLOGY_FILE_BYTES}`);
    }
    buf = fs.readFileSync(file);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError('ERR_CONFIG_READ', file, undefined, `cannot read topology file: ${(e as Error).message}`, { cause: e });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch (e) {
    throw new ConfigError('ERR_CONFIG_ENCODING', file, undefined, 'topology file is not valid UTF-8', { cause: e });
  }
  return parseTopology(text, file, { baseDir: path.dirname(path.resolve(file)) });
}

/**
 * Parses and checks topology YAML. Pure apart from resolving `dataDir` against `baseDir`.
 * @param file the name used in error messages.
 * @param opts.baseDir what a relative `dataDir` is relative to (default: the current directory).
 * @throws ConfigError whose message starts with `file:line:`.
 */
export function parseTopology(text: string, file: string, opts: { baseDir?: string } = {}): Topology {
  if (Buffer.byteLength(text) > MAX_TOPOLOGY_FILE_BYTES) {
    throw new ConfigError('ERR_CONFIG_TOO_LARGE', file, undefined, `topology is over the limit of ${MAX_TOPOLOGY_FILE_BYTES} bytes`);
  }
  const lineCounter = new LineCounter();
  let doc: Document.Parsed;
  try {
    // uniqueKeys off: duplicate names are reported with both lines by the reader.
    doc = parseDocument(text.replace(/^\uFEFF/, ''), { lineCounter, prettyErrors: false, uniqueKeys: false, version: '1.2' });
  } catch (e) {
    // The parser recurses per nesting level; absurd nesting is a syntax problem, not a crash.
    throw new ConfigError('ERR_CONFIG_SYNTAX', file, undefined, `invalid YAML: ${(e as Error).message}`, { cause: e });
  }
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;
  const firstError = doc.errors[0];
  if (firstError !== undefined) {
    throw new ConfigError('ERR_CONFIG_SYNTAX', file, lineAt(firstError.pos[0]), `invalid YAML: ${firstError.message.split('\n')[0]}`);
  }
  const r = new Reader(doc, file, lineAt);
  const model = r.topology(opts.baseDir ?? process.cwd());
  checkModel(model);
  return model;
}

/** A map entry read from YAML: the value node (after aliases) and the line of its key. */
interface Field {
  key: string;
  value: YamlNode | null;
  line: number;
}

/** Walks the YAML nodes (not plain JS values) so that every value keeps its line. */
class Reader {
  constructor(
    private readonly doc: Document.Parsed,
    private readonly file: string,
    private readonly lineAt: (offset: number) => number,
  ) {}

  fail(code: ConfigErrorCode, line: number | undefined, reason: string): never {
    throw new ConfigError(code, this.file, line, reason);
  }

  line(node: YamlNode | null | undefined, fallback?: number): number | undefined {
    const range = node?.range;
    return range ? this.lineAt(range[0]) : fallback;
  }

  resolve(node: YamlNode | null | undefined): YamlNode | null {
    if (node === null || node === undefined) return null;
    let n: unknown = node;
    // An alias may point at another alias; a short bound rules out cycles.
    for (let i = 0; i < 16 && isAlias(n); i++) n = (n as { resolve(doc: Document): unknown }).resolve(this.doc) ?? null;
    if (isAlias(n)) this.fail('ERR_CONFIG_SYNTAX', this.line(node), 'alias chain too long');
    return n as YamlNode | null;
  }

  isNull(node: YamlNode | null): boolean {
    return node === null || (isScalar(node) && node.value === null);
  }

  describe(node: YamlNode | null): string {
    if (node === null || (isScalar(node) && node.value === null)) return 'nothing';
    if (isMap(node)) return 'a map';
    if (isSeq(node)) return 'a list';
    if (isScalar(node)) return `${typeof node.value} ${quote(node.value)}`;
    return 'something else';
  }

  /** The entries of a map, refusing duplicate and unknown keys. Null means an empty map. */
  fields(node: YamlNode | null, what: string, allowed: readonly string[] | null, line: number | undefined): Field[] {
    const n = this.resolve(node);
    if (this.isNull(n)) return [];
    if (!isMap(n)) return this.fail('ERR_CONFIG_INVALID_VALUE', this.line(n, line), `${what} must be a map, got ${this.describe(n)}`);
    const seen = new Map<string, number>();
    const out: Field[] = [];
    for (const pair of n.items) {
      const keyNode = this.resolve(pair.key as YamlNode);
      const keyLine = this.line(keyNode, line) as number;
      if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
        this.fail('ERR_CONFIG_INVALID_VALUE', keyLine, `${what}: a key must be a name, got ${this.describe(keyNode)}`);
      }
      const key = keyNode.value;
      const first = seen.get(key);
      if (first !== undefined) this.fail('ERR_CONFIG_DUPLICATE', keyLine, `${what}: ${quote(key)} is defined twice (first on line ${first})`);
      seen.set(key, keyLine);
      if (allowed !== null && !allowed.includes(key)) {
        this.fail('ERR_CONFIG_UNKNOWN_ATTRIBUTE', keyLine, `${what} has no setting ${quote(key)}; valid settings: ${allowed.join(', ')}`);
      }
      out.push({ key, value: this.resolve(pair.value as YamlNode | null), line: keyLine });
    }
    return out;
  }

  list(node: YamlNode | null, what: string, line: number): YamlNode[] {
    const n = this.resolve(node);
    if (this.isNull(n)) return [];
    if (!isSeq(n)) return this.fail('ERR_CONFIG_INVALID_VALUE', this.line(n, line), `${what} must be a list, got ${this.describe(n)}`);
    return n.items.map((i) => this.resolve(i as YamlNode | null) as YamlNode);
  }

  string(node: YamlNode | null, what: string, line: number): string {
    if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') {
      return this.fail('ERR_CONFIG_INVALID_VALUE', this.line(node, line), `${what} must be a non-empty string, got ${this.describe(node)}`);
    }
    return node.value;
  }

  name(value: string, what: string, line: number): string {
    if (!NAME.test(value)) this.fail('ERR_CONFIG_INVALID_VALUE', line, `${what} ${quote(value)} is not a valid name: ${NAME_RULE}`);
    return value;
  }

  integer(node: YamlNode | null, what: string, line: number, min: number, max: number): number {
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return this.fail('ERR_CONFIG_INVALID_VALUE', this.line(node, line), `${what} must be an integer from ${min} to ${max}, got ${this.describe(node)}`);
    }
    return v;
  }

  /** An address, prefix or pattern: one token, as qdrouterd.conf can carry it unquoted. */
  address(node: YamlNode | null, what: string, line: number, allowHash: boolean): string {
    const v = this.string(node, what, line);
    const at = this.line(node, line);
    if (/[\s\u0000-\u001f\u007f]/.test(v)) this.fail('ERR_CONFIG_INVALID_VALUE', at, `${what} ${quote(v)} contains whitespace or control characters`);
    if (!allowHash && v.includes('#')) this.fail('ERR_CONFIG_INVALID_VALUE', at, `${what} ${quote(v)} contains "#"; only a pattern may (use pattern: for wildcards)`);
    if (v.length > 4096) this.fail('ERR_CONFIG_INVALID_VALUE', at, `${what} is ${v.length} characters, over the limit of 4096`);
    return v;
  }

  topology(baseDir: string): Topology {
    const root = this.resolve(this.doc.contents as YamlNode | null);
    if (this.isNull(root)) this.fail('ERR_CONFIG_MISSING_ATTRIBUTE', 1, 'the topology is empty; it needs at least "routers:"');
    const top = new Map(this.fields(root, 'the topology', TOP_KEYS, 1).map((f) => [f.key, f]));
    const routersField = top.get('routers');
    if (routersField === undefined) this.fail('ERR_CONFIG_MISSING_ATTRIBUTE', 1, 'the topology has no "routers:"; it needs at least one router');
    const routers = this.fields(routersField.value, 'routers', null, routersField.line).map((f) => this.router(f));
    if (routers.length === 0) this.fail('ERR_CONFIG_MISSING_ATTRIBUTE', routersField.line, 'routers: needs at least one router');
    const linksField = top.get('links');
    const links = linksField ? this.list(linksField.value, 'links', linksField.line).map((n) => this.link(n, linksField.line)) : [];
    const pairsField = top.get('brokerPairs');
    const brokerPairs = pairsField ? this.fields(pairsField.value, 'brokerPairs', null, pairsField.line).map((f) => this.pair(f, baseDir)) : [];
    const addressesField = top.get('addresses');
    const addresses = addressesField
      ? this.list(addressesField.value, 'addresses', addressesField.line).map((n) => this.addressRule(n, addressesField.line))
      : [];
    const zkField = top.get('zookeeper');
    const zookeeper = zkField ? this.string(zkField.value, 'zookeeper', zkField.line) : undefined;
    if (zkField && !/^[^\s,]+:\d+(,[^\s,]+:\d+)*$/.test(zookeeper as string)) {
      this.fail('ERR_CONFIG_INVALID_VALUE', zkField.line, `zookeeper ${quote(zookeeper as string)}: expected a connect string, host:port[,host:port...]`);
    }
    return { file: this.file, routers, links, brokerPairs, addresses, ...(zookeeper !== undefined ? { zookeeper } : {}) };
  }

  router(f: Field): TopologyRouter {
    const name = this.name(f.key, 'router name', f.line);
    const r: TopologyRouter = { name, host: '127.0.0.1', port: 0, line: f.line };
    for (const a of this.fields(f.value, `router ${name}`, ROUTER_KEYS, f.line)) {
      if (a.key === 'port') r.port = this.integer(a.value, `router ${name} port`, a.line, 0, 65535);
      else r.host = this.address(a.value, `router ${name} host`, a.line, false);
    }
    return r;
  }

  link(node: YamlNode, listLine: number): TopologyLink {
    const line = this.line(node, listLine) as number;
    const fields = new Map(this.fields(node, 'a link', LINK_KEYS, line).map((a) => [a.key, a]));
    const end = (k: 'from' | 'to'): string => {
      const a = fields.get(k);
      if (a === undefined) return this.fail('ERR_CONFIG_MISSING_ATTRIBUTE', line, `a link needs "${k}:" (links are { from: ROUTER, to: ROUTER, cost: N })`);
      return this.string(a.value, `link ${k}`, a.line);
    };
    const cost = fields.get('cost');
    return {
      from: end('from'),
      to: end('to'),
      cost: cost ? this.integer(cost.value, 'link cost', cost.line, 1, 0x7fffffff) : 1,
      line,
    };
  }

  pair(f: Field, baseDir: string): TopologyBrokerPair {
    const name = this.name(f.key, 'broker pair name', f.line);
    const p: TopologyBrokerPair = { name, router: '', haPolicy: 'shared-store', members: 2, queues: [], topics: [], line: f.line, itemLines: {} };
    let routerSeen = false;
    let members: { n: number; line: number } | null = null;
    for (const a of this.fields(f.value, `broker pair ${name}`, PAIR_KEYS, f.line)) {
      if (a.key === 'router') {
        p.router = this.string(a.value, `broker pair ${name} router`, a.line);
        routerSeen = true;
      } else if (a.key === 'haPolicy') {
        const v = this.string(a.value, `broker pair ${name} haPolicy`, a.line);
        if (!HA_POLICIES.includes(v as TopologyHaPolicy)) this.fail('ERR_CONFIG_INVALID_VALUE', a.line, `broker pair ${name} haPolicy ${quote(v)} is not one of ${HA_POLICIES.join(', ')}`);
        p.haPolicy = v as TopologyHaPolicy;
      } else if (a.key === 'members') {
        members = { n: this.integer(a.value, `broker pair ${name} members`, a.line, 2, 7), line: a.line };
      } else if (a.key === 'jdbcUrl') {
        p.jdbcUrl = this.string(a.value, `broker pair ${name} jdbcUrl`, a.line);
        if (!/^(jdbc:)?postgres(ql)?:\/\//.test(p.jdbcUrl)) this.fail('ERR_CONFIG_INVALID_VALUE', a.line, `broker pair ${name} jdbcUrl must be postgresql://user@host:port/database`);
      } else if (a.key === 'dataDir') {
        p.dataDir = path.resolve(baseDir, this.string(a.value, `broker pair ${name} dataDir`, a.line));
      } else {
        const kind = a.key as 'queues' | 'topics';
        for (const n of this.list(a.value, `broker pair ${name} ${kind}`, a.line)) {
          const item = this.address(n, `a ${kind.slice(0, -1)} of ${name}`, a.line, false);
          p[kind].push(item);
          p.itemLines[item] ??= this.line(n, a.line) as number;
        }
      }
    }
    if (!routerSeen) this.fail('ERR_CONFIG_MISSING_ATTRIBUTE', f.line, `broker pair ${name} needs "router:" (the router its brokers attach to)`);
    if (p.haPolicy === 'replication') {
      p.members = members?.n ?? 3;
      if (p.members < 3) this.fail('ERR_CONFIG_INVALID_VALUE', members?.line ?? f.line, `broker pair ${name} members ${p.members}: a replicated group has 3 to 7 members (a quorum of 2 needs 3 to survive one loss)`);
    } else if (members && members.n !== 2) {
      this.fail('ERR_CONFIG_INVALID_VALUE', members.line, `broker pair ${name} members ${members.n}: haPolicy ${p.haPolicy} has exactly 2 (a live and a slave)`);
    }
    if (p.jdbcUrl !== undefined && p.haPolicy !== 'jdbc') this.fail('ERR_CONFIG_INVALID_VALUE', f.line, `broker pair ${name} has a jdbcUrl but haPolicy ${p.haPolicy}; set haPolicy: jdbc`);
    return p;
  }

  addressRule(node: YamlNode, listLine: number): TopologyAddress {
    const line = this.line(node, listLine) as number;
    const a: TopologyAddress = { line };
    for (const f of this.fields(node, 'an address', ADDRESS_KEYS, line)) {
      switch (f.key) {
        case 'prefix':
          a.prefix = this.address(f.value, 'address prefix', f.line, false);
          break;
        case 'pattern':
          a.pattern = this.address(f.value, 'address pattern', f.line, true);
          break;
        case 'distribution': {
          const v = this.string(f.value, 'address distribution', f.line);
          if (!DISTRIBUTIONS.includes(v as TopologyDistribution)) {
            this.fail('ERR_CONFIG_INVALID_VALUE', f.line, `address distribution ${quote(v)} is not one of ${DISTRIBUTIONS.join(', ')}`);
          }
          a.distribution = v as TopologyDistribution;
          break;
        }
        case 'waypoint':
          a.waypoint = this.string(f.value, 'address waypoint (a broker pair)', f.line);
          break;
        case 'linkRoute':
          a.linkRoute = this.string(f.value, 'address linkRoute (a broker pair)', f.line);
          break;
      }
    }
    if ((a.prefix === undefined) === (a.pattern === undefined)) {
      this.fail(a.prefix === undefined ? 'ERR_CONFIG_MISSING_ATTRIBUTE' : 'ERR_CONFIG_CONFLICT', line, 'an address needs exactly one of "prefix:" and "pattern:"');
    }
    if (a.waypoint !== undefined && a.linkRoute !== undefined) {
      this.fail('ERR_CONFIG_CONFLICT', line, 'an address is either a waypoint or a linkRoute, not both');
    }
    // A link route carries links, not messages: the router never applies a distribution to it.
    if (a.linkRoute !== undefined && a.distribution !== undefined) {
      this.fail('ERR_CONFIG_CONFLICT', line, `address ${describeRule(a)} is link-routed to ${a.linkRoute}: it has no distribution (the broker decides)`);
    }
    return a;
  }
}

function describeRule(a: { prefix?: string; pattern?: string }): string {
  return a.prefix !== undefined ? `prefix ${quote(a.prefix)}` : `pattern ${quote(a.pattern)}`;
}

/** Cross-entry checks: names unique and resolvable, mesh connected, queues under their pair's waypoints. */
function checkModel(m: Topology): void {
  // Declared with its type so that TypeScript narrows after a call (it never returns).
  const fail: (code: ConfigErrorCode, line: number, reason: string) => never = (code, line, reason) => {
    throw new ConfigError(code, m.file, line, reason);
  };
  const routers = new Map(m.routers.map((r) => [r.name, r]));
  const pairs = new Map(m.brokerPairs.map((p) => [p.name, p]));
  const routerList = m.routers.map((r) => r.name).join(', ');
  const pairList = m.brokerPairs.length ? m.brokerPairs.map((p) => p.name).join(', ') : '(none)';

  // One namespace: names become log files and connector names side by side.
  for (const p of m.brokerPairs) {
    const r = routers.get(p.name);
    if (r) fail('ERR_CONFIG_DUPLICATE', p.line, `broker pair ${p.name} has the name of router ${p.name} (line ${r.line}); names must be unique`);
  }
  const ports = new Map<number, TopologyRouter>();
  for (const r of m.routers) {
    const other = r.port !== 0 ? ports.get(r.port) : undefined;
    if (other) fail('ERR_CONFIG_DUPLICATE', r.line, `router ${r.name} port ${r.port} is also router ${other.name}'s (line ${other.line})`);
    ports.set(r.port, r);
  }

  const linked = new Map<string, TopologyLink>();
  for (const l of m.links) {
    for (const end of [l.from, l.to]) {
      if (!routers.has(end)) fail('ERR_CONFIG_INVALID_VALUE', l.line, `link ${l.from} -> ${l.to}: no router named ${quote(end)}; routers: ${routerList}`);
    }
    if (l.from === l.to) fail('ERR_CONFIG_INVALID_VALUE', l.line, `link ${l.from} -> ${l.to} connects a router to itself`);
    const key = [l.from, l.to].sort().join('\u0000');
    const dup = linked.get(key);
    // qdrouterd keeps one inter-router connection per peer: a second would only be refused at run time.
    if (dup) fail('ERR_CONFIG_DUPLICATE', l.line, `link ${l.from} -> ${l.to} duplicates the link on line ${dup.line} (one link per pair of routers, either direction)`);
    linked.set(key, l);
  }
  // The convergence wait needs every router reachable from every other.
  const reached = new Set<string>([m.routers[0].name]);
  for (let grew = true; grew;) {
    grew = false;
    for (const l of m.links) {
      if (reached.has(l.from) !== reached.has(l.to)) {
        reached.add(l.from);
        reached.add(l.to);
        grew = true;
      }
    }
  }
  for (const r of m.routers) {
    if (!reached.has(r.name)) {
      fail('ERR_CONFIG_INVALID_VALUE', r.line, `router ${r.name} is not linked to router ${m.routers[0].name}'s mesh; add a link such as { from: ${r.name}, to: ${m.routers[0].name} }`);
    }
  }

  for (const p of m.brokerPairs) {
    if (!routers.has(p.router)) fail('ERR_CONFIG_INVALID_VALUE', p.line, `broker pair ${p.name}: no router named ${quote(p.router)}; routers: ${routerList}`);
  }

  const rules = new Map<string, TopologyAddress>();
  for (const a of m.addresses) {
    const key = a.prefix !== undefined ? `p:${trimSeparators(a.prefix)}` : `t:${trimSeparators(a.pattern as string)}`;
    const dup = rules.get(key);
    if (dup) fail('ERR_CONFIG_DUPLICATE', a.line, `address ${describeRule(a)} duplicates the address on line ${dup.line}`);
    rules.set(key, a);
    for (const [kind, pair] of [['waypoint', a.waypoint], ['linkRoute', a.linkRoute]] as const) {
      if (pair !== undefined && !pairs.has(pair)) fail('ERR_CONFIG_INVALID_VALUE', a.line, `address ${describeRule(a)} ${kind}: no broker pair named ${quote(pair)}; broker pairs: ${pairList}`);
    }
  }

  // A queue's autoLinks only work if its address is a waypoint of the same pair (phases), and
  // as an anycast queue (not multicast) - the broker's routing type is derived from that.
  for (const p of m.brokerPairs) {
    const seen = new Set<string>();
    for (const [kind, names] of [['queue', p.queues], ['topic', p.topics]] as const) {
      for (const name of names) {
        const line = p.itemLines[name] ?? p.line;
        if (seen.has(name)) fail('ERR_CONFIG_DUPLICATE', line, `broker pair ${p.name} lists ${quote(name)} twice`);
        seen.add(name);
        const rule = bestRule(m.addresses, name);
        if (rule === undefined || rule.waypoint !== p.name) {
          fail('ERR_CONFIG_INVALID_VALUE', line, `broker pair ${p.name} ${kind} ${quote(name)} is not under an address with "waypoint: ${p.name}"${rule ? ` (its address is ${describeRule(rule)}, line ${rule.line})` : ''}; add { prefix: ${name}, waypoint: ${p.name}${kind === 'topic' ? ', distribution: multicast' : ''} }`);
        }
        const multicast = rule.distribution === 'multicast';
        if (multicast !== (kind === 'topic')) {
          fail('ERR_CONFIG_CONFLICT', line, `broker pair ${p.name} ${kind} ${quote(name)} falls under ${describeRule(rule)} (line ${rule.line}), which is ${multicast ? 'multicast: list it under topics' : 'not multicast: list it under queues, or make the address multicast'}`);
        }
      }
    }
  }
}

/** "queue." and "queue" name the same prefix in qdrouterd: separators at either end are not tokens. */
function trimSeparators(s: string): string {
  return s.replace(/^[./]+|[./]+$/g, '');
}

function matchPattern(p: string[], pi: number, a: string[], ai: number): boolean {
  if (pi === p.length) return ai === a.length;
  if (p[pi] === '#') {
    for (let k = ai; k <= a.length; k++) if (matchPattern(p, pi + 1, a, k)) return true;
    return false;
  }
  if (ai === a.length) return false;
  return (p[pi] === '*' || p[pi] === a[ai]) && matchPattern(p, pi + 1, a, ai + 1);
}

/**
 * The address rule a router applies to `address`: the most specific match, as the router's
 * AddressTable decides (router/core/addresses.ts): literal tokens weigh 2, a prefix 1 more.
 */
export function bestRule(rules: readonly TopologyAddress[], address: string): TopologyAddress | undefined {
  const a = address.split(/[./]/);
  let best: TopologyAddress | undefined;
  let bestWeight = -1;
  for (const r of rules) {
    const tokens = trimSeparators(r.prefix ?? r.pattern ?? '').split(/[./]/);
    const ok = r.prefix !== undefined
      ? tokens.length <= a.length && tokens.every((t, i) => t === a[i])
      : matchPattern(tokens, 0, a, 0);
    const weight = tokens.filter((t) => t !== '*' && t !== '#').length * 2 + (r.prefix !== undefined ? 1 : 0);
    if (ok && weight > bestWeight) {
      best = r;
      bestWeight = weight;
    }
  }
  return best;
}
