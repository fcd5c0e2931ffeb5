# syntax=docker/dockerfile:1
# mcp-authz on Node 24 LTS, as a non-root user (uid 1000), production dependencies only.
#   docker build -t mcp-authz .
# Public listener on 4000 (PORT), admin listener (/healthz, /readyz, /metrics) on 9464 (ADMIN_PORT):
# publish the admin port only to your monitoring, never to the internet.
# Embedded SQLite in the /data volume:
#   docker run -p 4000:4000 -v mcp-authz-data:/data -e ISSUER=https://auth.example.com mcp-authz
# Redis instead (several containers can share it): -e REDIS_URL=redis://redis:6379/0
# Config by a mounted file: -v ./mcp-authz.yaml:/etc/mcp-authz/config.yaml:ro -e MCP_AUTHZ_CONFIG=/etc/mcp-authz/config.yaml
# Secrets as files: SIGNING_KEYS_FILE, COOKIE_KEYS_FILE, clients[].client_secret_file (docs/deployment.md).
# test/deploy/image.test.ts replays these stages: keep COPY, ENV and HEALTHCHECK on one line each.

FROM node:24-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 builds from source when no prebuilt binary can be fetched
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY adapters ./adapters
# the demo's example MCP server (src/demo) is compiled with the server; the image turns the demo off
COPY examples ./examples
RUN npx tsc -p tsconfig.build.json
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production PORT=4000 HOST=0.0.0.0 ADMIN_PORT=9464 ADMIN_HOST=0.0.0.0 DATA_DIR=/data MCP_AUTHZ_DEMO=off
WORKDIR /app
# owned by root, read-only for the server; only /data (and /tmp) are written
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY views ./views
RUN mkdir -p /data && chown 1000:1000 /data
# numeric, so Kubernetes runAsNonRoot can check it (the image's "node" user)
USER 1000:1000
VOLUME ["/data"]
EXPOSE 4000 9464
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.ADMIN_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["serve"]
