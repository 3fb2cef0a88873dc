from shared.settings import CommonSettings


class JobsSettings(CommonSettings):
    host: str = "127.0.0.1"
    port: int = 8082
    group_id: str = "bulkops-jobs"
    download_url_ttl_seconds: int = 3600
