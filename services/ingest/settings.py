from shared.settings import CommonSettings


class IngestSettings(CommonSettings):
    host: str = "127.0.0.1"
    port: int = 8081
    jobs_public_url: str = "http://127.0.0.1:8082"  # statusUrl = this + /v1/bulk/jobs/{jobId}
    max_body_bytes: int = 16 * 1024 * 1024  # 10,000 users of about 1.5 KB each
