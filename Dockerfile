# The worker as a container: docker run -v /etc/harbormaster:/etc/harbormaster:ro \
#   -v harbormaster-state:/var/lib/harbormaster --env-file secrets.env harbormaster
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
RUN npm run build && npm prune --omit=dev

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
