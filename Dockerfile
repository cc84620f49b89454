# syntax=docker/dockerfile:1
# Order & provisioning service.
#   docker build -t order-service:local .
#   docker-compose -f docker-compose.order-service.yml up --build
#
# Stage 1 builds a wheel of the package. The wheel carries the Alembic migrations
# (src/order_service/migrations links to alembic/), so the image has no source tree.
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY pyproject.toml README.md ./
COPY alembic/ alembic/
COPY src/ src/
RUN pip wheel --no-deps --wheel-dir /wheels .

# Stage 2: the runtime. The wheel and its dependencies at the versions in
# constraints.txt; no compilers, no dev tools.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app
WORKDIR /app
COPY constraints.txt /tmp/constraints.txt
COPY --from=builder /wheels/ /tmp/wheels/
RUN pip install -c /tmp/constraints.txt /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /tmp/constraints.txt \
    && mkdir -p /app/data \
    && chown app:app /app/data
# The mock catalog-service and fake DigitalOcean, for the compose file's mock
# services (python -m mocks.catalog_service / python -m mocks.digitalocean).
COPY mocks/ /app/mocks/

USER app
# Without DATABASE_URL the image keeps its SQLite database in /app/data (a volume
# there keeps it); production sets DATABASE_URL=postgresql+asyncpg://...
ENV PORT=3333 \
    HOST=0.0.0.0 \
    LOG_FORMAT=json \
    DATABASE_URL=sqlite+aiosqlite:////app/data/order-service.db
# 3333: the API (PORT); 3334: a `worker`'s health and metrics (WORKER_PORT).
EXPOSE 3333 3334
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/v1/health' % os.environ.get('PORT', '3333'), timeout=4)"]
STOPSIGNAL SIGTERM
# One process, the API and every duty: migrate, then `exec` the server: uvicorn
# replaces the shell as PID 1 and gets SIGTERM itself (graceful shutdown releases
# the duties' leases). The compose file runs the roles apart instead, with
# `order-service serve --no-duties` and `order-service worker` as commands.
CMD ["sh", "-c", "order-service migrate && exec order-service serve"]
