// The CLI as one file that needs only Node (20 or later): dist-bundle/harbormaster.cjs, every
// dependency inside it, and dist-bundle/harbormaster.cjs.sha256 (`sha256sum -c` reads it). What CI
// agents download (docs/ci.md, "Getting the CLI"). esbuild splits the program into chunks at each
// dynamic import; the file holds them as text and compiles a chunk when a command first loads it
// (scripts/bundle-launcher.cjs), so a command costs what it loads, not the whole program.
//   npm run bundle            (node --import tsx scripts/bundle.ts [OUT_DIR])
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, transform } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = resolve(process.argv[2] ?? join(root, 'dist-bundle'));
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const file = join(out, 'harbormaster.cjs');

const split = await build({
  entryPoints: { main: join(root, 'src/cli/main.ts') },
  outdir: out,
  write: false,
  bundle: true,
  splitting: true,
  chunkNames: '[name]-[hash]',
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minify: true,
  legalComments: 'none',
  // ssh2's and cpu-features' native parts are optional: both fall back to JavaScript without them.
  external: ['*.node', 'cpu-features'],
  define: { HARBORMASTER_VERSION: JSON.stringify(version) },
  logLevel: 'error',
});

// Each chunk as CommonJS, its imports of other chunks as require('./name.js'), dynamic ones included.
const chunks: Record<string, string> = {};
for (const output of split.outputFiles) {
  const converted = await transform(output.text, { format: 'cjs', platform: 'node', target: 'node20', supported: { 'dynamic-import': false }, minify: true, logLevel: 'error' });
  chunks[basename(output.path)] = converted.code;
}
if (!chunks['main.js']) throw new Error('bundle: esbuild wrote no main.js chunk');

const launcher = readFileSync(join(root, 'scripts/bundle-launcher.cjs'), 'utf8');
const text = `#!/usr/bin/env node\n// harbormaster ${version}: the bundled CLI (npm run bundle).\n${launcher.replace('__HARBORMASTER_CHUNKS__', () => JSON.stringify(chunks))}`;
mkdirSync(out, { recursive: true });
writeFileSync(file, text, { mode: 0o755 });
chmodSync(file, 0o755);
const digest = createHash('sha256').update(text).digest('hex');
writeFileSync(`${file}.sha256`, `${digest}  ${basename(file)}\n`);
process.stdout.write(`${file} (${(Buffer.byteLength(text) / 1e6).toFixed(1)} MB in ${Object.keys(chunks).length} chunks, harbormaster ${version})\n${file}.sha256\n`);
