/**
 * What the router's and the broker's `listener` (and the router's `connector`) entities share:
 * qdrouterd's attributes for where to listen, SASL, and connection limits, and their checks.
 */

import type { ListenerTransport } from '../amqp/transport/settings';
import { quote } from './errors';
import { attributeHelpers, type AttributeSchema } from './schema';
import { booleanValue, integerValue, invalid, optionalString, stringValue, type ValidatedEntity } from './validate';

/** SASL mechanisms amqp-mesh implements (EXTERNAL: the client's TLS certificate; SCRAM: listeners only). */
export type SaslMechanism = 'ANONYMOUS' | 'PLAIN' | 'EXTERNAL' | 'SCRAM-SHA-256' | 'SCRAM-SHA-1';

/** Mechanisms a listener may offer, in the order messages list them. */
export const LISTENER_SASL_MECHANISMS: readonly SaslMechanism[] = ['ANONYMOUS', 'PLAIN', 'EXTERNAL', 'SCRAM-SHA-256', 'SCRAM-SHA-1'];

/** Default of maxSessions (also what a configured 0 means), as in qdrouterd. */
export const DEFAULT_MAX_SESSIONS = 32768;

const UINT32_MAX = 0xffff_ffff;
/** AMQP 1.0 (part 2, section 2.7.1): a peer must accept frames of at least 512 octets. */
const AMQP_MIN_MAX_FRAME_SIZE = 512;

const { string, integer, boolean, port } = attributeHelpers('implemented');

type Attributes = { readonly [name: string]: AttributeSchema };

/** Where a listener listens. */
export const LISTENER_ADDRESS_ATTRIBUTES: Attributes = {
  // qdrouterd's default: the empty string listens on all local addresses.
  host: string({ default: '' }),
  port: port({ default: 'amqp' }),
};

/** What a listener asks of its peers' SASL. */
export const LISTENER_SASL_ATTRIBUTES: Attributes = {
  // Default depends on authenticatePeer (and on the application).
  saslMechanisms: string(),
  authenticatePeer: boolean({ default: false }),
};

/** Frame, session and idle limits of listeners and connectors. */
export const CONNECTION_LIMIT_ATTRIBUTES: Attributes = {
  maxFrameSize: integer({ default: 16384, min: AMQP_MIN_MAX_FRAME_SIZE, max: UINT32_MAX }),
  // 0 selects the default, as in qdrouterd.
  maxSessions: integer({ default: DEFAULT_MAX_SESSIONS, max: DEFAULT_MAX_SESSIONS }),
  // AMQP carries the idle timeout in milliseconds in a uint.
  idleTimeoutSeconds: integer({ default: 16, max: Math.floor(UINT32_MAX / 1000) }),
};

/** Frame, session and idle limits, read. */
export interface ConnectionLimits {
  /** Largest frame accepted, in octets (default 16384). */
  maxFrameSize: number;
  /** Most sessions per connection (default 32768; a configured 0 also means 32768, as in qdrouterd). */
  maxSessions: number;
  /** Close a connection after this many seconds without a frame; 0 disables (default 16). */
  idleTimeoutSeconds: number;
}

export function readConnectionLimits(entity: ValidatedEntity): ConnectionLimits {
  const maxSessions = integerValue(entity, 'maxSessions');
  return {
    maxFrameSize: integerValue(entity, 'maxFrameSize'),
    maxSessions: maxSessions === 0 ? DEFAULT_MAX_SESSIONS : maxSessions,
    idleTimeoutSeconds: integerValue(entity, 'idleTimeoutSeconds'),
  };
}

/** Where a listener listens, read. */
export function readListenerAddress(entity: ValidatedEntity): { host: string; port: number } {
  return { host: stringValue(entity, 'host'), port: integerValue(entity, 'port') };
}

/**
 * A listener's authenticatePeer and saslMechanisms: the mechanisms as written, or the
 * application's default; authenticatePeer needs a mechanism that authenticates (PLAIN or
 * EXTERNAL; EXTERNAL's sslProfile is checked with the listener's transport, config/transport.ts).
 */
export function readListenerSasl(
  entity: ValidatedEntity,
  defaultMechanisms: (authenticatePeer: boolean) => SaslMechanism[],
): { authenticatePeer: boolean; saslMechanisms: SaslMechanism[] } {
  const authenticatePeer = booleanValue(entity, 'authenticatePeer');
  const written = optionalString(entity, 'saslMechanisms');
  if (written === undefined) return { authenticatePeer, saslMechanisms: defaultMechanisms(authenticatePeer) };
  const saslMechanisms = parseSaslMechanisms(entity, written, LISTENER_SASL_MECHANISMS);
  // On an http listener authenticatePeer asks HTTPS clients for a certificate (qdrouterd's), so
  // its SASL mechanisms need not authenticate.
  const http = entity.values.get('http') === true || (typeof entity.values.get('httpRootDir') === 'string' && entity.values.get('httpRootDir') !== '');
  if (authenticatePeer && !http && !saslMechanisms.some((m) => m !== 'ANONYMOUS')) {
    invalid(
      entity,
      'saslMechanisms',
      'ERR_CONFIG_CONFLICT',
      `listener has authenticatePeer: true but saslMechanisms ${quote(written)} has no mechanism that authenticates; add PLAIN or SCRAM-SHA-256 (or EXTERNAL, with an sslProfile that has a caCertFile)`,
    );
  }
  return { authenticatePeer, saslMechanisms };
}

/** A space- (or comma-) separated list of SASL mechanisms, upper-cased, without repeats. */
export function parseSaslMechanisms<M extends string>(entity: ValidatedEntity, written: string, supported: readonly M[]): M[] {
  const type = entity.schema.type;
  const names = written.split(/[\s,]+/).filter((name) => name !== '');
  if (names.length === 0) {
    invalid(entity, 'saslMechanisms', 'ERR_CONFIG_INVALID_VALUE', `${type} saslMechanisms is empty; expected a space-separated list of ${supported.join(', ')}`);
  }
  const mechanisms: M[] = [];
  for (const name of names) {
    const mechanism = supported.find((known) => known === name.toUpperCase());
    if (mechanism === undefined) {
      invalid(entity, 'saslMechanisms', 'ERR_CONFIG_NOT_SUPPORTED', `${type} saslMechanisms ${quote(name)} is not supported by amqp-mesh; supported: ${supported.join(', ')}`);
    }
    if (!mechanisms.includes(mechanism)) mechanisms.push(mechanism);
  }
  return mechanisms;
}

/** A validated listener, as the router's and the broker's are. */
export interface ListenerCommon extends ConnectionLimits {
  name?: string;
  host: string;
  port: number;
  authenticatePeer: boolean;
  saslMechanisms: SaslMechanism[];
  transport: ListenerTransport;
}

/**
 * What the router's and the broker's servers need of any listener: a name for logs (the
 * configured one, or `listenerN/HOST:PORT`), the address to bind ("" is every address), SASL,
 * limits and transport.
 */
export function listenerSocketSettings(listener: ListenerCommon, index: number) {
  return {
    name: listener.name ?? `listener${index}/${listener.host || '*'}:${listener.port}`,
    host: listener.host === '' ? '0.0.0.0' : listener.host,
    port: listener.port,
    maxFrameSize: listener.maxFrameSize,
    maxSessions: listener.maxSessions,
    idleTimeoutSeconds: listener.idleTimeoutSeconds,
    saslMechanisms: [...listener.saslMechanisms],
    authenticatePeer: listener.authenticatePeer,
    transport: listener.transport,
  };
}
