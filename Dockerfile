# p2p-registry agent image: Node 24 and the bundled agent, nothing else; runs as the unprivileged `node` user.
#   docker build -t p2p-registry .
#   docker run -p 11337:11337 -p 11338:11338 -v p2p-registry-data:/data p2p-registry

# Build stage: bundle the TypeScript into one plain-JS module, dist/p2p-registry.mjs (agents start faster
# and an idle one uses about 92 MB of RSS instead of 124 MB with type stripping; see scripts/bundle.ts).
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY scripts/bundle.ts scripts/cluster-child.ts ./scripts/
# `npm ci` builds dist/ (its prepare script); the benchmark's agent process is not shipped.
RUN npm ci --no-audit --no-fund && rm dist/cluster-child.*

FROM node:24-slim
WORKDIR /app
# glibc malloc settings for less idle RSS (src/cli/bin.ts explains them and sets them too): two arenas
# instead of one per thread that allocates, and blocks of 32 KB and more returned to the system when freed.
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=32768 \
    OB_DATA_DIR=/data \
    OB_HTTP_ADDR=0.0.0.0:11337 \
    OB_P2P_LISTEN=/ip4/0.0.0.0/tcp/11338

# The bundle is the whole program: every dependency, LevelDB's prebuilt addon included, is in dist/
# (scripts/bundle.ts), so the image installs no packages and carries no build tools.
COPY --from=build /app/dist ./dist

# npm and npx come with the base image; the agent needs neither, so nothing that installs code is left.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
 && mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# HTTP API; libp2p (TCP) and SWIM datagrams (UDP) on the same port number.
EXPOSE 11337 11338 11338/udp

HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:11337/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "--max-semi-space-size=1", "dist/p2p-registry.mjs"]
CMD ["agent"]
