FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
# torch from PyPI is the CUDA build on Linux: it runs on the CPU too, and on a GPU with docker-compose.gpu.yml.
RUN pip install "torch>=2.4"
COPY pyproject.toml README.md ./
COPY bot bot
COPY retrieval retrieval
COPY rerank rerank
COPY store store
COPY migrations migrations
COPY admin admin
COPY evaluation evaluation
COPY sample_kb sample_kb
RUN pip install -e .
CMD ["ragbot", "demo"]
