# The worker as a container:
#   docker run -d --name harbormaster --restart unless-stopped --stop-timeout 600 --network host \
#     -v /etc/harbormaster:/etc/harbormaster:ro -v harbormaster-state:/var/lib/harbormaster \
#     --env-file secrets.env harbormaster
# --network host: the bastion's metadata service answers IMDSv2 with a hop limit of 1
# (deploy/cloudformation.yml), which a container on Docker's bridge network is one hop too far to reach.
# --stop-timeout gives a release in hand time to reach its safe point after SIGTERM (Docker's default
# 10 s would SIGKILL it mid-host; the next start repairs, but slower). The worker runs as the image's
# `node` user (uid 1000): files under /etc/harbormaster it reads (the SSH key, key files) must be
# readable by that uid, e.g. owned by 1000 with mode 0400.
#
# The CLI for CI agents (docs/ci.md, "Getting the CLI"): `docker build --target cli -t harbormaster-cli .`,
# the one-file bundle (scripts/bundle.ts) on Node, run as `node`, `harbormaster` its entry point:
#   docker run --rm -e HARBORMASTER_QUEUE_URL ... harbormaster-cli enqueue --stack ... --wait
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
COPY scripts/bundle.ts scripts/bundle-launcher.cjs ./scripts/
RUN npm run build && npm run bundle && npm prune --omit=dev

FROM node:20-bookworm-slim AS cli
COPY --from=build /app/dist-bundle/harbormaster.cjs /usr/local/bin/harbormaster
USER node
WORKDIR /home/node
ENTRYPOINT ["harbormaster"]
CMD ["--help"]

# The worker (the default target: the last stage).
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
RUN mkdir -p /var/lib/harbormaster && chown node:node /var/lib/harbormaster
USER node
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/harbormaster.js"]
CMD ["worker", "--config", "/etc/harbormaster/worker.yml"]
