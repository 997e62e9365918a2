/**
 * The system OpenSSL policy an sslProfile without `protocols` follows (ADR 0013): openssl.cnf's
 * openssl_conf -> ssl_conf -> system_default MinProtocol/MaxProtocol, with includes, in the forms
 * Debian, RHEL's crypto-policies and OpenSSL's own documentation write. Files are a map here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { computeSystemTlsPolicy, versionsOf, type ConfReader } from '../../amqp/transport/tls-policy';

function files(map: Record<string, string>, dirs: Record<string, string[]> = {}): ConfReader {
  return { read: (p) => map[p], list: (p) => dirs[p] };
}

test('Debian 12 as shipped: no MinProtocol, so OpenSSL\'s own range, TLS 1.0 to 1.3', () => {
  const conf = 'HOME = .\nopenssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n[provider_sect]\ndefault = default_sect\n[default_sect]\n# activate = 1\n';
  const p = computeSystemTlsPolicy('/etc/ssl/openssl.cnf', files({ '/etc/ssl/openssl.cnf': conf }))!;
  assert.equal([p.min, p.max], ['TLSv1', 'TLSv1.3']);
  assert.is(p.source, '/etc/ssl/openssl.cnf (no MinProtocol or MaxProtocol)');
  assert.equal(versionsOf(p), ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']);
});

test('RHEL crypto-policies: the section is filled by an include inside it', () => {
  const conf = 'openssl_conf = default_modules\n\n[ default_modules ]\nssl_conf = ssl_module\n\n[ ssl_module ]\nsystem_default = crypto_policy\n\n' +
    '[ crypto_policy ]\n.include = /etc/crypto-policies/back-ends/opensslcnf.config\n';
  const policy = 'CipherString = @SECLEVEL=2:kEECDH:kRSA\nCiphersuites = TLS_AES_256_GCM_SHA384\nTLS.MinProtocol = TLSv1.2\nMinProtocol = TLSv1.2\nMaxProtocol = TLSv1.3\n';
  const p = computeSystemTlsPolicy('/etc/pki/tls/openssl.cnf', files({ '/etc/pki/tls/openssl.cnf': conf, '/etc/crypto-policies/back-ends/opensslcnf.config': policy }))!;
  assert.equal(versionsOf(p), ['TLSv1.2', 'TLSv1.3']);
  assert.is(p.source, 'MinProtocol TLSv1.2 in /etc/crypto-policies/back-ends/opensslcnf.config, MaxProtocol TLSv1.3 in /etc/crypto-policies/back-ends/opensslcnf.config');
});

test('Debian 10\'s old form, quotes, comments, a later value winning, SSLv3 as the floor, a directory include', () => {
  const conf = 'openssl_conf = "default_conf"  # the app section\n[default_conf]\nssl_conf = ssl_sect\n[ssl_sect]\nsystem_default = system_default_sect\n' +
    '[system_default_sect]\nMinProtocol = TLSv1.2\nMinProtocol = SSLv3\nCipherString = DEFAULT@SECLEVEL=2\n.include /etc/ssl/conf.d\n';
  const reader = files(
    { '/etc/ssl/openssl.cnf': conf, '/etc/ssl/conf.d/10-max.cnf': 'MaxProtocol = TLSv1.2\n', '/etc/ssl/conf.d/README': 'MaxProtocol = TLSv1\n' },
    { '/etc/ssl/conf.d': ['10-max.cnf', 'README'] },
  );
  const p = computeSystemTlsPolicy('/etc/ssl/openssl.cnf', reader)!;
  assert.equal(versionsOf(p), ['TLSv1', 'TLSv1.1', 'TLSv1.2'], 'SSLv3 means TLS 1.0 here (SSL 3 is never offered); only .cnf/.conf files of a directory are read');
});

test('relative includes from the including file\'s directory; a MaxProtocol below the MinProtocol allows the MinProtocol only', () => {
  const conf = 'openssl_conf = a\n[a]\nssl_conf = b\n[b]\nsystem_default = c\n[c]\n.include policy.cnf\n';
  const p = computeSystemTlsPolicy('/opt/ssl/openssl.cnf', files({ '/opt/ssl/openssl.cnf': conf, '/opt/ssl/policy.cnf': 'MinProtocol = TLSv1.3\nMaxProtocol = TLSv1.2\n' }))!;
  assert.equal(versionsOf(p), ['TLSv1.3']);
});

test('limits: includes nested past 8, or over 1 MiB in all, make no policy (the caller keeps Node\'s defaults); no file: no policy', () => {
  const conf = 'openssl_conf = a\n[a]\nssl_conf = b\n[b]\nsystem_default = c\n[c]\nMinProtocol = TLSv1.2\n.include /loop.cnf\n';
  let reads = 0;
  const loop: ConfReader = { read: (p) => (p === '/loop.cnf' ? (reads++, conf) : undefined), list: () => undefined };
  assert.is(computeSystemTlsPolicy('/loop.cnf', loop), null, 'a file that includes itself');
  assert.ok(reads <= 10, `read ${reads} times`);
  const big = 'openssl_conf = a\n[a]\nssl_conf = b\n[b]\nsystem_default = c\n[c]\n.include /big.cnf\n';
  const padding = '# ' + 'x'.repeat(1 << 20) + '\nMinProtocol = TLSv1.2\n';
  assert.is(computeSystemTlsPolicy('/etc/ssl/openssl.cnf', files({ '/etc/ssl/openssl.cnf': big, '/big.cnf': padding })), null, 'an include past 1 MiB');
  const fits = computeSystemTlsPolicy('/etc/ssl/openssl.cnf', files({ '/etc/ssl/openssl.cnf': big, '/big.cnf': '# small\nMinProtocol = TLSv1.2\n' }))!;
  assert.equal(versionsOf(fits), ['TLSv1.2', 'TLSv1.3'], 'the same policy under the limit');
  assert.is(computeSystemTlsPolicy('/nowhere.cnf', files({})), null);
});

test.run();
