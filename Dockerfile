# chirpbase worker image: Debian bookworm-slim with Debian's Python 3.11, the locked runtime
# dependencies, the worker and the migrations (for `chirpbase db migrate` where the Supabase CLI
# is absent). Runs as an unprivileged user, stops on SIGTERM, health-checked on /health.
#
# Builds unchanged with `docker build -t chirpbase-worker .` (Docker 23 or later, whose BuildKit
# reads `RUN --mount`; the base comes from Docker Hub) and with `make image` (buildah, a base made
# locally with debootstrap: scripts/image.sh).
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
# Behind a TLS-intercepting proxy, scripts/image.sh hands the build machine's CA bundle to the two
# steps that download over HTTPS, as the read-only secret `host-ca`, and points these at it; on
# other hosts the secret is absent and these stay unset. Neither reaches the final image.
ARG SSL_CERT_FILE
ARG PIP_CERT
ARG UV_SYSTEM_CERTS
ARG UV_VERSION=0.13.9
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=secret,id=host-ca \
    python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir --quiet "uv==${UV_VERSION}"
ENV UV_PYTHON=/usr/bin/python3.11 UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=secret,id=host-ca /opt/uv/bin/uv sync --frozen --no-dev --no-install-project
COPY worker ./worker
COPY supabase/migrations ./supabase/migrations
RUN --mount=type=secret,id=host-ca /opt/uv/bin/uv sync --frozen --no-dev \
 # The test suites some wheels ship are never run here.
 && find /app/.venv/lib/python3.11/site-packages -depth -type d -name tests -path '*/site-packages/*/tests' \
      -exec rm -rf {} +

FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --home-dir /home/chirpbase --uid 10001 --user-group chirpbase
# The code stays root-owned: the worker can read it, not change it.
COPY --from=build /app /app
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HTTP_PORT=8080
USER chirpbase
WORKDIR /home/chirpbase
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('HTTP_PORT', '8080'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status != 200)"]
# SIGTERM: finish or hand back running jobs within SHUTDOWN_GRACE_S (40 s). Give the container
# more than that before SIGKILL (`docker stop -t 45`, compose's stop_grace_period: 45s).
STOPSIGNAL SIGTERM
CMD ["chirpbase", "worker"]
