#!/usr/bin/env node
// The compiled CLI; `npm run build` produces dist/.
// The AWS SDK warns on every start that its releases after January 2027 need Node 22; the locked
// versions run on Node 20, and the warning would otherwise open every CI log and worker start.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
await import('../dist/cli/main.js');
