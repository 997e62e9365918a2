// TLS profile mapping and the user id a client certificate gives (qdrouterd's uidFormat): pure, no sockets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants } from 'node:crypto';
import { computeUid, secureContextOptions } from '../../amqp/transport/tls';

const fakeDigest = (alg: string, data: Buffer): string => `${alg}(${data.toString('hex')})`;
const cert = {
  subject: { C: 'US', ST: 'NC', L: 'Raleigh', O: 'Red Hat', OU: 'Messaging', CN: 'device-7' },
  raw: Buffer.from([0xde, 0xad]),
};

test('uidFormat letters pick fields in the given order, joined with ";"', () => {
  assert.is(computeUid(cert, 'n', fakeDigest), 'device-7');
  assert.is(computeUid(cert, 'ou', fakeDigest), 'Red Hat;Messaging');
  assert.is(computeUid(cert, 'csl', fakeDigest), 'US;NC;Raleigh');
  assert.is(computeUid(cert, 'un', fakeDigest), 'Messaging;device-7');
});

test('uidFormat digits are fingerprints of the whole certificate', () => {
  assert.is(computeUid(cert, '1', fakeDigest), 'sha1(dead)');
  assert.is(computeUid(cert, 'o2', fakeDigest), 'Red Hat;sha256(dead)');
  assert.is(computeUid(cert, '5', fakeDigest), 'sha512(dead)');
});

test('absent fields are skipped; nothing at all gives null', () => {
  const bare = { subject: { CN: 'x' } };
  assert.is(computeUid(bare, 'ocn', fakeDigest), 'x');
  assert.is(computeUid(bare, 'o', fakeDigest), null);
  assert.is(computeUid({}, undefined, fakeDigest), null);
});

test('without uidFormat, or with a letter that is no field, the uid is the subject as proton gives it (RFC 2253, last field first)', () => {
  assert.is(computeUid(cert, undefined, fakeDigest), 'C=US,ST=NC,L=Raleigh,OU=Messaging,O=Red Hat,CN=device-7');
  const inOrder = { ...cert, subjectText: 'CN=device-7\nO=Red Hat\nOU=Messaging\nC=US' };
  assert.is(computeUid(inOrder, undefined, fakeDigest), 'C=US,OU=Messaging,O=Red Hat,CN=device-7');
  assert.is(computeUid(inOrder, '1x', fakeDigest), 'C=US,OU=Messaging,O=Red Hat,CN=device-7');
  assert.is(computeUid(inOrder, 'n', fakeDigest, new Map([['device-7', 'seven']])), 'seven', 'uidNameMappingFile maps the id to a display name');
  // A repeated attribute (two OUs) takes the first.
  assert.is(computeUid({ subject: { CN: 'a', OU: ['one', 'two'] } }, 'u', fakeDigest), 'one');
});

test('protocols become a version range; other fields pass through', () => {
  const o = secureContextOptions({ name: 'p', protocols: ['TLSv1.3', 'TLSv1.2'], ciphers: 'HIGH', passphrase: 's', cert: Buffer.from('c') });
  assert.is(o.minVersion, 'TLSv1.2');
  assert.is(o.maxVersion, 'TLSv1.3');
  assert.is(o.ciphers, 'HIGH');
  assert.is(o.passphrase, 's');
  assert.equal(o.cert, Buffer.from('c'));
  const none = secureContextOptions({ name: 'q' });
  assert.is(none.minVersion, undefined);
  assert.is(none.secureOptions, undefined);
});

test('protocols with a gap switch off the versions between; none listed switches off all', () => {
  const gap = secureContextOptions({ name: 'g', protocols: ['TLSv1', 'TLSv1.2'] });
  assert.equal([gap.minVersion, gap.maxVersion], ['TLSv1', 'TLSv1.2']);
  assert.is(gap.secureOptions, constants.SSL_OP_NO_TLSv1_1);
  // Listing TLS 1.0 or 1.1 lowers OpenSSL's security level so they can be negotiated.
  assert.is(gap.ciphers, 'DEFAULT:@SECLEVEL=0');
  assert.is(secureContextOptions({ name: 'h', protocols: ['TLSv1.2'], ciphers: 'HIGH' }).ciphers, 'HIGH');
  const off = secureContextOptions({ name: 'x', protocols: [] });
  assert.is(off.secureOptions, constants.SSL_OP_NO_TLSv1 | constants.SSL_OP_NO_TLSv1_1 | constants.SSL_OP_NO_TLSv1_2 | constants.SSL_OP_NO_TLSv1_3);
});

test.run();
