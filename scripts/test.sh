#!/usr/bin/env bash
# The whole test suite, with its own set-up: system packages, Node dependencies, build, type-check,
# then every test. Tests start the servers they use (moto_server on free ports, the local fleet of
# network namespaces, engines, SSH servers and a registry) and stop them.
#   npm test                      everything
#   npm test -- test/queue/*.ts   some files
#   npm run test:fast             every file but the fleet's (*-on-fleet.test.ts): no root, no fleet
set -euo pipefail
cd "$(dirname "$0")/.."

fast=false
if [ "${1:-}" = "--fast" ]; then fast=true; shift; fi

# moto_server serves the AWS APIs in tests.
if ! python3 -c 'import moto.server' 2>/dev/null; then
  echo "test.sh: installing moto[server] for the AWS APIs" >&2
  python3 -m pip install --quiet "moto[server]==5.2.1"
fi
# The local fleet needs root and Debian's packages; install-packages.sh says so in one line if it cannot.
# The fast tier runs no fleet (its registry test uses Debian's docker-registry where it is installed).
if [ "$fast" = false ]; then bash local-fleet/install-packages.sh; fi

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
npx tsc -p tsconfig.json --noEmit

export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
if [ "$#" -gt 0 ]; then files=("$@")
elif [ "$fast" = true ]; then mapfile -t files < <(find test -name '*.test.ts' ! -name '*-on-fleet.test.ts' | sort)
else mapfile -t files < <(find test -name '*.test.ts' | sort); fi
# Fleet tests leave the fleet up for the next file (bring-up reuses it); take it down at the end.
if [ "$fast" = false ]; then trap 'node --import tsx local-fleet/cli.ts down >/dev/null 2>&1 || true' EXIT; fi
node --import tsx --test --test-concurrency=1 --test-timeout=1200000 --test-reporter=spec "${files[@]}"
