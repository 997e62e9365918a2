/**
 * How listeners and connectors carry their connections (TLS, WebSocket, the handshake deadline):
 * qdrouterd's attributes, their checks, and the mapping onto the transport settings
 * (amqp/transport/settings.ts) that every validated listener and connector carries.
 *
 * A listener or connector may name an sslProfile written anywhere in the file, so references
 * are resolved once every entity is read ({@link TransportLinker.link}).
 *
 * The mapping:
 * - listener: `tls` is the named sslProfile's profile, or null (no sslProfile, or `""`);
 *   `requireSsl` is requireSsl or requireEncryption (there is no other encryption), with TLS only;
 *   `verifyClient`: with TLS, when EXTERNAL is offered (see {@link verifiesClient});
 *   `websockets` is http and websockets; `initialHandshakeTimeoutSeconds` as written, 30 when
 *   not set (qdrouterd: no deadline), 0 for none.
 * - connector: `tls` as for listeners; `verifyHostname` as written (default true).
 */

import * as nodePath from 'node:path';
import { PLAIN_CONNECTOR, PLAIN_LISTENER, type ConnectorTransport, type ListenerTransport, type TlsProfile } from '../amqp/transport/settings';
import { configWarning, ConfigError, quote, type ConfigWarning } from './errors';
import type { SaslMechanism } from './listener';
import { attributeHelpers, notImplemented, type AttributeSchema } from './schema';
import type { SslProfileEntity } from './ssl-profile';
import { booleanValue, invalid, lineOf, optionalInteger, optionalString, type ValidatedEntity } from './validate';

/**
 * The handshake deadline of a listener that does not set initialHandshakeTimeoutSeconds.
 * amqp-mesh deviates from qdrouterd (no deadline): without one, clients that trickle their
 * handshake could hold connections forever. An explicit 0 means no deadline, as in qdrouterd.
 */
export const DEFAULT_INITIAL_HANDSHAKE_TIMEOUT_SECONDS = 30;

/** Longest deadline, in seconds: a Node.js timer holds at most 2^31-1 milliseconds. */
const MAX_TIMER_SECONDS = Math.floor(0x7fff_ffff / 1000);

const { string, path, integer, boolean } = attributeHelpers('implemented');

/** qdrouterd's listener attributes for TLS, WebSocket and the handshake deadline. */
export const LISTENER_TRANSPORT_ATTRIBUTES: { readonly [name: string]: AttributeSchema } = {
  sslProfile: string(),
  requireSsl: boolean({ default: false }),
  requireEncryption: boolean({ default: false }),
  http: boolean({ default: false }),
  websockets: boolean({ default: true }),
  // A root directory makes the listener an http one (qdrouterd's): its files are served.
  httpRootDir: path({ deprecationName: 'httpRoot' }),
  healthz: boolean({ default: true }),
  metrics: boolean({ default: true }),
  // qdrouterd's default is 0 (no deadline); unset means DEFAULT_INITIAL_HANDSHAKE_TIMEOUT_SECONDS here.
  initialHandshakeTimeoutSeconds: integer({ max: MAX_TIMER_SECONDS }),
};

/** qdrouterd's connector attributes for TLS. */
export const CONNECTOR_TRANSPORT_ATTRIBUTES: { readonly [name: string]: AttributeSchema } = {
  sslProfile: string(),
  verifyHostname: boolean({ default: true, deprecationName: 'verifyHostName' }),
};

/**
 * Whether a TLS listener asks for and verifies client certificates: exactly when EXTERNAL is
 * offered, as qdrouterd 1.19 (connection_manager.c: ssl_require_peer_authentication). With
 * authenticatePeer and PLAIN over TLS, clients authenticate with SASL and need no certificate.
 */
export function verifiesClient(tls: TlsProfile | null, saslMechanisms: readonly SaslMechanism[]): boolean {
  return tls !== null && saslMechanisms.includes('EXTERNAL');
}

/**
 * Collects sslProfiles and the listeners and connectors that name them; {@link link} resolves
 * the names once every entity is read and sets each one's `transport`.
 */
export class TransportLinker {
  private readonly profiles = new Map<string, SslProfileEntity>();
  private readonly pending: Array<() => void> = [];

  constructor(
    private readonly file: string,
    private readonly warnings: ConfigWarning[],
  ) {}

  /** Every sslProfile added, in file order. */
  get sslProfiles(): SslProfileEntity[] {
    return [...this.profiles.values()];
  }

  addProfile(profile: SslProfileEntity): void {
    this.profiles.set(profile.name, profile);
  }

  /**
   * Reads a listener's transport attributes (checks that need no sslProfile run now); its
   * `transport` is set by {@link link}.
   * @returns `listener`.
   */
  listener<T extends { transport: ListenerTransport }>(
    entity: ValidatedEntity,
    sasl: { authenticatePeer: boolean; saslMechanisms: readonly SaslMechanism[] },
    listener: T,
  ): T {
    const profileName = this.profileName(entity);
    const requireSsl = ['requireSsl', 'requireEncryption'].filter((attribute) => booleanValue(entity, attribute));
    if (profileName === undefined && requireSsl.length > 0) {
      invalid(
        entity,
        requireSsl[0]!,
        'ERR_CONFIG_CONFLICT',
        `listener ${requireSsl[0]}: true needs an sslProfile (TLS is the only encryption amqp-mesh offers); set sslProfile to the name of an sslProfile, or remove ${requireSsl[0]}`,
      );
    }
    const external = sasl.saslMechanisms.includes('EXTERNAL');
    if (external && profileName === undefined) {
      invalid(entity, 'saslMechanisms', 'ERR_CONFIG_CONFLICT', 'listener saslMechanisms EXTERNAL needs an sslProfile with a caCertFile (client certificates are verified against it); this listener has no sslProfile');
    }
    const rootDir = optionalString(entity, 'httpRootDir');
    // As qdrouterd: a root directory makes an http listener, http: yes or not.
    const http = booleanValue(entity, 'http') || (rootDir !== undefined && rootDir !== '');
    const websockets = booleanValue(entity, 'websockets');
    if (!http && entity.attributeLines['websockets'] !== undefined) {
      this.warn(lineOf(entity, 'websockets'), 'listener websockets has no effect without http: true (as in qdrouterd); this listener accepts plain AMQP');
    }
    const pages = http
      ? { rootDir: rootDir === undefined || rootDir === '' ? null : nodePath.resolve(nodePath.dirname(entity.file), rootDir), healthz: booleanValue(entity, 'healthz'), metrics: booleanValue(entity, 'metrics') }
      : undefined;
    const initialHandshakeTimeoutSeconds = optionalInteger(entity, 'initialHandshakeTimeoutSeconds') ?? DEFAULT_INITIAL_HANDSHAKE_TIMEOUT_SECONDS;
    this.pending.push(() => {
      const profile = profileName === undefined ? undefined : this.resolve(entity, profileName);
      if (profile !== undefined && profile.tls.cert === undefined) {
        invalid(
          entity,
          'sslProfile',
          'ERR_CONFIG_CONFLICT',
          `listener sslProfile ${quote(profileName)} (line ${profile.source.line}) has no certFile and privateKeyFile: a TLS listener presents a certificate; set both in the sslProfile`,
        );
      }
      if (external && profile !== undefined && profile.tls.ca === undefined) {
        invalid(
          entity,
          'saslMechanisms',
          'ERR_CONFIG_CONFLICT',
          `listener saslMechanisms EXTERNAL needs an sslProfile with a caCertFile (client certificates are verified against it); sslProfile ${quote(profileName)} (line ${profile.source.line}) has none`,
        );
      }
      const tls = profile?.tls ?? null;
      listener.transport = {
        tls,
        requireSsl: tls !== null && requireSsl.length > 0,
        // An https listener with authenticatePeer wants a client certificate (qdrouterd's), as EXTERNAL does.
        verifyClient: verifiesClient(tls, sasl.saslMechanisms) || (tls !== null && http && sasl.authenticatePeer),
        websockets: http && websockets,
        ...(pages !== undefined ? { http: pages } : {}),
        initialHandshakeTimeoutSeconds,
      };
    });
    return listener;
  }

  /**
   * Reads a connector's transport attributes; its `transport` is set by {@link link}.
   * @returns `connector`.
   */
  connector<T extends { transport: ConnectorTransport }>(entity: ValidatedEntity, connector: T): T {
    const profileName = this.profileName(entity);
    const verifyHostname = booleanValue(entity, 'verifyHostname');
    if (profileName === undefined && entity.attributeLines['verifyHostname'] !== undefined) {
      this.warn(lineOf(entity, 'verifyHostname'), 'connector verifyHostname has no effect without an sslProfile (as in qdrouterd); this connector connects in plain AMQP');
    }
    this.pending.push(() => {
      const profile = profileName === undefined ? undefined : this.resolve(entity, profileName);
      connector.transport = { tls: profile?.tls ?? null, verifyHostname };
    });
    return connector;
  }

  /**
   * Resolves every sslProfile name, in file order, and sets the transports.
   * @throws ConfigError at the first `sslProfile` that names no sslProfile, listing those that exist.
   */
  link(): void {
    for (const resolve of this.pending.splice(0)) resolve();
  }

  /** The sslProfile name an entity sets; `""` (as unset) and no value mean plain TCP. */
  private profileName(entity: ValidatedEntity): string | undefined {
    const name = optionalString(entity, 'sslProfile');
    return name === '' ? undefined : name;
  }

  private resolve(entity: ValidatedEntity, name: string): SslProfileEntity {
    const profile = this.profiles.get(name);
    if (profile !== undefined) return profile;
    const known = this.sslProfiles.map((p) => `${quote(p.name)} (line ${p.source.line})`);
    const choices = known.length > 0 ? `sslProfiles in this file: ${known.join(', ')}` : `this file has no sslProfile: add one (sslProfile { name: ${name} ... })`;
    throw new ConfigError('ERR_CONFIG_INVALID_VALUE', this.file, lineOf(entity, 'sslProfile'), `${entity.schema.type} sslProfile ${quote(name)} names no sslProfile; ${choices}`);
  }

  private warn(line: number, reason: string): void {
    this.warnings.push(configWarning('WARN_CONFIG_NO_EFFECT', this.file, line, reason));
  }
}

/** What a listener or connector carries until {@link TransportLinker.link} sets its transport. */
export { PLAIN_CONNECTOR, PLAIN_LISTENER };
