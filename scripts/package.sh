#!/usr/bin/env bash
# The worker as a self-contained package for a bastion: harbormaster-<version>.tar.gz in the current
# directory, holding harbormaster-<version>/ with bin/, dist/, deploy/ (the unit, the example configuration), package.json, package-lock.json and the
# production node_modules (no dev dependencies; the bastion needs Node 20+, not npm or the registry).
# Run from a checkout after `npm ci`, on the bastion's platform (Linux, same CPU architecture: the
# packages with native parts are built for it). docs/install.md says what to do with it.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$(pwd)"
version="$(node -p "require('$repo/package.json').version")"
name="harbormaster-$version"
[ -d "$repo/node_modules" ] || { echo "package.sh: $repo/node_modules is missing: run npm ci first" >&2; exit 2; }

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
(cd "$repo" && npm run --silent build)
mkdir "$stage/$name"
cp -r "$repo/bin" "$repo/dist" "$repo/deploy" "$repo/package.json" "$repo/package-lock.json" "$stage/$name/"
# node_modules may be a link (a git worktree sharing one): copy what it points at, keeping the links inside it.
cp -a "$(readlink -f "$repo/node_modules")/." "$stage/$name/node_modules/"
(cd "$stage/$name" && npm prune --omit=dev --offline --no-audit --no-fund --silent)
tar -czf "$out/$name.tar.gz" -C "$stage" --owner=0 --group=0 --numeric-owner "$name"
echo "$out/$name.tar.gz"
