/**
 * qdrouterd's `log` entity, the same in router and broker files: its schema, its typed form and
 * its checks (one entity per module, qdrouterd's enable strings and DEFAULT-module defaults).
 */

import { quote } from './errors';
import { LOG_ENABLE_HELP, parseLogEnable } from './log-enable';
import { attributeHelpers, entitySchema, type EntitySchema } from './schema';
import type { EntityCommon } from './types';
import { common, invalid, optionalBoolean, optionalString, stringValue, type ValidatedEntity } from './validate';

/** qdrouterd's log modules, in its order; `DEFAULT` sets the defaults of all the others. */
export const LOG_MODULES = [
  'ROUTER',
  'ROUTER_CORE',
  'ROUTER_HELLO',
  'ROUTER_LS',
  'ROUTER_MA',
  'MESSAGE',
  'SERVER',
  'AGENT',
  'AUTHSERVICE',
  'CONTAINER',
  'ERROR',
  'POLICY',
  'HTTP',
  'CONN_MGR',
  'PYTHON',
  'PROTOCOL',
  'DEFAULT',
] as const;

/** qdrouterd's log modules; `DEFAULT` supplies the settings other modules do not set. */
export type LogModule = (typeof LOG_MODULES)[number];

/** Log severities, least severe first. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'notice' | 'warning' | 'error' | 'critical';

/** A `log` entity: settings of one log module. */
export interface LogEntity extends EntityCommon {
  type: 'log';
  module: LogModule;
  /** The enable string as written, e.g. `info+` or `trace,debug,warning+`; `default` when not set (DEFAULT: `info+`). */
  enable: string;
  /** The levels `enable` turns on, least severe first; `'default'` means "as the DEFAULT module", `[]` means none. */
  enabledLevels: LogLevel[] | 'default';
  /** Unset means "as the DEFAULT module" (which defaults to true). */
  includeTimestamp?: boolean;
  /** Unset means "as the DEFAULT module" (which defaults to false). */
  includeSource?: boolean;
  /** `stderr`, `stdout`, `syslog` or a file name; unset means "as the DEFAULT module" (which defaults to stderr). */
  outputFile?: string;
}

const { string, boolean, enumOf } = attributeHelpers('implemented');

/** qdrouterd's `log` entity type. */
export const LOG_ENTITY_SCHEMA: EntitySchema = entitySchema('log', { qdrouterdType: 'org.apache.qpid.dispatch.log', implemented: true }, {
  module: enumOf(LOG_MODULES, { required: true }),
  enable: string(),
  includeTimestamp: boolean({ deprecationName: 'timestamp' }),
  includeSource: boolean({ deprecationName: 'source' }),
  outputFile: string({ deprecationName: 'output' }),
});

/**
 * Builds a validated `log` entity.
 * @param modules first line of each module configured so far; this one is added.
 * @throws ConfigError for a module configured twice or an invalid enable string.
 */
export function buildLog(entity: ValidatedEntity, modules: Map<string, number>): LogEntity {
  const module = stringValue(entity, 'module') as LogModule;
  const firstLine = modules.get(module);
  if (firstLine !== undefined) {
    invalid(entity, 'module', 'ERR_CONFIG_DUPLICATE', `log module "${module}" is configured twice (first on line ${firstLine})`);
  }
  modules.set(module, entity.line);
  const isDefaultModule = module === 'DEFAULT';
  // qdrouterd's defaults for the DEFAULT module; the other modules inherit what they do not set.
  const enable = optionalString(entity, 'enable') ?? (isDefaultModule ? 'info+' : 'default');
  const enabledLevels = parseLogEnable(enable);
  if (enabledLevels === undefined) {
    invalid(entity, 'enable', 'ERR_CONFIG_INVALID_VALUE', `log enable ${quote(enable)} is not valid; expected ${LOG_ENABLE_HELP}`);
  }
  if (enabledLevels === 'default' && isDefaultModule) {
    invalid(entity, 'enable', 'ERR_CONFIG_INVALID_VALUE', 'log enable "default" cannot be used for the DEFAULT module; expected levels such as "info+"');
  }
  const includeTimestamp = optionalBoolean(entity, 'includeTimestamp') ?? (isDefaultModule ? true : undefined);
  const includeSource = optionalBoolean(entity, 'includeSource') ?? (isDefaultModule ? false : undefined);
  const outputFile = optionalString(entity, 'outputFile') ?? (isDefaultModule ? 'stderr' : undefined);
  return {
    type: 'log',
    module,
    enable,
    enabledLevels,
    ...(includeTimestamp !== undefined ? { includeTimestamp } : {}),
    ...(includeSource !== undefined ? { includeSource } : {}),
    ...(outputFile !== undefined ? { outputFile } : {}),
    ...common(entity),
  };
}
