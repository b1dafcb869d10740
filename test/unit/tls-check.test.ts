import t from 'tap';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPair } from '../../src/transport/tls.js';
import { loadConfig } from '../../src/config.js';
import { devCert } from '../helpers/tls.js';

/** What the node checks in a certificate and key before uWS is given them (src/transport/tls.ts). */

const dir = mkdtempSync(join(tmpdir(), 'parley-tls-check-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const a = devCert(dir, 'a');
const b = devCert(dir, 'b');
const certA = readFileSync(a.cert, 'utf8');
const keyA = readFileSync(a.key);
const ca = a.ca.toString('utf8');
const leaf = new X509Certificate(certA);
const during = Date.parse(leaf.validFrom) + 1000;

t.test('a good pair: what the node logs about it', async (t) => {
  const info = checkPair(certA, keyA, undefined, during);
  t.equal(info.serial, a.serial);
  t.equal(info.fingerprint256, leaf.fingerprint256);
  t.match(info.names, /DNS:localhost/);
  t.match(info.subject, /CN=localhost/);
  t.equal(checkPair(`${certA}${ca}`, keyA, undefined, during).serial, a.serial, 'with its issuer after it');
});

t.test('refused: no certificate, garbage, a foreign key, outside its dates, a chain out of order', async (t) => {
  t.throws(() => checkPair('', keyA, undefined, during), /holds no PEM certificate/);
  t.throws(() => checkPair('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', keyA, undefined, during), /certificate 1 in the certificate can't be parsed/);
  t.throws(() => checkPair(certA, 'not a key', undefined, during), /the key can't be read/);
  t.throws(() => checkPair(certA, readFileSync(b.key), undefined, during), /does not belong to the certificate/);
  t.throws(() => checkPair(certA, keyA, undefined, Date.parse(leaf.validFrom) - 1000), /is not valid before/);
  t.throws(() => checkPair(certA, keyA, undefined, Date.parse(leaf.validTo) + 1000), /expired on/);
  t.throws(() => checkPair(`${ca}${certA}`, keyA, undefined, during), /does not belong/, 'the CA first: its key is not this one');
  t.throws(() => checkPair(`${certA}${readFileSync(b.cert, 'utf8')}`, keyA, undefined, during), /certificate 1 .* was not issued by certificate 2/);
});

t.test('an encrypted key needs its passphrase, and says so', async (t) => {
  const enc = createPrivateKey(keyA).export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pw' });
  t.equal(checkPair(certA, enc, 'pw', during).serial, a.serial);
  t.throws(() => checkPair(certA, enc, undefined, during), /set PARLEY_TLS_PASSPHRASE_FILE/);
  t.throws(() => checkPair(certA, enc, 'wrong', during), /is the passphrase right/);
});

t.test('TLS settings in the environment', async (t) => {
  t.equal(loadConfig({}).tls, undefined, 'plain HTTP by default');
  t.strictSame(loadConfig({ PARLEY_TLS_CERT: '/c.pem', PARLEY_TLS_KEY: '/k.pem' }).tls, { cert: '/c.pem', key: '/k.pem' });
  t.strictSame(loadConfig({ PARLEY_TLS_CERT: '/c.pem', PARLEY_TLS_KEY: '/k.pem', PARLEY_TLS_CHAIN: '/ch.pem', PARLEY_TLS_PASSPHRASE_FILE: '/p' }).tls,
    { cert: '/c.pem', key: '/k.pem', chain: '/ch.pem', passphraseFile: '/p' });
  t.throws(() => loadConfig({ PARLEY_TLS_KEY: '/k.pem' }), /needs both PARLEY_TLS_CERT and PARLEY_TLS_KEY/);
  t.throws(() => loadConfig({ PARLEY_TLS_CHAIN: '/ch.pem' }), /need PARLEY_TLS_CERT and PARLEY_TLS_KEY/);
});
