# One image, two roles:
#   docker run IMAGE server                      (the default command)
#   docker run IMAGE worker --demo --server host:50051
# Configuration comes from TASKWIRE_* environment variables (see README).

FROM node:20-bookworm AS build
WORKDIR /app
# For air-gapped builds: a filled npm cache mounted into the build and
# NPM_CONFIG_OFFLINE=true, NPM_CONFIG_CACHE=<mount>, NPM_CONFIG_NODEDIR=/usr
# (node-gyp's headers) as build arguments. Left unset, npm uses the registry.
ARG NPM_CONFIG_OFFLINE
ARG NPM_CONFIG_CACHE
ARG NPM_CONFIG_NODEDIR
ARG NODE_EXTRA_CA_CERTS
COPY package.json package-lock.json ./
# Scripts off: `prepare` would compile sources not copied yet. better-sqlite3
# is the one dependency whose install script is needed (its native addon).
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY gen/ts ./gen/ts
COPY gen/descriptor.binpb ./gen/
COPY src ./src
# The dashboard's sources (ui/): npm run build bundles them into dist/ui.
COPY ui ./ui
# The image is the server: the stores' drivers, optional peers of the package
# (a client-only app does not install them), are its dependencies.
RUN npm run build \
 && node -e 'const fs=require("fs");const p=JSON.parse(fs.readFileSync("package.json"));for(const n of Object.keys(p.peerDependencies)){p.dependencies[n]=p.peerDependencies[n];delete p.devDependencies[n]}fs.writeFileSync("package.json",JSON.stringify(p,null,2))' \
 && npm prune --omit=dev --no-audit --no-fund \
 && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete

FROM node:20-bookworm-slim
# A 4 MB young generation and two malloc arenas: after a burst of 200,000
# submits the server holds 150 MB instead of 171, at the same throughput
# (BENCHMARKS.md, Memory). Override NODE_OPTIONS to change it.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=4 \
    MALLOC_ARENA_MAX=2 \
    TASKWIRE_LISTEN=0.0.0.0:50051 \
    TASKWIRE_HTTP_LISTEN=0.0.0.0:8080 \
    TASKWIRE_METRICS_LISTEN=0.0.0.0:9464 \
    TASKWIRE_DB=/data/taskwire.db
WORKDIR /app
# Code and dependencies belong to root and are read-only to the process;
# only /data (the SQLite store) is writable by the node user.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/gen/descriptor.binpb ./gen/
RUN mkdir /data && chown node:node /data
VOLUME /data
USER node
# 50051: gRPC. 8080: Connect (JSON, binary) and gRPC-Web over HTTP, for
# curl, browsers and anything without a gRPC client (TASKWIRE_HTTP_LISTEN).
# 9464: Prometheus metrics at GET /metrics, servers and workers alike
# (TASKWIRE_METRICS_LISTEN; empty turns it off).
EXPOSE 50051 8080 9464
# The gRPC health service of the server. A worker has no port: run worker
# containers with the health check off (compose and Kubernetes files do).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["node", "/app/dist/src/cli/main.js", "health", "--timeout-ms", "4000"]
# SIGTERM drains: the server stops taking calls and ends worker streams, a
# worker finishes or hands back its tasks. Node handles it even as PID 1.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["server"]
