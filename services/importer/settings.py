from shared.settings import CommonSettings


class ImporterSettings(CommonSettings):
    group_id: str = "bulkops-importer"
    chunk_rows: int = 250  # rows per read/plan/write round; one progress event each
    write_concurrency: int = 16  # BatchWriteItem calls in flight per importer
