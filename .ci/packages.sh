#!/usr/bin/env bash
# Debian packages CI needs beyond the machine's defaults: protoc and the gRPC
# Python plugin (npm run generate:python), Python's grpcio and protobuf (the
# Python examples in test/interop), and iproute2 and nftables (the fault
# suite's network namespaces and packet drops), podman, runc, catatonit and
# debootstrap (the container test), docker-compose (compose.yaml's lint);
# python3-setuptools, python3-wheel, python3-venv and python3-pip (the Python package,
# python/, installed into a venv without an index), Go 1.19 with grpc-go and
# protobuf-go and the protoc plugins for Go (the Go module, go/, in GOPATH mode);
# chromium (the dashboard's browser test, test/ui, driven by playwright-core).
set -euo pipefail
need=()
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v grpc_python_plugin >/dev/null || need+=(protobuf-compiler-grpc)
/usr/bin/python3 -c 'import grpc' 2>/dev/null || need+=(python3-grpcio)
/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null || need+=(python3-protobuf)
/usr/bin/python3 -c 'import setuptools' 2>/dev/null || need+=(python3-setuptools)
/usr/bin/python3 -c 'import wheel' 2>/dev/null || need+=(python3-wheel)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
command -v go >/dev/null || need+=(golang-go)
command -v protoc-gen-go >/dev/null || need+=(protoc-gen-go)
command -v protoc-gen-go-grpc >/dev/null || need+=(protoc-gen-go-grpc)
for dev in golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev; do
  dpkg-query -W -f='${Status}' "$dev" 2>/dev/null | grep -q 'install ok installed' || need+=("$dev")
done
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v catatonit >/dev/null || need+=(catatonit)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-compose >/dev/null || need+=(docker-compose)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
