#!/usr/bin/env bash
# A real release on a local fleet, with its own set-up (root, Debian 12). HOSTS=10 for more hosts;
# --keep leaves the fleet up afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import moto.server' 2>/dev/null || python3 -m pip install --quiet "moto[server]==5.2.1"
bash local-fleet/install-packages.sh >/dev/null
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
exec node --import tsx scripts/local-release.ts "$@"
