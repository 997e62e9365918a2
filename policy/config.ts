/**
 * The policy of a configuration: the `policy` entity and every `vhost` (from the file, the
 * policyDir's JSON files or management), compiled and checked against each other. Shared by the
 * router and the broker; refusals are ConfigErrors naming the entity's file and line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../config/errors';
import { parseConfigEntities, readConfigText } from '../config/load';
import { qdrouterdCamelCase, type RawEntity } from '../config/raw-entity';
import type { ValidatedEntity } from '../config/validate';
import type { PolicySettings } from './engine';
import { compileVhost, PolicyError, type VhostRules } from './ruleset';

/** qdrouterd's defaults of the `policy` entity. */
export const POLICY_DEFAULTS = { maxConnections: 65535, maxMessageSize: 0, enableVhostPolicy: false, enableVhostNamePatterns: false, policyDir: '', defaultVhost: '$default' };

/** Most vhosts (file, policyDir and management together). */
export const MAX_VHOSTS = 10_000;

/**
 * The policy of validated entities: the `policy` entity's settings (or qdrouterd's defaults) and
 * the vhosts, each compiled; a vhost name or alias used twice is refused as qdrouterd refuses it.
 * @throws ConfigError naming the vhost's file and line.
 */
export function buildPolicySettings(entities: readonly ValidatedEntity[]): PolicySettings & { warnings: { file: string; line: number; reason: string }[] } {
  const p = entities.find((e) => e.schema.type === 'policy');
  const get = <T>(k: keyof typeof POLICY_DEFAULTS): T => (p?.values.get(k) ?? POLICY_DEFAULTS[k]) as T;
  const vhosts: VhostRules[] = [];
  const warnings: { file: string; line: number; reason: string }[] = [];
  const owner = new Map<string, string>();
  const patterns = new Set<string>();
  for (const e of entities) {
    if (e.schema.type !== 'vhost') continue;
    const attributes: Record<string, unknown> = {};
    for (const [k, v] of e.values) if (k !== 'name' && k !== 'identity') attributes[k] = v;
    let rules: VhostRules;
    try {
      rules = compileVhost(attributes);
    } catch (err) {
      if (err instanceof PolicyError) throw new ConfigError('ERR_CONFIG_INVALID_VALUE', e.file, e.line, err.message, { cause: err });
      throw err;
    }
    const name = rules.hostname;
    if (owner.has(name)) {
      throw new ConfigError('ERR_CONFIG_DUPLICATE', e.file, e.line, owner.get(name) === name
        ? `vhost '${name}' is defined twice`
        : `Policy is creating vhost '${name}' but that name is already an alias for vhost '${owner.get(name)}'`);
    }
    for (const a of rules.aliases) {
      const o = owner.get(a);
      if (o === a) throw new ConfigError('ERR_CONFIG_DUPLICATE', e.file, e.line, `Policy for vhost '${name}' defines alias '${a}' which conflicts with an existing vhost named '${a}'`);
      if (o !== undefined) throw new ConfigError('ERR_CONFIG_DUPLICATE', e.file, e.line, `Policy for vhost '${name}' alias '${a}' conflicts with existing alias for vhost '${o}'`);
    }
    if (get<boolean>('enableVhostNamePatterns')) {
      // qdrouterd keeps vhost names as patterns in one parse tree, optimised (`#.#` is `#`): two that optimise alike clash.
      for (const t of [name, ...rules.aliases]) {
        const key = computeOptimizedPattern(t);
        if (patterns.has(key)) {
          const err = new PolicyError(`Policy for vhost '${name}' alias '${t}' optimized pattern conflicts with existing pattern`);
          throw new ConfigError('ERR_CONFIG_DUPLICATE', e.file, e.line, err.message, { cause: err });
        }
        patterns.add(key);
      }
    }
    owner.set(name, name);
    for (const a of rules.aliases) owner.set(a, name);
    for (const w of rules.warnings) warnings.push({ file: e.file, line: e.line, reason: w });
    vhosts.push(rules);
  }
  if (vhosts.length > MAX_VHOSTS) throw new ConfigError('ERR_CONFIG_TOO_MANY_ENTITIES', p?.file ?? entities[0]?.file ?? '', 0, `more than ${MAX_VHOSTS} vhosts`);
  return {
    maxConnections: get<number>('maxConnections'),
    maxMessageSize: get<number>('maxMessageSize'),
    enableVhostPolicy: get<boolean>('enableVhostPolicy'),
    enableVhostNamePatterns: get<boolean>('enableVhostNamePatterns'),
    defaultVhost: get<string>('defaultVhost'),
    vhosts,
    warnings,
  };
}

/**
 * A name pattern as qdrouterd's parse tree keeps it: `#.#` is `#` and `#.*` is `*.#` (the same
 * matches), applied until nothing changes.
 */
export function computeOptimizedPattern(pattern: string): string {
  const t = pattern.split(/[./]/);
  for (let changed = true; changed;) {
    changed = false;
    for (let i = 0; i + 1 < t.length; i++) {
      if (t[i] === '#' && t[i + 1] === '#') {
        t.splice(i + 1, 1);
        changed = true;
      } else if (t[i] === '#' && t[i + 1] === '*') {
        t[i] = '*';
        t[i + 1] = '#';
        changed = true;
      }
    }
  }
  return t.join('.');
}

/**
 * The vhost entities of a policyDir (qdrouterd's: every `*.json` file in it, each a JSON list of
 * `["vhost", {...}]`; other entities there are ignored, as qdrouterd ignores them), in file-name
 * order, each naming its own file. No directory named: none.
 * @throws ConfigError when the directory or a file cannot be read or parsed.
 */
export function readPolicyDir(raw: readonly RawEntity[], configFile: string): RawEntity[] {
  const policy = raw.find((r) => qdrouterdCamelCase(r.type) === 'policy');
  const attr = policy?.attributes.find((a) => qdrouterdCamelCase(a.name) === 'policyDir');
  if (policy === undefined || attr === undefined || attr.value === null || attr.value === '') return [];
  const dir = path.resolve(String(attr.value));
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    throw new ConfigError('ERR_CONFIG_REFERENCED_FILE', configFile, attr.line, `policyDir ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const out: RawEntity[] = [];
  for (const n of names) {
    const file = path.join(dir, n);
    for (const e of parseConfigEntities(readConfigText(file), file, 'json')) {
      if (qdrouterdCamelCase(e.type) === 'vhost') out.push({ ...e, file });
    }
  }
  return out;
}
