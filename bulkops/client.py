"""A small client of the bulkops REST API, as an admin's script would use it."""
from __future__ import annotations

from typing import Any

import httpx


class ClientError(Exception):
    """Something the user must act on; the message says what, without a traceback."""


class BulkopsClient:
    def __init__(self, ingest_url: str, token: str, org_id: str, timeout: float = 120.0) -> None:
        self.ingest_url = ingest_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {token}", "X-Org-ID": org_id})

    def close(self) -> None:
        self._http.close()

    def _request(self, service: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.ConnectError:
            raise ClientError(f"the {service} service is not reachable at {url} (is `bulkops dev up` running?)") from None
        except httpx.TimeoutException:
            raise ClientError(f"the {service} service at {url} did not answer in time") from None

    @staticmethod
    def _data(response: httpx.Response) -> dict[str, Any]:
        try:
            document = response.json()
        except ValueError:
            raise ClientError(f"HTTP {response.status_code} from {response.url}: {response.text[:200]}") from None
        if not document.get("success"):
            error = document.get("error", {})
            raise ClientError(f"HTTP {response.status_code} {error.get('code')}: {error.get('message')}")
        return document["data"]

    def submit(self, users: list[dict[str, Any]], options: dict[str, bool]) -> tuple[int, dict[str, Any]]:
        response = self._request("ingest", "POST", f"{self.ingest_url}/v1/bulk/users", json={"users": users, "options": options})
        return response.status_code, self._data(response)

    def job(self, status_url: str) -> dict[str, Any]:
        return self._data(self._request("jobs", "GET", status_url))

    def download(self, url: str) -> list[str]:
        try:
            response = httpx.get(url, timeout=120)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot download the results ({exc})") from None
        if response.status_code != 200:
            raise ClientError(f"downloading the results answered HTTP {response.status_code}")
        return [line for line in response.text.split("\n") if line]
