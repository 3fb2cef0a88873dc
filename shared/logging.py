"""structlog for every service: one JSON object per line on stderr, also for the libraries'
own stdlib logging (uvicorn, FastStream, aiokafka), with whatever is bound in the context
(`service`, and `jobId`/`orgId` while a job's work runs)."""
from __future__ import annotations

import logging
import sys

import structlog

_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(ensure_ascii=False),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn configured these before the app was imported: send them through the root handler.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def library_logger(name: str) -> logging.Logger:
    """A plain stdlib logger for a library to log through (FastStream's `logger=`), so its lines
    are JSON like ours instead of its own coloured format."""
    return logging.getLogger(name)


def job_logger(job_id: str, org_id: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger("bulkops.job").bind(jobId=job_id, orgId=org_id)
