# bulkops importer: consumes import.requested from Kafka and writes users to DynamoDB.
# Scale it out by running more replicas (one consumer group). The same image runs the one-shot
# provisioning (topics, bucket + lifecycle rule, DynamoDB table, MongoDB indexes); see
# docker-compose.yml.
# Build context is the repository root:
#   docker build -f deploy/importer.Dockerfile -t bulkops/importer .
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

CMD ["python", "-m", "services.importer"]
