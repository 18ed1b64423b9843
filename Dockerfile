# digest: the web app and the scheduler (`digest serve`), `digest inbound` for mail.
# Build: docker build -t digest .      Run everything: docker compose up (compose.yaml)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A non-root account that owns the install; the database lives in /data (a volume)
# when SQLite is used.
RUN useradd --create-home --home-dir /app --uid 10001 digest \
    && mkdir /data && chown digest:digest /data
WORKDIR /app
USER digest

COPY --chown=digest:digest pyproject.toml README.md LICENSE config.example.env ./
COPY --chown=digest:digest digest ./digest
COPY --chown=digest:digest templates ./templates

# The README's own install step, with the PostgreSQL driver.
RUN python3 -m venv .venv && .venv/bin/pip install -q -e '.[postgres]'

ENV PATH=/app/.venv/bin:$PATH \
    DIGEST_DATABASE_URL=sqlite:////data/digest.db \
    DIGEST_HTTP_HOST=0.0.0.0 \
    DIGEST_HTTP_PORT=8000

EXPOSE 8000
# /healthz answers 200 while the database answers and takes writes; python, as the
# slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# `digest init` creates or upgrades the schema (idempotent), then web + scheduler.
CMD ["sh", "-c", "digest init && exec digest serve"]
