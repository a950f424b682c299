# p2p-registry agent image: Node 24, production dependencies only, runs as the unprivileged `node` user.
#   docker build -t p2p-registry .
#   docker run -p 11337:11337 -p 11338:11338 -v p2p-registry-data:/data p2p-registry
FROM node:24-slim

WORKDIR /app
ENV NODE_ENV=production \
    OB_DATA_DIR=/data \
    OB_HTTP_ADDR=0.0.0.0:11337 \
    OB_P2P_LISTEN=/ip4/0.0.0.0/tcp/11338

# Dependencies first, so code changes reuse this layer. The `node` devDependency (a pinned Node for
# machines with an older one) is not needed here: the base image is Node 24.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# TypeScript runs directly through Node's type stripping: no build step.
COPY src ./src

RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 11337 11338

HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:11337/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "src/cli/bin.ts"]
CMD ["agent"]
