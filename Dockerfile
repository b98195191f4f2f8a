FROM python:3.11-slim

# DATA_DIR is where the bot writes: relative DATABASE_URL (SQLite) and POSTMORTEMS_DIR paths resolve
# under it, so a .env copied from .env.example (sqlite:///./incidentbot.db, ./postmortems) still
# writes to the /data volume and never to /app, which the non-root user cannot write.
# RUNBOOKS_DIR/ROTATIONS_DIR default to ./runbooks and ./rotations under the WORKDIR.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/data PORT=8080

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
