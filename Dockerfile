FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DATABASE_URL=sqlite:////data/incidentbot.db \
    RUNBOOKS_DIR=/app/runbooks ROTATIONS_DIR=/app/rotations PORT=8080

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install . && useradd --system --uid 10001 --home /app incidentbot \
    && mkdir -p /data && chown incidentbot /data
COPY runbooks ./runbooks
COPY rotations ./rotations

USER incidentbot
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8080\")}/healthz', timeout=2)"
ENTRYPOINT ["incidentbot"]
CMD ["serve"]
