# chirpbase worker image: python:3.11-slim, locked dependencies, non-root, health-checked.
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY worker ./worker
COPY sandbox ./sandbox
COPY supabase/migrations ./supabase/migrations
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 chirpbase
WORKDIR /app
COPY --from=build --chown=chirpbase:chirpbase /app /app
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 HTTP_PORT=8080
USER chirpbase
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status == 200 else 1)"
# SIGTERM: finish or hand back running jobs within SHUTDOWN_GRACE_S (40 s). Give the container
# more than that before SIGKILL (`docker stop -t 45`, compose's stop_grace_period: 45s).
STOPSIGNAL SIGTERM
CMD ["chirpbase", "worker"]
