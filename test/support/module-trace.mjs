// Loaded with `node --import`: appends the URL of every module Node loads through its ES module loader
// (a package's entry, even a CommonJS one, comes through it) to the file named by HARBORMASTER_MODULE_TRACE.
import { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(process.env.HARBORMASTER_MODULE_TRACE)}, url + '\\n');
  return next(url, context);
}`)}`,
);
