import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { scanLmdb } from '../helpers/store-scan.js';
import { e2eCases } from './e2e-cases.js';

/** Issue #15, end-to-end encryption, on the embedded store: every LMDB database scanned for plaintext. */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

e2eCases(t, { f: () => f, scan: scanLmdb });
