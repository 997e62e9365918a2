/**
 * A vhost's rules compiled from its entity (qdrouterd's `vhost`, from a config file, a policyDir
 * JSON file or management): limits, aliases and user groups with their settings. Pure; the
 * refusals are qdrouterd's own sentences (its PolicyCompiler), which operators and tests match.
 */
import { compileHostSpec, type HostSpec } from './hosts';
import { USER_TOKEN, compilePatterns, type NameRule, type PatternRule } from './names';


/** A vhost definition that cannot be used. */
export class PolicyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PolicyError';
  }
}

/** The settings of a user group (qdrouterd's vhostUserGroupSettings), as compiled. */
export interface GroupSettings {
  readonly users: readonly string[];
  readonly remoteHosts: readonly HostSpec[];
  /** 0: the listener's own. */
  readonly maxFrameSize: number;
  readonly maxSessionWindow: number;
  readonly maxSessions: number;
  /** null: the vhost's, else the policy's. */
  readonly maxMessageSize: number | null;
  /** 0: no limit. */
  readonly maxSenders: number;
  readonly maxReceivers: number;
  readonly maxConnectionsPerUser: number | null;
  readonly maxConnectionsPerHost: number | null;
  readonly allowDynamicSource: boolean;
  readonly allowAnonymousSender: boolean;
  readonly allowUserIdProxy: boolean;
  readonly allowWaypointLinks: boolean;
  readonly allowFallbackLinks: boolean;
  readonly allowDynamicLinkRoutes: boolean;
  readonly allowAdminStatusUpdate: boolean;
  /** Allowed names; an empty list allows none. */
  readonly sources: readonly NameRule[];
  readonly targets: readonly NameRule[];
  /** Address patterns (`a.${user}.#`); when present they decide instead of sources/targets. */
  readonly sourcePattern: readonly PatternRule[] | null;
  readonly targetPattern: readonly PatternRule[] | null;
}

/** A vhost's compiled rules. */
export interface VhostRules {
  readonly hostname: string;
  readonly aliases: readonly string[];
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
  readonly maxConnectionsPerHost: number;
  readonly allowUnknownUser: boolean;
  readonly maxMessageSize: number | null;
  readonly groups: ReadonlyMap<string, GroupSettings>;
  /** user -> group (`*` for every user not named). */
  readonly userGroups: ReadonlyMap<string, string>;
  /** Options qdrouterd ignores with a warning (unknown names). */
  readonly warnings: readonly string[];
}

/** The group of users allowed in without being named (allowUnknownUser). */
export const DEFAULT_GROUP = '$default';

const RULESET_OPTIONS = new Set(['name', 'identity', 'type', 'hostname', 'id', 'maxConnections', 'maxMessageSize', 'maxConnectionsPerHost', 'maxConnectionsPerUser', 'allowUnknownUser', 'groups', 'aliases']);
const SETTINGS_OPTIONS = new Set(['users', 'remoteHosts', 'maxConnectionsPerHost', 'maxConnectionsPerUser', 'maxFrameSize', 'maxMessageSize', 'maxSessionWindow', 'maxSessions',
  'maxSenders', 'maxReceivers', 'allowDynamicSource', 'allowAnonymousSender', 'allowUserIdProxy', 'allowWaypointLinks', 'allowFallbackLinks', 'allowDynamicLinkRoutes',
  'allowAdminStatusUpdate', 'sources', 'targets', 'sourcePattern', 'targetPattern']);
const BOOLEAN_SETTINGS = ['allowDynamicSource', 'allowAnonymousSender', 'allowUserIdProxy', 'allowWaypointLinks', 'allowFallbackLinks', 'allowDynamicLinkRoutes', 'allowAdminStatusUpdate'] as const;
/** Largest number a limit may have (qdrouterd's connection limits; sizes and counts are 64-bit there). */
const MAX_LIMIT = Number.MAX_SAFE_INTEGER;

/** qdrouterd's validateNumber: an integer (or its text) within [min, max]; max 0: no maximum. */
function checkNumber(val: unknown, min: number, max: number): { value: number } | { error: string } {
  const text = typeof val === 'bigint' ? String(val) : val;
  const n = typeof text === 'number' ? Math.trunc(text) : typeof text === 'string' && /^\s*[+-]?\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(n) || typeof text === 'boolean') return { error: `Value '${String(val)}' does not resolve to an integer.` };
  if (n < min) return { error: `Value '${String(val)}' is below minimum '${min}'.` };
  if (max > 0 && n > max) return { error: `Value '${String(val)}' is above maximum '${max}'.` };
  if (n > MAX_LIMIT) return { error: `Value '${String(val)}' is above maximum '${MAX_LIMIT}'.` };
  return { value: n };
}

/** A comma-separated list (or a list) as trimmed items. */
function listOf(val: unknown): string[] | null {
  if (Array.isArray(val)) return val.map((v) => String(v).trim());
  if (typeof val === 'string') return val.split(',').map((x) => x.trim());
  return null;
}

function compileNames(vhost: string, group: string, key: string, items: readonly string[], pattern: boolean): NameRule[] {
  const out: NameRule[] = [];
  for (const v of new Set(items)) {
    const count = v.split(USER_TOKEN).length - 1;
    if (count > 1) throw new PolicyError(`Policy vhost '${vhost}' user group '${group}' policy key '${key}' item '${v}' contains multiple user subtitution tokens`);
    if (count === 1) {
      const at = v.indexOf(USER_TOKEN);
      const before = v.slice(0, at);
      const after = v.slice(at + USER_TOKEN.length);
      if (at === 0) out.push({ kind: 'p', before: '', after });
      else if (after === '') out.push({ kind: 's', before, after: '' });
      else {
        if (pattern) throw new PolicyError(`Policy vhost '${vhost}' user group '${group}' policy key '${key}' item '${v}' may contain match pattern '${USER_TOKEN}' as a prefix or a suffix only.`);
        out.push({ kind: 'e', before, after });
      }
    } else if (v === '*') out.push({ kind: '*', before: '', after: '' });
    else out.push({ kind: 'a', before: v, after: '' });
  }
  return out;
}

function compileGroup(vhost: string, group: string, input: Record<string, unknown>, warnings: string[]): GroupSettings {
  const s: { -readonly [K in keyof GroupSettings]: GroupSettings[K] } = {
    users: [], remoteHosts: [], maxFrameSize: 0, maxSessionWindow: 0, maxSessions: 0, maxMessageSize: null, maxSenders: 2147483647, maxReceivers: 2147483647,
    maxConnectionsPerUser: null, maxConnectionsPerHost: null, allowDynamicSource: false, allowAnonymousSender: false, allowUserIdProxy: false, allowWaypointLinks: true,
    allowFallbackLinks: true, allowDynamicLinkRoutes: true, allowAdminStatusUpdate: true, sources: [], targets: [], sourcePattern: null, targetPattern: null,
  };
  const prefix = `Policy vhost '${vhost}' user group '${group}'`;
  for (const [key, val] of Object.entries(input)) {
    if (!SETTINGS_OPTIONS.has(key)) warnings.push(`${prefix} option '${key}' is ignored.`);
    if (key === 'maxConnectionsPerHost' || key === 'maxConnectionsPerUser') {
      const r = checkNumber(val, 0, 65535);
      if ('error' in r) throw new PolicyError(`${prefix} option '${key}' has error '${r.error}'.`);
      s[key] = r.value;
    } else if (key === 'maxFrameSize' || key === 'maxMessageSize' || key === 'maxReceivers' || key === 'maxSenders' || key === 'maxSessionWindow' || key === 'maxSessions') {
      const r = checkNumber(val, 0, 0);
      if ('error' in r) throw new PolicyError(`${prefix} option '${key}' has error '${r.error}'.`);
      s[key] = r.value;
    } else if (key === 'remoteHosts') {
      const items = listOf(val);
      if (items === null) throw new PolicyError(`${prefix} option '${key}' has illegal value '${String(val)}'. Type must be 'str' or 'list'`);
      s.remoteHosts = items.map((h) => {
        try {
          return compileHostSpec(h);
        } catch (e) {
          throw new PolicyError(`${prefix} option '${key}' connectionOption '${h}' failed to translate: '${(e as Error).message}'.`, { cause: e });
        }
      });
    } else if ((BOOLEAN_SETTINGS as readonly string[]).includes(key)) {
      const b = typeof val === 'string' && ['true', 'false'].includes(val.toLowerCase()) ? val.toLowerCase() === 'true' : val;
      if (typeof b !== 'boolean') throw new PolicyError(`${prefix} option '${key}' has illegal boolean value '${String(val)}'.`);
      s[key as (typeof BOOLEAN_SETTINGS)[number]] = b;
    } else if (key === 'users' || key === 'sources' || key === 'targets' || key === 'sourcePattern' || key === 'targetPattern') {
      const items = listOf(val);
      if (items === null) throw new PolicyError(`${prefix} option '${key}' has illegal value '${String(val)}'. Type must be 'str' or 'list'`);
      if (key === 'users') s.users = [...new Set(items)];
      else if (key === 'sources' || key === 'targets') s[key] = compileNames(vhost, group, key, items, false);
      else {
        compileNames(vhost, group, key, items, true);
        s[key] = compilePatterns([...new Set(items)].filter((p) => p !== ''));
      }
    }
  }
  if ('sources' in input && 'sourcePattern' in input) throw new PolicyError(`${prefix} specifies conflicting 'sources' and 'sourcePattern' attributes. Use only one or the other.`);
  if ('targets' in input && 'targetPattern' in input) throw new PolicyError(`${prefix} specifies conflicting 'targets' and 'targetPattern' attributes. Use only one or the other.`);
  return s;
}

/**
 * Compiles a vhost entity's attributes (as qdrouterd's PolicyCompiler does).
 * @throws PolicyError with qdrouterd's sentence, prefixed `Policy '<name>' is invalid: `.
 */
export function compileVhost(attributes: Readonly<Record<string, unknown>>): VhostRules {
  const name = String(attributes.hostname ?? attributes.id ?? '');
  try {
    return compileVhostInner(name, attributes);
  } catch (e) {
    if (e instanceof PolicyError) throw new PolicyError(`Policy '${name}' is invalid: ${e.message}`, { cause: e });
    throw e;
  }
}

function compileVhostInner(name: string, attributes: Readonly<Record<string, unknown>>): VhostRules {
  const warnings: string[] = [];
  const limits = { maxConnections: 65535, maxConnectionsPerHost: 65535, maxConnectionsPerUser: 65535 };
  let maxMessageSize: number | null = null;
  let allowUnknownUser = false;
  let aliases: string[] = [];
  const groups = new Map<string, GroupSettings>();
  for (const [key, val] of Object.entries(attributes)) {
    if (val === undefined || val === null) continue;
    if (!RULESET_OPTIONS.has(key)) warnings.push(`Policy vhost '${name}' option '${key}' is ignored.`);
    if (key === 'maxConnections' || key === 'maxConnectionsPerHost' || key === 'maxConnectionsPerUser') {
      const r = checkNumber(val, 0, 65535);
      if ('error' in r) throw new PolicyError(`Policy vhost '${name}' option '${key}' has error '${r.error}'.`);
      limits[key] = r.value;
    } else if (key === 'maxMessageSize') {
      const r = checkNumber(val, 0, 0);
      if ('error' in r) throw new PolicyError(`Policy vhost '${name}' option '${key}' has error '${r.error}'.`);
      maxMessageSize = r.value;
    } else if (key === 'allowUnknownUser') {
      const b = typeof val === 'string' && ['true', 'false'].includes(val.toLowerCase()) ? val.toLowerCase() === 'true' : val;
      if (typeof b !== 'boolean') throw new PolicyError(`Policy vhost '${name}' option '${key}' must be of type 'bool' but is '${typeof val}'`);
      allowUnknownUser = b;
    } else if (key === 'aliases') {
      const items = listOf(val) ?? [];
      aliases = [];
      for (const a of items) {
        if (a === '') continue;
        if (a === name) throw new PolicyError(`Policy vhost '${name}' option '${key}' value '${a}' duplicates vhost name`);
        if (aliases.includes(a)) throw new PolicyError(`Policy vhost '${name}' option '${key}' value '${a}' is duplicated`);
        aliases.push(a);
      }
    } else if (key === 'groups') {
      if (typeof val !== 'object' || Array.isArray(val)) throw new PolicyError(`Policy vhost '${name}' option '${key}' must be of type 'dict' but is '${Array.isArray(val) ? 'list' : typeof val}'`);
      for (const [g, settings] of Object.entries(val as Record<string, unknown>)) {
        if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
          throw new PolicyError(`Policy vhost '${name}' user group '${g}' must be a map of settings`);
        }
        groups.set(g, compileGroup(name, g, settings as Record<string, unknown>, warnings));
      }
    }
  }
  const userGroups = new Map<string, string>();
  for (const [g, settings] of groups) {
    // A group without users applies to no named user ($default still serves unknown users).
    for (const u of settings.users) {
      const other = userGroups.get(u);
      if (other !== undefined) throw new PolicyError(`Policy vhost '${name}' user '${u}' is in multiple user groups '${other}' and '${g}'`);
      userGroups.set(u, g);
    }
  }
  if (allowUnknownUser && !groups.has(DEFAULT_GROUP)) {
    throw new PolicyError(`Policy vhost '${name}' allows connections by default but default settings are not defined`);
  }
  return { hostname: name, aliases, ...limits, allowUnknownUser, maxMessageSize, groups, userGroups, warnings };
}
