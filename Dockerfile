# The ehrgate gateway. Build: docker build -t ehrgate:0.1.0 .   Run: see docker-compose.yml.
# The bases are pinned to exact releases on Debian 12 (bookworm): Node.js builds the browser
# app, Python runs the gateway; the Python base's ca-certificates package brings the openssl
# command, which deploy/tls/make-cert.sh uses.

# The browser app (web/, served at /app/): npm ci exactly as web/package-lock.json pins it,
# then esbuild into /web/dist. Only the built static files reach the final image.
FROM node:20.20.2-bookworm-slim AS web
WORKDIR /web
ENV NO_UPDATE_NOTIFIER=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/build.mjs web/tsconfig.json ./
COPY web/src src
RUN node build.mjs

FROM python:3.11.10-slim-bookworm AS build
WORKDIR /src
# The dependencies first, exactly as pinned and hashed in the lock (a layer of their own,
# rebuilt only when the lock changes), then ehrgate itself without resolving anything.
COPY requirements/runtime.lock requirements/runtime.lock
RUN pip install --no-cache-dir --prefix=/install --require-hashes -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY envelope envelope
COPY ledger ledger
COPY storage storage
COPY gateway gateway
COPY ehrgate ehrgate
COPY migrations migrations
RUN pip install --no-cache-dir --prefix=/install --no-deps .

FROM python:3.11.10-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /var/lib/ehrgate --create-home ehrgate
COPY --from=build /install /usr/local
COPY --from=web /web/dist /usr/local/share/ehrgate/web
USER ehrgate
WORKDIR /var/lib/ehrgate
ENV EHRGATE_DATA_DIR=/var/lib/ehrgate \
    EHRGATE_WEB_DIR=/usr/local/share/ehrgate/web \
    EHRGATE_HOST=0.0.0.0 \
    EHRGATE_PORT=8000
VOLUME ["/var/lib/ehrgate"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["ehrgate", "serve"]
