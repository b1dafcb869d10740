#!/usr/bin/env node
// Builds the web client (web/src) and the ops console (web/ops) into dist/web: <page>-<hash>.js and .css
// bundled by esbuild, and an HTML file naming them (index.html, ops.html). Part of `npm run build`, so `npm start` and `npm test` both produce it. The node
// serves dist/web at / (src/http/web-routes.ts). Node-only modules can't reach the bundle: esbuild targets the
// browser and fails on them.
import { build } from 'esbuild';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
mkdirSync(out, { recursive: true });
for (const f of readdirSync(out)) rmSync(join(out, f), { recursive: true, force: true });

const common = { bundle: true, platform: 'browser', target: ['es2022', 'chrome110', 'firefox115', 'safari16'], minify: true, sourcemap: 'linked', legalComments: 'none', logLevel: 'warning' };
// The service worker keeps one URL (a new one would be a second worker): /sw.js, never cached.
await build({ ...common, entryPoints: [join(root, 'web', 'sw', 'sw.ts')], outfile: join(out, 'sw.js'), format: 'iife' });

/** One page: its entry bundled to `<name>-<hash>.js` (and .css), and an HTML file naming them. */
async function page(entry, name, html, title) {
  const result = await build({
    entryPoints: [join(root, 'web', ...entry)],
    outdir: out,
    entryNames: `${name}-[hash]`,
    ...common,
    format: 'esm',
    // What a page imports lazily (Leaflet, with the first map) becomes a hashed chunk it loads then.
    splitting: true,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    metafile: true,
    // The SDK's Node fallback (`require('ws')`) is never reached in a browser, which has WebSocket.
    external: ['ws'],
    // Images the bundle imports (Leaflet's pin, its CSS's icons) become hashed files beside it, named from /.
    loader: { '.png': 'file' },
    publicPath: '/',
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const js = outputs.find((f) => f.startsWith(`${name}-`) && f.endsWith('.js'));
  const css = outputs.find((f) => f.startsWith(`${name}-`) && f.endsWith('.css'));
  if (!js) throw new Error(`esbuild wrote no script for ${name}`);
  writeFileSync(join(out, html), `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>${title}</title>
${css ? `<link rel="stylesheet" href="/${css}">\n` : ''}<script type="module" src="/${js}"></script>
</head>
<body><div id="app"></div><noscript>${title} needs JavaScript.</noscript></body>
</html>
`);
  process.stdout.write(`web: dist/web/${js}${css ? `, ${css}` : ''}\n`);
}

await page(['src', 'main.tsx'], 'app', 'index.html', 'Parley');
// The operators' console, served at /ops (src/http/web-routes.ts); its data needs the admin key.
await page(['ops', 'main.tsx'], 'ops', 'ops.html', 'Parley ops');
