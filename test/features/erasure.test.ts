import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { erasureCases } from './erasure-cases.js';
import { scanLmdb } from '../helpers/store-scan.js';

/** Issue #15 §6 on the embedded store: every LMDB database of the node scanned after an erasure. */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

erasureCases(t, { f: () => f, start: (env) => Fixture.start(env), scan: scanLmdb });
