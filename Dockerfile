FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
# torch from PyPI is the CUDA build on Linux: it runs on the CPU too, and on a GPU with docker-compose.gpu.yml.
RUN pip install "torch>=2.4"
COPY pyproject.toml README.md ./
COPY bot bot
COPY redact redact
COPY modelhub modelhub
COPY retrieval retrieval
COPY rerank rerank
COPY store store
COPY migrations migrations
COPY admin admin
COPY evaluation evaluation
COPY sample_kb sample_kb
RUN pip install -e .
# Not root: the code stays read-only to the process; it writes only the model cache and its spool, folders it owns
# (named volumes mounted there start with this ownership).
RUN useradd --create-home --uid 10001 ragbot \
    && mkdir -p /models /app/data/spool \
    && chown -R ragbot:ragbot /models /app/data
USER ragbot
ENV HF_HOME=/models XDG_CACHE_HOME=/models/cache
EXPOSE 8000
# The Slack bot without the admin app; docker-compose.yml runs the admin app, the reranker and ingest from this
# image with their own commands.
CMD ["ragbot", "serve", "--no-admin", "--host", "0.0.0.0", "--port", "8000"]
