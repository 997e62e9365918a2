/**
 * SASL SCRAM-SHA-256 and SCRAM-SHA-1 (RFC 5802, RFC 7677), the server side, and the stored
 * credentials both it and PLAIN verify against: PBKDF2-salted keys, never the password. Pure but
 * for the key derivation (node's crypto); the engine feeds it the client's messages.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/** The SCRAM mechanisms and their hashes. */
export const SCRAM_MECHANISMS = { 'SCRAM-SHA-256': 'sha256', 'SCRAM-SHA-1': 'sha1' } as const;
export type ScramMechanism = keyof typeof SCRAM_MECHANISMS;
export type ScramHash = (typeof SCRAM_MECHANISMS)[ScramMechanism];

/** What a server keeps of a password for one hash (RFC 5802's StoredKey and ServerKey). */
export interface ScramKeys {
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

/** A user's stored credentials: one salt and iteration count, the keys for each hash. */
export interface StoredCredentials {
  readonly salt: Buffer;
  readonly iterations: number;
  readonly sha256: ScramKeys;
  readonly sha1: ScramKeys;
}

/** Who may authenticate with a password (PLAIN) or prove one (SCRAM): the application's users. */
export interface SaslUsers {
  checkPassword(user: string, password: string): boolean;
  /** The user's SCRAM credentials, or undefined for an unknown user. */
  credentials(user: string): StoredCredentials | undefined;
}

/** The iteration count new credentials get (RFC 7677's minimum for SCRAM-SHA-256). */
export const DEFAULT_ITERATIONS = 4096;
/** Fewest and most iterations a stored credential may name (a file cannot make us spin). */
export const MIN_ITERATIONS = 4096;
export const MAX_ITERATIONS = 1_000_000;

const hmac = (hash: ScramHash, key: Buffer, text: string): Buffer => createHmac(hash, key).update(text, 'utf8').digest();
const digest = (hash: ScramHash, data: Buffer): Buffer => createHash(hash).update(data).digest();
const keyLength = (hash: ScramHash): number => (hash === 'sha256' ? 32 : 20);

function saltedPassword(hash: ScramHash, password: string, salt: Buffer, iterations: number): Buffer {
  // RFC 5802 Hi() is PBKDF2 with the HMAC of the hash; SASLprep is left out (passwords as given).
  return pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, keyLength(hash), hash);
}

/** The keys of a password for one hash. */
export function computeScramKeys(hash: ScramHash, password: string, salt: Buffer, iterations: number): ScramKeys {
  const salted = saltedPassword(hash, password, salt, iterations);
  return { storedKey: digest(hash, hmac(hash, salted, 'Client Key')), serverKey: hmac(hash, salted, 'Server Key') };
}

/** New credentials for a password (a random salt). */
export function computeCredentials(password: string, iterations = DEFAULT_ITERATIONS, salt = randomBytes(16)): StoredCredentials {
  return { salt, iterations, sha256: computeScramKeys('sha256', password, salt, iterations), sha1: computeScramKeys('sha1', password, salt, iterations) };
}

/** Whether a password matches stored credentials (SASL PLAIN), in constant time. */
export function verifyPassword(c: StoredCredentials, password: string): boolean {
  const k = computeScramKeys('sha256', password, c.salt, c.iterations);
  return timingSafeEqual(k.storedKey, c.sha256.storedKey);
}

/** A SCRAM exchange that cannot go on, with why (logged, never sent: the client gets `auth`). */
export class ScramError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ScramError';
  }
}

/** Longest client message accepted (RFC 5802 messages are short; a user name is at most this too). */
export const MAX_SCRAM_MESSAGE = 4096;

/** `a=b` attributes of a SCRAM message, in order. */
function attributes(msg: string): [string, string][] {
  return msg.split(',').map((part) => {
    if (part.length < 2 || part[1] !== '=') throw new ScramError(`malformed attribute ${JSON.stringify(part.slice(0, 32))}`);
    return [part[0], part.slice(2)];
  });
}

/** RFC 5802 saslname: `=2C` is `,` and `=3D` is `=`; any other `=` is malformed. */
function decodeSaslName(s: string): string {
  if (/=(?!2C|3D)/.test(s)) throw new ScramError('malformed user name');
  return s.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/**
 * One server-side SCRAM exchange: client-first -> server-first (a challenge), client-final ->
 * server-final (the outcome's additional data) or a refusal. An unknown user gets a made-up
 * salt, so a client cannot tell unknown users from wrong passwords.
 */
export class ScramServer {
  private step: 'first' | 'final' | 'done' = 'first';
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  private gs2Header = '';
  private keys: ScramKeys | null = null;
  /** The authenticated user, once the exchange succeeded. */
  user: string | null = null;
  /** The user the client claims (known after its first message). */
  claimed: string | null = null;

  constructor(
    readonly mechanism: ScramMechanism,
    private readonly lookup: (user: string) => StoredCredentials | undefined,
    private readonly serverNonce = randomBytes(18).toString('base64'),
    private readonly fakeSalt = randomBytes(16),
  ) {}

  private get hash(): ScramHash {
    return SCRAM_MECHANISMS[this.mechanism];
  }

  /** The client's first message (the sasl-init's initial response); the server-first message. */
  onClientFirst(message: Buffer | null): Buffer {
    if (this.step !== 'first') throw new ScramError('client-first out of order');
    if (message === null || message.length === 0) throw new ScramError('no client-first message');
    if (message.length > MAX_SCRAM_MESSAGE) throw new ScramError(`client-first message of ${message.length} bytes`);
    const text = message.toString('utf8');
    // gs2-header: n or y (no channel binding; p= is refused), an optional authzid, then the bare message.
    const m = /^([ny]),(a=[^,]*)?,(.*)$/s.exec(text);
    if (!m) throw new ScramError(text.startsWith('p=') ? 'channel binding is not supported' : 'malformed gs2 header');
    this.gs2Header = `${m[1]},${m[2] ?? ''},`;
    this.clientFirstBare = m[3];
    const attrs = attributes(this.clientFirstBare);
    if (attrs[0]?.[0] === 'm') throw new ScramError('mandatory extension not supported');
    if (attrs[0]?.[0] !== 'n' || attrs[1]?.[0] !== 'r' || attrs[1][1] === '') throw new ScramError('client-first needs n= and r=');
    this.claimed = decodeSaslName(attrs[0][1]);
    if (m[2] !== undefined && decodeSaslName(m[2].slice(2)) !== this.claimed && m[2] !== 'a=') throw new ScramError('authorization identity differs from the user');
    const creds = this.lookup(this.claimed);
    this.keys = creds ? creds[this.hash] : null;
    const salt = creds ? creds.salt : this.fakeSalt;
    const iterations = creds ? creds.iterations : DEFAULT_ITERATIONS;
    this.nonce = attrs[1][1] + this.serverNonce;
    this.serverFirst = `r=${this.nonce},s=${salt.toString('base64')},i=${iterations}`;
    this.step = 'final';
    return Buffer.from(this.serverFirst, 'utf8');
  }

  /** The client's final message (a sasl-response); the server-final message when the proof holds. */
  onClientFinal(message: Buffer): Buffer {
    if (this.step !== 'final') throw new ScramError('client-final out of order');
    this.step = 'done';
    if (message.length > MAX_SCRAM_MESSAGE) throw new ScramError(`client-final message of ${message.length} bytes`);
    const text = message.toString('utf8');
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) throw new ScramError('client-final has no proof');
    const withoutProof = text.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    const c = attrs.find(([k]) => k === 'c')?.[1];
    const r = attrs.find(([k]) => k === 'r')?.[1];
    if (c !== Buffer.from(this.gs2Header, 'utf8').toString('base64')) throw new ScramError('channel binding data differs from the gs2 header');
    if (r !== this.nonce) throw new ScramError('nonce differs from the server\'s');
    const proof = Buffer.from(text.slice(proofAt + 3), 'base64');
    const hash = this.hash;
    if (this.keys === null) throw new ScramError('unknown user');
    if (proof.length !== keyLength(hash)) throw new ScramError('proof has the wrong length');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const signature = hmac(hash, this.keys.storedKey, authMessage);
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i] ^ signature[i];
    if (!timingSafeEqual(digest(hash, clientKey), this.keys.storedKey)) throw new ScramError('wrong password');
    this.user = this.claimed;
    return Buffer.from(`v=${hmac(hash, this.keys.serverKey, authMessage).toString('base64')}`, 'utf8');
  }
}

/**
 * The client side (tests and tools; the router's connectors authenticate with PLAIN or EXTERNAL):
 * the client-first message, then the client-final for a server-first, then a check of the server's
 * signature.
 */
export class ScramClient {
  private clientFirstBare: string;
  private authMessage = '';
  private salted: Buffer | null = null;

  constructor(readonly mechanism: ScramMechanism, readonly user: string, private readonly password: string, private readonly nonce = randomBytes(18).toString('base64')) {
    this.clientFirstBare = `n=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${nonce}`;
  }

  first(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`, 'utf8');
  }

  final(serverFirst: Buffer): Buffer {
    const hash = SCRAM_MECHANISMS[this.mechanism];
    const text = serverFirst.toString('utf8');
    const a = Object.fromEntries(attributes(text));
    if (!a.r?.startsWith(this.nonce)) throw new ScramError('server nonce does not extend ours');
    this.salted = saltedPassword(hash, this.password, Buffer.from(a.s ?? '', 'base64'), Number(a.i));
    const withoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${a.r}`;
    this.authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const clientKey = hmac(hash, this.salted, 'Client Key');
    const signature = hmac(hash, digest(hash, clientKey), this.authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i] ^ signature[i];
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Whether the server proved it knows the credentials (its `v=`). */
  verify(serverFinal: Buffer): boolean {
    const hash = SCRAM_MECHANISMS[this.mechanism];
    const expected = hmac(hash, hmac(hash, this.salted!, 'Server Key'), this.authMessage).toString('base64');
    return serverFinal.toString('utf8') === `v=${expected}`;
  }
}
