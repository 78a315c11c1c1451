# nvrmon hub: one process, one uvicorn worker (the SSE broadcaster lives in-process; more workers would split it).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, in their own layer, so code changes don't reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir nvrmon && touch nvrmon/__init__.py \
    && pip install . && pip uninstall -y nvrmon && rm -rf nvrmon build

COPY nvrmon ./nvrmon
COPY templates ./templates
COPY static ./static
COPY app.py ./
# Editable install: templates/ and static/ are read from /app next to the package.
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --home /app nvrmon \
    && mkdir -p /data && chown nvrmon /data

USER nvrmon
VOLUME ["/data"]
ENV NVRMON_DB_PATH=/data/nvrmon.db NVRMON_HOST=0.0.0.0 NVRMON_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
CMD ["nvrmon", "serve"]
