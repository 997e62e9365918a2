/**
 * The router's configuration loader.
 *
 * Reads qdrouterd.conf syntax, YAML or JSON (by file extension), validates it against a
 * transcription of qdrouterd 1.19's management schema (with the shared config package, config/),
 * and returns a typed {@link RouterConfig} with defaults filled in. Existing qdrouterd
 * configurations load: what amqp-mesh does not implement yet is accepted with a warning, unless
 * ignoring it would change behaviour (edge mode, edge listeners, WebSocket-less http...), which is
 * refused with "not supported yet". sslProfiles are read at load time; every listener and
 * connector carries its transport settings (TLS, WebSocket, handshake deadline).
 * Brokers attach through route-container listeners and connectors (with `failoverUrls`), which
 * the typed `linkRoutes` and `autoLinks` name by `connection` (a connector this file may not have: inactive until one exists) or `containerId`.
 *
 * ```ts
 * const config = loadConfigFile('/etc/amqp-mesh/router.conf');
 * for (const warning of config.warnings) log.log(configWarningLevel(warning), warning.message);
 * ```
 */

export { parseConfSyntax } from '../../config/conf-syntax';
export {
  ConfigError,
  configWarningLevel,
  formatLocation,
  MAX_ATTRIBUTE_VALUE_BYTES,
  MAX_CONFIG_ENTITIES,
  MAX_CONFIG_FILE_BYTES,
  MAX_VALUE_NESTING_DEPTH,
  type ConfigErrorCode,
  type ConfigWarning,
  type ConfigWarningCode,
} from '../../config/errors';
export {
  detectConfigSyntax,
  loadConfigFile,
  parseConfig,
  parseConfigEntities,
  type ConfigOptions,
  type ConfigSyntax,
} from './load';
export {
  FAILOVER_SCHEMES,
  FAILOVER_URL_FORM,
  parseFailoverUrls,
  SUPPORTED_FAILOVER_SCHEMES,
  type FailoverUrlProblem,
} from './failover-urls';
export { LOG_ENABLE_HELP, LOG_LEVELS, parseLogEnable } from '../../config/log-enable';
export { qdrouterdCamelCase, type RawAttribute, type RawEntity, type RawValue } from '../../config/raw-entity';
export { ENTITY_SCHEMAS, findEntitySchema, NON_CONFIGURABLE_ENTITY_TYPES } from './schema';
export { findAttributeSchema, supportedValues, type AttributeSchema, type AttributeStatus, type AttributeType, type EntitySchema, type SchemaDefault } from '../../config/schema';
export { LOG_MODULES } from '../../config/log';
export type {
  AddressDistribution,
  AddressEntity,
  AutoLinkEntity,
  ConfigValue,
  ConnectionRole,
  ConnectorEntity,
  ConnectorRole,
  EntityCommon,
  EntitySource,
  FailoverScheme,
  FailoverUrl,
  GenericEntity,
  LinkDirection,
  LinkRouteEntity,
  ListenerEntity,
  ListenerRole,
  LogEntity,
  LogLevel,
  LogModule,
  RouterConfig,
  RouterEntity,
  RouterMode,
  SaslMechanism,
  SslProfileEntity,
  StripAnnotations,
} from './types';
export { generateRouterId, validateEntities, validateEntity, type ValidatedEntity, type ValidationOptions } from './validate';
export { parseStructuredSyntax, type StructuredSyntax } from '../../config/yaml-syntax';
