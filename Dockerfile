# The service's image: built with the development dependencies, run with the
# production ones only (no embedded PostgreSQL, no compiler, no Prisma CLI),
# as the unprivileged `node` user (uid 1000).
# Checked here with `npm run docker:lint`; see README, "Deployment", for what
# has and has not been run.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY prisma ./prisma
COPY prisma.config.ts tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# --omit=optional drops what only the development tools pull in (the Prisma
# CLI and TypeScript, optional peers of the Prisma client); no install
# scripts run, so argon2 must work from its prebuilt binary, which the check
# below proves.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY prisma ./prisma
COPY views ./views
RUN node dist/cli/check-runtime.js
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD ["node", "-e", "fetch('http://127.0.0.1:3000/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/server.js"]
