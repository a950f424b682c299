# p2p-registry agent image: Node 24, production dependencies only, runs as the unprivileged `node` user.
#   docker build -t p2p-registry .
#   docker run -p 11337:11337 -p 11338:11338 -v p2p-registry-data:/data p2p-registry

# Build stage: compile the TypeScript to plain JS (agents start faster and use ~30 MB less memory than
# with type stripping).
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/cluster-child.ts ./scripts/cluster-child.ts
RUN npm ci --no-audit --no-fund

FROM node:24-slim
WORKDIR /app
# MALLOC_ARENA_MAX=2: two glibc malloc arenas instead of one per thread that allocates (about 4 MB less
# RSS per agent; see src/cli/bin.ts, which sets it too).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    OB_DATA_DIR=/data \
    OB_HTTP_ADDR=0.0.0.0:11337 \
    OB_P2P_LISTEN=/ip4/0.0.0.0/tcp/11338

# Production dependencies only. Scripts are skipped: `prepare` would build (done above), and LevelDB
# ships prebuilt binaries. The `node` devDependency (a pinned Node for older machines) is not needed.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist

RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 11337 11338

HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:11337/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/src/cli/bin.js"]
CMD ["agent"]
