/**
 * The broker's configuration loader (`amqp-mesh broker -c FILE`).
 *
 * Same syntaxes as the router, chosen by extension (`.conf` qdrouterd syntax, `.yaml`/`.yml`,
 * `.json`), parsed and validated by the shared config package (config/); same errors
 * ({@link ConfigError}: `file:line: reason`, naming the valid choices) and limits. Entities: `broker` (one; dataDir required unless
 * persistent: false), `listener`, `address` (settings per prefix or pattern), `queue`
 * (pre-created queues) and the router's `log`.
 *
 * ```ts
 * const config = loadBrokerConfigFile('/etc/amqp-mesh/broker.conf');
 * for (const warning of config.warnings) log.warning(warning.message);
 * const settings = matchAddress(config.addresses, 'orders.eu'); // per new queue or topic
 * ```
 */

export { ConfigError, formatLocation, type ConfigErrorCode, type ConfigWarning } from '../../config/errors';
export type { ConfigSyntax } from '../../config/load';
export type { LogEntity } from '../../config/log';
export type { SslProfileEntity } from '../../config/ssl-profile';
export { loadBrokerConfigFile, parseBrokerConfig, type BrokerConfigOptions } from './load';
export { DEFAULT_ADDRESS_SETTINGS, findAddressEntity, matchAddress } from './match';
export {
  ADDRESS_FULL_POLICIES,
  BROKER_ENTITY_SCHEMAS,
  BROKER_ENTITY_TYPES,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_MAX_SESSIONS,
  ROUTING_TYPES,
  type BrokerAttributeSchema,
  type BrokerAttributeType,
  type BrokerEntitySchema,
} from './schema';
export type {
  AddressFullPolicy,
  BrokerAddress,
  BrokerAddressSettings,
  BrokerConfig,
  BrokerEntity,
  BrokerEntityCommon,
  BrokerListener,
  BrokerQueue,
  RoutingType,
} from './types';
export { generateBrokerId, validateBrokerEntities, type BrokerValidationOptions } from './validate';
