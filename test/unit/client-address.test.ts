import t from 'tap';
import { clientAddress, normalizeAddress, parseTrustedProxies, trustedProxies } from '../../src/transport/client-address.js';
import { loadConfig } from '../../src/config.js';

/** PARLEY_TRUST_PROXY and the client address behind a load balancer (src/transport/client-address.ts). */

t.test('PARLEY_TRUST_PROXY: addresses and CIDR ranges, IPv4 and IPv6; anything else is refused at start', async (t) => {
  t.strictSame(parseTrustedProxies(''), []);
  t.strictSame(parseTrustedProxies(' 127.0.0.1, 10.0.0.0/8 ,::1,fd00::/8 '), ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']);
  for (const bad of ['1', 'true', 'localhost', '10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/8/1', '300.1.1.1', '*']) {
    t.throws(() => parseTrustedProxies(bad), /PARLEY_TRUST_PROXY: .* is not an IP address or CIDR range/, bad);
  }
  t.strictSame(loadConfig({}).trustProxy, [], 'no proxy is trusted by default');
  t.strictSame(loadConfig({ PARLEY_TRUST_PROXY: '10.1.0.0/16' }).trustProxy, ['10.1.0.0/16']);
  t.throws(() => loadConfig({ PARLEY_TRUST_PROXY: 'yes' }), /PARLEY_TRUST_PROXY/);
});

t.test('addresses as uWS writes them become one short form', async (t) => {
  t.equal(normalizeAddress('127.0.0.1'), '127.0.0.1');
  t.equal(normalizeAddress('0000:0000:0000:0000:0000:ffff:7f00:0001'), '127.0.0.1', 'IPv4-mapped IPv6 is the IPv4 address');
  t.equal(normalizeAddress('0000:0000:0000:0000:0000:0000:0000:0001'), '::1');
  t.equal(normalizeAddress('2001:0db8:0000:0000:0000:0000:0000:0042'), '2001:db8::42');
  t.equal(normalizeAddress(''), '', 'no address stays none');
});

t.test('the PROXY header is believed only from a trusted peer', async (t) => {
  const trusted = trustedProxies(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
  t.equal(clientAddress('10.2.3.4', '203.0.113.7', trusted), '203.0.113.7', 'a proxy in a trusted range');
  t.equal(clientAddress('0000:0000:0000:0000:0000:ffff:7f00:0001', '203.0.113.7', trusted), '203.0.113.7', 'a trusted IPv4 proxy seen on an IPv6 socket');
  t.equal(clientAddress('fd00:0000:0000:0000:0000:0000:0000:0005', '2001:0db8:0000:0000:0000:0000:0000:0042', trusted), '2001:db8::42');
  t.equal(clientAddress('192.0.2.9', '203.0.113.7', trusted), '192.0.2.9', 'an untrusted peer that sent a PROXY header is itself the client');
  t.equal(clientAddress('10.2.3.4', '', trusted), '10.2.3.4', 'a trusted peer without a PROXY header (a health check) is itself the client');
  t.equal(clientAddress('127.0.0.1', '203.0.113.7', undefined), '127.0.0.1', 'nothing trusted: the peer, whatever it sent');
  t.equal(trustedProxies([]), undefined);
});
