import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Fixture } from '../helpers/fixture.js';
import { MEDIA_CASES_ENV, mediaCases } from './media-cases.js';

/** The media cases (media-cases.ts) on the embedded store: blobs on local disk, uploads under way as temp files. */
let f: Fixture;
t.before(async () => { f = await Fixture.start(MEDIA_CASES_ENV); });
t.teardown(() => f.destroy());

mediaCases(t, () => f, async () => readdirSync(join(f.node.dataDir, 'media', 'tmp')).length);
