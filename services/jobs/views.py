"""The job view (read model) in MongoDB: one document per job, `_id` = jobId.

Updates are compare-and-set on a revision number, so two consumers projecting events of the
same job at once cannot overwrite each other: the loser re-reads and re-projects.
"""
from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError, PyMongoError

from shared.adapters.aws import ServerUnavailable
from shared.domain.job_view import JobEventIn, JobView, project


class JobViews:
    def __init__(self, collection: Any, endpoint: str = "") -> None:
        self._jobs = collection
        self._endpoint = endpoint

    async def get(self, job_id: str) -> JobView | None:
        try:
            document = await self._jobs.find_one({"_id": job_id})
        except PyMongoError as exc:
            raise ServerUnavailable("MongoDB (job view)", self._endpoint, exc) from exc
        return _view(document) if document else None

    async def apply(self, event: JobEventIn) -> JobView | None:
        """Project the event; return the new view, or None when it changed nothing."""
        try:
            return await self._apply(event)
        except PyMongoError as exc:
            raise ServerUnavailable("MongoDB (job view)", self._endpoint, exc) from exc

    async def _apply(self, event: JobEventIn) -> JobView | None:
        while True:
            document = await self._jobs.find_one({"_id": event.jobId})
            current = _view(document) if document else None
            updated = project(current, event)
            if updated is None:
                return None
            fields = {**updated.model_dump(mode="json"), "expiresAt": updated.expires_at}
            if document is None:
                try:
                    await self._jobs.insert_one({"_id": event.jobId, "rev": 1, **fields})
                    return updated
                except DuplicateKeyError:
                    continue
            result = await self._jobs.update_one({"_id": event.jobId, "rev": document["rev"]}, {"$set": {**fields, "rev": document["rev"] + 1}})
            if result.matched_count == 1:
                return updated


def _view(document: dict[str, Any]) -> JobView:
    return JobView.model_validate({k: v for k, v in document.items() if k not in ("_id", "rev", "expiresAt")})
