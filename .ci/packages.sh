#!/usr/bin/env bash
# Debian packages CI needs beyond the machine's defaults: protoc and the gRPC
# Python plugin (npm run generate:python) and Python's grpcio and protobuf
# (the Python examples in test/interop).
set -euo pipefail
need=()
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v grpc_python_plugin >/dev/null || need+=(protobuf-compiler-grpc)
/usr/bin/python3 -c 'import grpc' 2>/dev/null || need+=(python3-grpcio)
/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null || need+=(python3-protobuf)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
