#!/usr/bin/env bash
# The whole test suite, with its own set-up: dependencies, build, then every test.
# Tests start the servers they use (moto_server on a free port, the local fleet) and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
npx tsc -p tsconfig.json --noEmit

export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
mapfile -t files < <(find test -name '*.test.ts' | sort)
if [ "$#" -gt 0 ]; then files=("$@"); fi
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
