/**
 * qdrouterd's `sslProfile` entity, the same in router and broker files: its schema, and its
 * builder, which reads the files it names at load time so that a missing file, a bad PEM, a key
 * that does not match its certificate or a wrong password is refused with `FILE:LINE:` before
 * anything listens.
 *
 * qdrouterd 1.19's rules (src/connection_manager.c, src/server.c):
 * - `password` is `env:VAR` (the variable's value; spaces after `env:` skipped), `file:PATH` (the
 *   file's first line), `pass:TEXT` or `literal:TEXT` (TEXT), or the password itself; qdrouterd
 *   warns about a password written in clear text, so does amqp-mesh. `passwordFile` (deprecated)
 *   is the same as `file:` and is ignored when `password` is set.
 * - `protocols` lists TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 separated by spaces (proton also takes
 *   `,` and `;`), names written exactly so.
 * - `uidFormat` picks the certificate fields that make the user id of a client authenticated by
 *   its certificate: c (country), s (state), l (locality), o (organization), u (organizational
 *   unit), n (common name), and one fingerprint: 1 (SHA-1), 2 (SHA-256) or 5 (SHA-512); at most 7
 *   characters. qdrouterd checks nothing at load time: with an unknown letter the user id falls
 *   back to the certificate's subject; amqp-mesh does the same and warns. It refuses a repeated
 *   letter, a second fingerprint digit, or an empty value.
 * - `uidNameMappingFile` is a JSON map from such user ids to display names (the user).
 *
 * Where amqp-mesh differs: a relative path is resolved against the configuration file's
 * directory (qdrouterd documents absolute paths and would use its working directory), and
 * `caCertFile` must be a PEM file (proton also takes a directory of hashed certificates).
 */

import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import * as tls from 'node:tls';
import type { TlsProfile } from '../amqp/transport/settings';
import { versionsOf } from '../amqp/transport/tls-policy';

import { ConfigError, quote } from './errors';
import { attributeHelpers, entitySchema, notImplemented, type EntitySchema } from './schema';
import type { EntityCommon } from './types';
import { common, invalid, lineOf, optionalString, type ValidatedEntity } from './validate';
import { warn, type BuildContext } from './context';

/** A TLS protocol version as written in `protocols`. */
export type TlsProtocol = NonNullable<TlsProfile['protocols']>[number];

/** The protocol names qdrouterd (proton) accepts, oldest first. */
export const TLS_PROTOCOLS: readonly TlsProtocol[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** qdrouterd's uidFormat letters: certificate subject fields, then the fingerprints. */
export const UID_FORMAT_FIELDS: { readonly [letter: string]: string } = {
  c: 'country',
  s: 'state or province',
  l: 'locality',
  o: 'organization',
  u: 'organizational unit',
  n: 'common name',
  '1': 'SHA-1 fingerprint',
  '2': 'SHA-256 fingerprint',
  '5': 'SHA-512 fingerprint',
};
const UID_FINGERPRINTS = '125';
const UID_FORMAT_HELP =
  'letters from c (country), s (state), l (locality), o (organization), u (organizational unit), n (common name), ' +
  'each at most once, and at most one fingerprint: 1 (SHA-1), 2 (SHA-256) or 5 (SHA-512); e.g. "ou" or "n2"';

const { string, path } = attributeHelpers('implemented');

/** qdrouterd's `sslProfile` entity type. */
export const SSL_PROFILE_ENTITY_SCHEMA: EntitySchema = entitySchema('sslProfile', { qdrouterdType: 'org.apache.qpid.dispatch.sslProfile', implemented: true }, {
  ciphers: string(),
  protocols: string(),
  caCertFile: path({ deprecationName: 'certDb' }),
  certFile: path(),
  privateKeyFile: path({ deprecationName: 'keyFile' }),
  passwordFile: path({ deprecated: true }),
  password: string(),
  uidFormat: string(),
  uidNameMappingFile: path({ deprecationName: 'displayNameFile' }),
});

/** A validated `sslProfile`: where its files are, and the {@link TlsProfile} the transport uses (files read). */
export interface SslProfileEntity extends EntityCommon {
  type: 'sslProfile';
  /** Listeners' and connectors' `sslProfile` refer to it by this name (required). */
  name: string;
  /** Absolute paths of the files read (relative ones are resolved against the configuration file's directory). */
  certFile?: string;
  privateKeyFile?: string;
  caCertFile?: string;
  /** The loaded profile; the same object for every listener and connector that uses it. */
  tls: TlsProfile;
}

/**
 * Builds an `sslProfile`, reading its files.
 * @throws ConfigError ERR_CONFIG_REFERENCED_FILE naming the attribute and the system or OpenSSL
 *   error; ERR_CONFIG_INVALID_VALUE for bad protocols, ciphers or uidFormat.
 */
export function buildSslProfile(entity: ValidatedEntity, context: BuildContext): SslProfileEntity {
  const name = optionalString(entity, 'name');
  if (name === undefined || name === '') {
    invalid(entity, 'name', 'ERR_CONFIG_MISSING_ATTRIBUTE', 'sslProfile is missing required attribute "name"; listeners and connectors refer to an sslProfile by its name');
  }
  const certFile = resolvedPath(entity, 'certFile');
  const privateKeyFile = resolvedPath(entity, 'privateKeyFile');
  if ((certFile === undefined) !== (privateKeyFile === undefined)) {
    const [set, missing] = certFile !== undefined ? ['certFile', 'privateKeyFile'] : ['privateKeyFile', 'certFile'];
    invalid(entity, set, 'ERR_CONFIG_MISSING_ATTRIBUTE', `sslProfile ${quote(name)} has ${set} but no ${missing}: a certificate is presented with its private key; set both, or neither for a profile that only verifies peers`);
  }
  const caCertFile = resolvedPath(entity, 'caCertFile');

  const cert = certFile !== undefined ? certificates(entity, 'certFile', certFile) : undefined;
  const ca = caCertFile !== undefined ? certificates(entity, 'caCertFile', caCertFile).pem : undefined;
  const passphrase = resolvePassword(entity, context);
  let key: Buffer | undefined;
  if (cert !== undefined && privateKeyFile !== undefined) {
    const loaded = privateKey(entity, privateKeyFile, passphrase);
    if (!cert.first.checkPrivateKey(loaded.object)) {
      invalid(entity, 'privateKeyFile', 'ERR_CONFIG_CONFLICT', `sslProfile privateKeyFile ${shown(privateKeyFile)} is not the private key of the certificate in certFile ${shown(certFile!)}`);
    }
    key = loaded.pem;
  }
  const protocols = readProtocols(entity, context);
  const ciphers = readCiphers(entity);
  const uidFormat = readUidFormat(entity, context);
  const uidNames = readUidNames(entity);
  const profile: TlsProfile = {
    name,
    ...(cert !== undefined ? { cert: cert.pem } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(passphrase !== undefined ? { passphrase } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(ciphers !== undefined ? { ciphers } : {}),
    ...(protocols !== undefined ? { protocols } : {}),
    ...(uidFormat !== undefined ? { uidFormat } : {}),
    ...(uidNames !== undefined ? { uidNames } : {}),
    source: `${entity.file}:${entity.line}`,
  };
  return {
    type: 'sslProfile',
    ...common(entity),
    name,
    ...(certFile !== undefined ? { certFile } : {}),
    ...(privateKeyFile !== undefined ? { privateKeyFile } : {}),
    ...(caCertFile !== undefined ? { caCertFile } : {}),
    tls: profile,
  };
}

function resolvedPath(entity: ValidatedEntity, attribute: string): string | undefined {
  const written = optionalString(entity, attribute);
  if (written === undefined) return undefined;
  if (written.trim() === '') invalid(entity, attribute, 'ERR_CONFIG_INVALID_VALUE', `sslProfile ${attribute} is empty; expected the path of a PEM file`);
  return nodePath.resolve(nodePath.dirname(entity.file), written);
}

function readFile(entity: ValidatedEntity, attribute: string, file: string, what = `sslProfile ${attribute} ${shown(file)}`): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new ConfigError('ERR_CONFIG_REFERENCED_FILE', entity.file, lineOf(entity, attribute), `${what} cannot be read: ${(error as Error).message}`, { cause: error });
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** The PEM certificates of a file, each parsed; refused when there are none or one is not a certificate. */
function certificates(entity: ValidatedEntity, attribute: string, file: string): { pem: Buffer; first: X509Certificate } {
  const text = readFile(entity, attribute, file).toString('latin1');
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  const bad = (reason: string): never => {
    throw new ConfigError('ERR_CONFIG_REFERENCED_FILE', entity.file, lineOf(entity, attribute), `sslProfile ${attribute} ${shown(file)} ${reason}`);
  };
  if (blocks.length === 0) bad('holds no PEM certificate ("-----BEGIN CERTIFICATE-----"); expected PEM certificates');
  const parsed = blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      return bad(`holds a bad PEM certificate (certificate ${index + 1} of ${blocks.length}): ${(error as Error).message}`);
    }
  });
  return { pem: Buffer.from(blocks.join('\n') + '\n', 'latin1'), first: parsed[0]! };
}

/** PKCS#8 encrypted keys, and traditional (OpenSSL) ones with a Proc-Type header. */
const ENCRYPTED_PEM_KEY = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4,ENCRYPTED/;

function privateKey(entity: ValidatedEntity, file: string, passphrase: string | undefined): { pem: Buffer; object: KeyObject } {
  const pem = readFile(entity, 'privateKeyFile', file);
  if (passphrase === undefined && ENCRYPTED_PEM_KEY.test(pem.toString('latin1'))) {
    invalid(entity, 'privateKeyFile', 'ERR_CONFIG_REFERENCED_FILE', `sslProfile privateKeyFile ${shown(file)} is encrypted and the sslProfile has no password; set password (env:VAR, file:PATH or pass:TEXT)`);
  }
  try {
    return { pem, object: createPrivateKey({ key: pem, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) }) };
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    if (passphrase !== undefined && code === 'ERR_OSSL_BAD_DECRYPT') {
      const attribute = entity.values.has('password') ? 'password' : 'passwordFile';
      invalid(entity, attribute, 'ERR_CONFIG_REFERENCED_FILE', `sslProfile ${attribute} does not decrypt privateKeyFile ${shown(file)}: ${message}`);
    }
    return invalid(entity, 'privateKeyFile', 'ERR_CONFIG_REFERENCED_FILE', `sslProfile privateKeyFile ${shown(file)} is not a usable PEM private key: ${message}`);
  }
}

/** A path in a message, whole (quote() shortens long values). */
function shown(file: string): string {
  return JSON.stringify(file);
}

/** qdrouterd's password forms; undefined when neither password nor passwordFile is set. Never repeats the password. */
function resolvePassword(entity: ValidatedEntity, context: BuildContext): string | undefined {
  const written = optionalString(entity, 'password');
  const passwordFile = resolvedPath(entity, 'passwordFile');
  if (written === undefined) return passwordFile === undefined ? undefined : firstLine(entity, 'passwordFile', passwordFile);
  if (passwordFile !== undefined) {
    warn(context, 'WARN_CONFIG_NO_EFFECT', lineOf(entity, 'passwordFile'), 'sslProfile passwordFile is ignored because password is set (as in qdrouterd)');
  }
  if (written.startsWith('env:')) {
    const variable = written.slice(4).replace(/^ +/, '');
    const value = variable === '' ? undefined : process.env[variable];
    if (value === undefined) {
      invalid(entity, 'password', 'ERR_CONFIG_INVALID_VALUE', `sslProfile password ${quote(written)}: ${variable === '' ? 'no environment variable is named' : `environment variable ${variable} is not set`}`);
    }
    return value;
  }
  if (written.startsWith('file:')) {
    return firstLine(entity, 'password', nodePath.resolve(nodePath.dirname(entity.file), written.slice(5)));
  }
  warn(
    context,
    'WARN_CONFIG_INSECURE',
    lineOf(entity, 'password'),
    'sslProfile password is written in clear text in the configuration (qdrouterd warns too); use env:VARIABLE or file:PATH',
  );
  for (const prefix of ['pass:', 'literal:']) if (written.startsWith(prefix)) return written.slice(prefix.length);
  return written;
}

/** A password file's first line, as qdrouterd reads it. */
function firstLine(entity: ValidatedEntity, attribute: string, file: string): string {
  const text = readFile(entity, attribute, file, `sslProfile ${attribute} file ${shown(file)}`).toString('utf8');
  return text.split('\n')[0]!.replace(/\r$/, '');
}

/**
 * `protocols`: TLS versions, any subset (a gap is left out of the negotiable range, as OpenSSL
 * does for Proton). A name that is no TLS version is accepted with a warning and allows nothing,
 * as in qdrouterd (the router starts; TLS connections using the profile fail): the list is [].
 * None written: the system's (see {@link systemProtocols}).
 */
function readProtocols(entity: ValidatedEntity, context: BuildContext): TlsProtocol[] | undefined {
  const written = optionalString(entity, 'protocols');
  if (written === undefined) return systemProtocols(entity, context);
  const help = `expected a space-separated list of ${TLS_PROTOCOLS.join(', ')} (e.g. "TLSv1.2 TLSv1.3")`;
  const names = written.split(/[ \t,;]+/).filter((name) => name !== '');
  if (names.length === 0) invalid(entity, 'protocols', 'ERR_CONFIG_INVALID_VALUE', `sslProfile protocols is empty; ${help}`);
  const indexes = new Set<number>();
  for (const name of names) {
    const index = TLS_PROTOCOLS.indexOf(name as TlsProtocol);
    if (index === -1) {
      warn(context, 'WARN_CONFIG_NO_EFFECT', lineOf(entity, 'protocols'),
        `sslProfile protocols ${quote(written)}: ${quote(name)} is not a TLS protocol (${help}); as in qdrouterd, TLS connections using this profile will fail`);
      return [];
    }
    indexes.add(index);
  }
  return [...indexes].sort((a, b) => a - b).map((index) => TLS_PROTOCOLS[index]!);
}

/**
 * No `protocols`: what the system's OpenSSL policy allows, as qdrouterd gets from its libssl
 * (ADR 0013). Said when that includes TLS 1.0 or 1.1; Node's own defaults (TLS 1.2 up) when there
 * is no openssl.cnf to follow.
 */
function systemProtocols(entity: ValidatedEntity, context: BuildContext): TlsProtocol[] | undefined {
  const policy = context.systemTlsPolicy();
  if (policy === null) return undefined;
  const versions = versionsOf(policy);
  const old = versions.filter((v) => v === 'TLSv1' || v === 'TLSv1.1');
  if (old.length > 0) {
    warn(context, 'WARN_CONFIG_INSECURE', entity.line,
      `sslProfile ${quote(optionalString(entity, 'name') ?? '')} has no protocols, so it allows what the system's OpenSSL policy does (${policy.source}), as qdrouterd does: ` +
      `${versions.join(', ')}, including ${old.join(' and ')}, deprecated by RFC 8996; set protocols: TLSv1.2 TLSv1.3 to refuse them`);
  }
  return versions;
}

/** `ciphers`: an OpenSSL cipher list that selects at least one cipher. */
function readCiphers(entity: ValidatedEntity): string | undefined {
  const ciphers = optionalString(entity, 'ciphers');
  if (ciphers === undefined) return undefined;
  try {
    tls.createSecureContext({ ciphers });
  } catch (error) {
    invalid(
      entity,
      'ciphers',
      'ERR_CONFIG_INVALID_VALUE',
      `sslProfile ciphers ${quote(ciphers)} is not usable: ${(error as Error).message}; expected an OpenSSL cipher list such as "ECDHE+AESGCM:!aNULL" (see openssl ciphers -v)`,
    );
  }
  return ciphers;
}

/** Most display names a uidNameMappingFile may hold. */
const MAX_UID_NAMES = 100_000;

/** `uidNameMappingFile`: a JSON object from user id to display name, read now. */
function readUidNames(entity: ValidatedEntity): ReadonlyMap<string, string> | undefined {
  const file = resolvedPath(entity, 'uidNameMappingFile');
  if (file === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    invalid(entity, 'uidNameMappingFile', 'ERR_CONFIG_REFERENCED_FILE', `sslProfile uidNameMappingFile ${shown(file)} cannot be read as JSON: ${(e as Error).message}`);
  }
  const entries = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? Object.entries(parsed) : null;
  if (entries === null || entries.some(([, v]) => typeof v !== 'string') || entries.length > MAX_UID_NAMES) {
    invalid(entity, 'uidNameMappingFile', 'ERR_CONFIG_REFERENCED_FILE', `sslProfile uidNameMappingFile ${shown(file)} must hold one JSON object of at most ${MAX_UID_NAMES} "user id": "display name" strings`);
  }
  return new Map(entries as [string, string][]);
}

/** `uidFormat`: qdrouterd's letters, each at most once, at most one fingerprint; an unknown letter is warned about. */
function readUidFormat(entity: ValidatedEntity, context: BuildContext): string | undefined {
  const written = optionalString(entity, 'uidFormat');
  if (written === undefined) return undefined;
  const refuse = (what: string): never => invalid(entity, 'uidFormat', 'ERR_CONFIG_INVALID_VALUE', `sslProfile uidFormat ${quote(written)} ${what}; expected ${UID_FORMAT_HELP}`);
  if (written === '') refuse('is empty');
  const unknown = [...written].filter((letter) => !Object.prototype.hasOwnProperty.call(UID_FORMAT_FIELDS, letter));
  if (unknown.length > 0) {
    warn(context, 'WARN_CONFIG_NO_EFFECT', lineOf(entity, 'uidFormat'),
      `sslProfile uidFormat ${quote(written)} has ${unknown.map(quote).join(', ')}, not certificate fields: user ids are the certificate's subject instead, as qdrouterd's are; expected ${UID_FORMAT_HELP}`);
    return written;
  }
  const seen = new Set<string>();
  for (const letter of written) {
    if (seen.has(letter)) refuse(`has ${quote(letter)} twice`);
    seen.add(letter);
  }
  const fingerprints = [...written].filter((letter) => UID_FINGERPRINTS.includes(letter));
  if (fingerprints.length > 1) refuse(`has ${fingerprints.length} fingerprints (${fingerprints.join(', ')}); the user id holds one`);
  return written;
}
