#!/usr/bin/env bash
# Builds the two base images the Dockerfile names, for machines that reach no
# image registry: node:20-bookworm-slim (Debian minbase + this machine's Node)
# and node:20-bookworm (the same plus python3, make and g++, which the build
# stage needs to compile better-sqlite3). Both get a `node` user (uid 1000), as
# the official images have. Only Debian's mirror is contacted (debootstrap).
#
#   test/containers/base-images.sh <work dir>
set -euo pipefail
work=${1:?work dir}
mirror=http://deb.debian.org/debian
debs=/var/cache/taskwire-debootstrap   # .deb cache shared between runs
mkdir -p "$work" "$debs"

node_files() {
  # Node, its headers and its bin links from the nodejs package; npm and
  # corepack as they are now (npm may have been upgraded since the package).
  dpkg -L nodejs | grep -v -e '^/usr/lib/node_modules/' -e '^/usr/share/doc/' -e '^/usr/share/man/' | while IFS= read -r path; do
    if [ -f "$path" ] || [ -L "$path" ]; then printf '%s\n' "${path#/}"; fi
  done
  printf '%s\n' usr/lib/node_modules/npm usr/lib/node_modules/corepack
}

make_root() {
  local root=$1 include=$2
  debootstrap --variant=minbase ${include:+--include="$include"} --cache-dir="$debs" bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
    { tail -20 "$root.log" >&2; exit 1; }
  node_files | tar -C / -cf - -T - | tar -C "$root" -xf -
  chroot "$root" groupadd --gid 1000 node
  chroot "$root" useradd --uid 1000 --gid node --create-home --shell /bin/bash node
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
}

import() {
  local root=$1 tag=$2
  tar -C "$root" -cf - . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' - "$tag" >/dev/null
}

make_root "$work/slim" "" &
slim=$!
make_root "$work/full" "python3,make,g++" &
full=$!
wait $slim
wait $full
import "$work/slim" docker.io/library/node:20-bookworm-slim
import "$work/full" docker.io/library/node:20-bookworm
rm -rf "$work/slim" "$work/full"
