/**
 * TLS for listeners and connectors from a qdrouterd `sslProfile`: secure contexts, and the user
 * id a client certificate gives (uidFormat). The uid rule is pure and unit-tested.
 */
import { constants } from 'node:crypto';
import * as tls from 'node:tls';
import type { TlsProfile } from './settings';

const VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
const NO_VERSION = [constants.SSL_OP_NO_TLSv1, constants.SSL_OP_NO_TLSv1_1, constants.SSL_OP_NO_TLSv1_2, constants.SSL_OP_NO_TLSv1_3];

/** Node's options for a profile: certificate, key, CA, ciphers, protocol range. */
export function secureContextOptions(p: TlsProfile): tls.SecureContextOptions {
  const o: tls.SecureContextOptions = {};
  if (p.cert) o.cert = p.cert;
  if (p.key) o.key = p.key;
  if (p.passphrase !== undefined) o.passphrase = p.passphrase;
  if (p.ca) o.ca = p.ca;
  if (p.ciphers) o.ciphers = p.ciphers;
  if (p.protocols) {
    // The range from the lowest to the highest listed; versions inside it but not listed are
    // switched off one by one. None listed (an unknown name in the profile): every version off.
    const idx = p.protocols.map((v) => VERSIONS.indexOf(v)).sort((a, b) => a - b);
    if (idx.length > 0) {
      o.minVersion = VERSIONS[idx[0]];
      o.maxVersion = VERSIONS[idx[idx.length - 1]];
    }
    let off = 0;
    for (let i = 0; i < VERSIONS.length; i++) if (!idx.includes(i) && (idx.length === 0 || (i > idx[0] && i < idx[idx.length - 1]))) off |= NO_VERSION[i];
    if (off !== 0) o.secureOptions = off;
    // OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level; a profile that lists
    // them asks for them, as it does of qdrouterd.
    if (idx.length > 0 && idx[0] < 2) o.ciphers = `${o.ciphers ?? 'DEFAULT'}:@SECLEVEL=0`;
  }
  return o;
}

/** The parts of a peer certificate the uid is built from. */
export interface CertificateFacts {
  subject?: Partial<Record<'C' | 'ST' | 'L' | 'O' | 'OU' | 'CN', string | string[]>>;
  /** DER bytes of the certificate (for the fingerprints). */
  raw?: Buffer;
  /** The subject's fields in certificate order, one `K=V` per line (node's X509Certificate.subject). */
  subjectText?: string;
}

const FIELD: Record<string, 'C' | 'ST' | 'L' | 'O' | 'OU' | 'CN'> = { c: 'C', s: 'ST', l: 'L', o: 'O', u: 'OU', n: 'CN' };
const DIGEST: Record<string, string> = { 1: 'sha1', 2: 'sha256', 5: 'sha512' };

/**
 * qdrouterd's uidFormat: each letter picks a certificate field (c country, s state, l locality,
 * o organization, u organizational unit, n common name; 1, 2, 5 the SHA-1/256/512 fingerprint of
 * the whole certificate, lower-case hex), joined with `;`, absent fields skipped. Without a
 * format, or with a letter that is none of those, the uid is the subject as proton gives it
 * (RFC 2253: the certificate's fields last first, `C=..,ST=..,CN=..`). A uid found in `names`
 * (uidNameMappingFile) becomes that display name. Null when nothing could be taken.
 */
export function computeUid(cert: CertificateFacts, uidFormat: string | undefined, digest: (alg: string, data: Buffer) => string, names?: ReadonlyMap<string, string>): string | null {
  const uid = computeRawUid(cert, uidFormat, digest);
  return uid !== null ? names?.get(uid) ?? uid : null;
}

function computeRawUid(cert: CertificateFacts, uidFormat: string | undefined, digest: (alg: string, data: Buffer) => string): string | null {
  const subject = cert.subject ?? {};
  const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
  if (!uidFormat || [...uidFormat].some((ch) => FIELD[ch] === undefined && DIGEST[ch] === undefined)) {
    if (cert.subjectText !== undefined) {
      const rdns = cert.subjectText.split('\n').filter((l) => l !== '');
      return rdns.length ? rdns.reverse().join(',') : null;
    }
    const parts = (['C', 'ST', 'L', 'OU', 'O', 'CN'] as const).filter((k) => one(subject[k]) !== undefined).map((k) => `${k}=${one(subject[k])}`);
    return parts.length ? parts.join(',') : null;
  }
  const parts: string[] = [];
  for (const ch of uidFormat) {
    const field = FIELD[ch];
    if (field) {
      const v = one(subject[field]);
      if (v !== undefined && v !== '') parts.push(v);
    } else if (DIGEST[ch] && cert.raw) {
      parts.push(digest(DIGEST[ch], cert.raw));
    }
  }
  return parts.length ? parts.join(';') : null;
}
