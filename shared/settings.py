"""Where the servers are and what the shared resources are called. Read from BULKOPS_* variables;
each service's own settings module extends this with what only it needs."""
from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BULKOPS_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_uri: str = "mongodb://127.0.0.1:27017/?replicaSet=rs0"
    mongo_db: str = "bulkops"
    s3_endpoint: str | None = None  # None: AWS itself
    dynamodb_endpoint: str | None = None
    aws_region: str = "us-east-1"
    # None: the usual AWS credential chain (environment, profile, instance role).
    aws_access_key_id: str | None = Field(None, validation_alias=AliasChoices("BULKOPS_AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"))
    aws_secret_access_key: str | None = Field(
        None, validation_alias=AliasChoices("BULKOPS_AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")
    )
    bucket: str = "bulkops-jobs"
    users_table: str = "bulkops-users"
    log_level: str = "INFO"

    # Auth: HS256 with a shared secret (dev, tests) or RS256 with a public key (production).
    jwt_algorithm: str = "HS256"
    jwt_secret: str | None = None
    jwt_public_key_file: str | None = None
