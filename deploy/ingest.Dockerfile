# bulkops ingest: the admins' HTTP API (POST /v1/bulk/users).
# Build context is the repository root:
#   docker build -f deploy/ingest.Dockerfile -t bulkops/ingest .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 bulkops \
 && useradd --system --uid 10001 --gid bulkops --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin bulkops

WORKDIR /app
COPY pyproject.toml ./
COPY shared/ shared/
COPY services/ services/
COPY bulkops/ bulkops/
# Runtime dependencies only: not the `stack` extra (embedded servers for local runs; production
# talks to real Kafka, MongoDB, S3 and DynamoDB) and not `test`.
RUN pip install --no-cache-dir . && rm -rf build ./*.egg-info

USER 10001:10001

# The settings class reads these too; keep them equal to the uvicorn flags below.
ENV BULKOPS_HOST=0.0.0.0 \
    BULKOPS_PORT=8080
EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]

CMD ["uvicorn", "services.ingest.app:app", "--host", "0.0.0.0", "--port", "8080"]
