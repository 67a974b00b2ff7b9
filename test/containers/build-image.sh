#!/usr/bin/env bash
# Builds the committed Dockerfile with no network at all (--network none): the
# npm packages come from a cache filled beforehand on the host from the npm
# registry, the base images from base-images.sh (--pull=never).
#
#   test/containers/build-image.sh <work dir> <tag>
set -euo pipefail
work=${1:?work dir}
tag=${2:?image tag}
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache="$work/npm-cache"
deps="$work/deps"

# Fill a cache with every package the lockfile names (from the host's cache
# where it has them, else the registry).
mkdir -p "$cache" "$deps"
if [ -d "$HOME/.npm/_cacache" ]; then cp -a "$HOME/.npm/_cacache" "$cache/"; fi
cp "$repo/package.json" "$repo/package-lock.json" "$deps/"
(cd "$deps" && npm ci --ignore-scripts --prefer-offline --no-audit --no-fund --cache "$cache" >/dev/null)
rm -rf "$deps"

# --layers=false: no intermediate images are kept (the build stage included).
podman build --pull=never --network none --format docker --layers=false \
  --volume "$cache:/npm-cache" \
  --build-arg NPM_CONFIG_OFFLINE=true \
  --build-arg NPM_CONFIG_CACHE=/npm-cache \
  --build-arg NPM_CONFIG_NODEDIR=/usr \
  --tag "$tag" "$repo"
