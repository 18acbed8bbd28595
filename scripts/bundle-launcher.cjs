// The start of the bundled CLI (scripts/bundle.ts writes it, with CHUNKS filled in): every module of
// `harbormaster` and its dependencies, as esbuild split them into chunks, each kept as text. A chunk is
// compiled when it is first required, so a command compiles only the chunks it loads: `--help` and
// `enqueue --dry-run` never compile an AWS client. Only Node's own modules come from outside the file;
// optional native parts (ssh2's) are not in it and their JavaScript fallbacks run.
'use strict';
// As bin/harbormaster.js: the AWS SDK's notice that its 2027 releases need Node 22 would open every CI log.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const CHUNKS = __HARBORMASTER_CHUNKS__;

const { createRequire } = require('node:module');
const { compileFunction } = require('node:vm');
const nodeRequire = createRequire(__filename);
const loaded = new Map();

/** A chunk's exports (compiled on first use); any other name goes to Node's own require. */
function chunkRequire(specifier) {
  const name = specifier.startsWith('./') ? specifier.slice(2) : undefined;
  if (name === undefined || !Object.hasOwn(CHUNKS, name)) return nodeRequire(specifier);
  const known = loaded.get(name);
  if (known) return known.exports;
  const module = { exports: {} };
  loaded.set(name, module);
  const body = compileFunction(CHUNKS[name], ['exports', 'require', 'module', '__filename', '__dirname'], { filename: `${__filename}/${name}` });
  body(module.exports, chunkRequire, module, __filename, __dirname);
  return module.exports;
}
chunkRequire.resolve = nodeRequire.resolve;

chunkRequire('./main.js');
