# The ehrgate gateway. Build: docker build -t ehrgate:0.1.0 .   Run: see docker-compose.yml.
# The base is pinned to an exact Python release on Debian 12 (bookworm); its ca-certificates
# package brings the openssl command, which deploy/tls/make-cert.sh uses.
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
USER ehrgate
WORKDIR /var/lib/ehrgate
ENV EHRGATE_DATA_DIR=/var/lib/ehrgate \
    EHRGATE_HOST=0.0.0.0 \
    EHRGATE_PORT=8000
VOLUME ["/var/lib/ehrgate"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["ehrgate", "serve"]
