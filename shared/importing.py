"""The service layer of an import, shared by both paths (ingest's synchronous one for < 100 users
and the importer's background jobs), so the same rows always give the same results.

Rows go through in chunks: validate, read what the store knows of the chunk's users and emails,
apply the rows in input order (`ImportPlan`), write at most one item per key in 25-item batches,
then request welcome emails. The next chunk's reads overlap the current chunk's writes; that is
safe because a chunk only reads keys no earlier row has touched. The next chunk's writes overlap
too, unless its rows depend on a key the current chunk writes.
"""
from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol, Sequence

from .domain.model import DeleteEmailClaim, ImportOptions, PendingWrite, PutEmailClaim, PutUser, Write
from .domain.user_import import ImportPlan, Lookup, RowOutcome, failed_row
from .domain.validation import RowError, UserRow, validate_user
from .events import Counts, Event, WelcomeEmailRequested, utc_now
from .adapters.user_store import UserStore

DEFAULT_CHUNK_ROWS = 250
CHUNKS_IN_FLIGHT = 2  # chunks whose writes may be on their way to the store at once (3 measured no faster)
SMALL_ORG_RECORDS = 2_000  # up to this many stored records, an import reads the whole org once
WRITE_FAILED = RowError("WRITE_FAILED", "the user store did not accept the write after retries", None)


class EventPublisher(Protocol):
    async def publish(self, event: Event) -> None: ...


class ChunkLog(Protocol):
    """Where an import keeps the outcomes of its finished chunks (see JobChunkLog)."""

    async def recorded(self) -> dict[range, list[RowOutcome]]: ...

    async def record(self, rows: range, outcomes: list[RowOutcome]) -> None: ...


@dataclass
class ImportResult:
    outcomes: list[RowOutcome] = field(default_factory=list)
    _tally: dict[str, int] = field(default_factory=lambda: {"created": 0, "updated": 0, "skipped": 0, "failed": 0})

    def add(self, outcomes: list[RowOutcome]) -> None:
        # Counted as they come: progress is reported after every chunk.
        self.outcomes.extend(outcomes)
        for outcome in outcomes:
            self._tally[outcome.status] += 1

    @property
    def counts(self) -> Counts:
        return Counts(processed=len(self.outcomes), **self._tally)


@dataclass(frozen=True)
class ImportRun:
    org_id: str
    job_ref: str  # a job id, or a request id on the synchronous path
    options: ImportOptions


@dataclass
class _OrgCensus:
    """This import's view of its org's census (see UserStore.small_org). Once the census is over
    the small-org limit it stays there (it is never lowered), so raising it further would change
    no decision: those writes are skipped."""

    org_id: str
    over_limit: bool = False
    # Two chunks in flight count one after the other, so the second sees whether the first's count
    # took the org past the limit.
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def count(self, store: UserStore, new_records: int) -> None:
        async with self._turn:
            if new_records and not self.over_limit:
                self.over_limit = await store.count_new_records(self.org_id, new_records) > SMALL_ORG_RECORDS


@dataclass
class _ChunkInFlight:
    """A chunk whose rows are applied and whose writes are on their way to the store."""

    span: range
    rows: list[tuple[int, UserRow | RowError]]
    outcomes: dict[int, RowOutcome]
    writes: list[PendingWrite]
    writing: asyncio.Future  # of _write_in_order

    def writes_any_of(self, keys: set[tuple[str, str]]) -> bool:
        return any(w.write.key in keys for w in self.writes)


async def import_users(
    run: ImportRun,
    users: Sequence[Any],
    store: UserStore,
    publisher: EventPublisher,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[Counts], Awaitable[None]] | None = None,
    chunk_log: ChunkLog | None = None,
) -> ImportResult:
    plan = ImportPlan(run.job_ref, run.options)
    chunks = [range(start, min(start + chunk_rows, len(users))) for start in range(0, len(users), chunk_rows)]
    # A re-delivery replays the chunks an earlier delivery finished (they are finished in order, so
    # they are the first ones) and applies only the rest.
    recorded = await chunk_log.recorded() if chunk_log is not None else {}
    replayed = next((n for n, rows in enumerate(chunks) if rows not in recorded), len(chunks))
    # Reading a small org whole replaces many per-chunk reads; for one chunk it would not pay.
    small_org = await store.small_org(run.org_id, SMALL_ORG_RECORDS) if len(users) > chunk_rows else None
    if small_org is not None:
        plan.learn_all(*small_org)
    census = _OrgCensus(run.org_id, over_limit=len(users) > chunk_rows and small_org is None)
    result = ImportResult()
    welcome_done = await store.welcome_sent_through(run.org_id, run.job_ref) if run.options.sendWelcomeEmail else -1

    def validated(rows: range) -> list[tuple[int, UserRow | RowError]]:
        return [(i, validate_user(users[i])) for i in rows]

    async def load(lookup: Lookup) -> None:
        if lookup:
            plan.learn(*await store.load(run.org_id, lookup.user_ids, lookup.email_keys))

    def valid(rows: list[tuple[int, UserRow | RowError]]) -> list[tuple[int, UserRow]]:
        return [(i, r) for i, r in rows if isinstance(r, UserRow)]

    async def finish(chunk: _ChunkInFlight) -> None:
        failed_keys, unreleased = await chunk.writing
        if failed_keys or unreleased:
            # What the plan believed of these keys is wrong now: read the store's truth again
            # before later rows build on it.
            stale = failed_keys | unreleased
            for key in stale:
                plan.forget(key)
            await load(Lookup(frozenset(n for k, n in stale if k == "user"), frozenset(n for k, n in stale if k == "email")))
            for i in _rows_of(chunk.writes, failed_keys):
                o = chunk.outcomes[i]
                chunk.outcomes[i] = RowOutcome(i, "failed", o.user_id, o.email, WRITE_FAILED)
        await report(chunk.span, [chunk.outcomes[i] for i, _ in chunk.rows], record=chunk_log is not None)

    # What follows a finished chunk (recording its outcomes, welcome emails, a progress event) runs
    # behind the import, so the store's writes do not wait for it; but at most one chunk behind, so
    # that a crash leaves at most three chunks unrecorded (two in flight, one being recorded).
    reporting: asyncio.Future | None = None

    async def report(span: range, chunk_outcomes: list[RowOutcome], record: bool) -> None:
        nonlocal reporting
        if reporting is not None:
            await reporting
        result.add(chunk_outcomes)
        reporting = asyncio.ensure_future(report_chunk(span, chunk_outcomes, result.counts, record))

    async def report_chunk(span: range, chunk_outcomes: list[RowOutcome], counts: Counts, record: bool) -> None:
        nonlocal welcome_done
        if record:
            await chunk_log.record(span, chunk_outcomes)  # type: ignore[union-attr]
        if run.options.sendWelcomeEmail:
            welcome_done = await _request_welcome_emails(run, chunk_outcomes, welcome_done, store, publisher)
        if on_progress is not None:
            await on_progress(counts)

    for rows in chunks[:replayed]:
        await report(rows, recorded[rows], record=False)
    chunks = chunks[replayed:]

    # Several chunks at a time: one chunk's rows are read and applied while earlier chunks' writes
    # are in flight, so the store is never idle waiting on our CPU or on a chunk's last small write
    # rounds. A chunk whose rows depend on a key an earlier chunk writes waits for those writes
    # first: if one fails, the plan must learn the store's truth before building on it.
    current = validated(chunks[0]) if chunks else []
    reading = asyncio.ensure_future(load(plan.lookup_for(valid(current))))
    in_flight: deque[_ChunkInFlight] = deque()
    try:
        for number in range(len(chunks)):
            await reading
            await load(plan.owners_to_load())
            read_keys = plan.keys_read_by(valid(current))
            while any(c.writes_any_of(read_keys) for c in in_flight):
                await finish(in_flight.popleft())
            now = utc_now()
            outcomes = {
                i: plan.apply(i, r, now) if isinstance(r, UserRow) else failed_row(i, users[i], r) for i, r in current
            }
            writes = plan.take_writes()
            in_flight.append(_ChunkInFlight(chunks[number], current, outcomes, writes, asyncio.ensure_future(_write_in_order(census, writes, store))))
            following = validated(chunks[number + 1]) if number + 1 < len(chunks) else []
            reading = asyncio.ensure_future(load(plan.lookup_for(valid(following))))
            if len(in_flight) == CHUNKS_IN_FLIGHT:
                await finish(in_flight.popleft())
            current = following
        while in_flight:
            await finish(in_flight.popleft())
        await reading
        if reporting is not None:
            await reporting
    finally:
        # A failed chunk must not leave reads, writes or reports running behind the failure it reports.
        reading.cancel()
        for chunk in in_flight:
            chunk.writing.cancel()
        if reporting is not None:
            reporting.cancel()  # nothing to do once it is done
            if reporting.done() and not reporting.cancelled():
                reporting.exception()  # retrieved: the failure the import reports is the first one met
    return result


def _rows_of(writes: list[PendingWrite], keys: set[tuple[str, str]]) -> set[int]:
    return {i for w in writes if w.write.key in keys for i in w.rows}


def _failing(writes: list[PendingWrite], refused: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The keys to put back when these writes were refused: a row fails when any write it needs
    does not land, and then every other write that carries it must not stand either, which can
    fail more rows (a new user taking the email another user gives up fails with that user)."""
    failing = set(refused)
    while True:
        rows = _rows_of(writes, failing)
        grown = failing | {w.write.key for w in writes if w.rows & rows}
        if grown == failing:
            return failing
        failing = grown


def _parse_keys(keys: set[str]) -> set[tuple[str, str]]:
    return {tuple(k.split("#", 1)) for k in keys}  # type: ignore[misc]


async def _write_in_order(
    census: _OrgCensus, writes: list[PendingWrite], store: UserStore
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Write so that a user record and its email claim never disagree, in as few round trips as
    that allows. New users go with their claims in one round; an existing user taking a new email
    waits until the email is claimed; old emails are released last. Rows whose writes did not all
    land fail (see _failing), and what had landed of their writes is put back as it was before
    the chunk. Returns the keys whose rows fail, and those of releases that did not land."""
    org_id = census.org_id

    async def send(batch: list[Write]) -> set[tuple[str, str]]:
        return _parse_keys(await store.write(org_id, batch))

    claims = [w for w in writes if isinstance(w.write, PutEmailClaim)]
    users = [w for w in writes if isinstance(w.write, PutUser)]
    releases = [w for w in writes if isinstance(w.write, DeleteEmailClaim)]
    claim_rows = _rows_of(claims, {w.write.key for w in claims})
    first: list[PendingWrite] = []
    waiting: list[PendingWrite] = []
    for w in users:
        (first if w.adds_record or not w.rows & claim_rows else waiting).append(w)
    # Records this round may add (new users, claims of free emails) are counted first: see small_org.
    await census.count(store, sum(1 for w in claims + first if w.adds_record))
    refused = await send([w.write for w in claims + first])
    late = [w for w in waiting if w.write.key not in _failing(writes, refused)]
    refused |= await send([w.write for w in late])
    failing = _failing(writes, refused)
    landed = [w for w in claims + first + late if w.write.key in failing - refused]
    released = [w for w in releases if w.write.key not in failing]
    # Users are put back first; then the claims, except the one on an email a user kept because
    # its put-back was refused: that claim must go on naming it.
    users_back = [w for w in landed if isinstance(w.write, PutUser)]
    left = await send([w.undo for w in users_back] + [w.write for w in released])
    kept = {("email", w.write.user.email.lower()) for w in users_back if w.write.key in left and w.write.user.email}
    await send([w.undo for w in landed if isinstance(w.write, PutEmailClaim) and w.write.key not in kept])
    # A release that did not land leaves a stale claim, which reads treat as free (ImportPlan._owner):
    # the user's change is stored, so its rows stand; only the plan must re-read that key. Every
    # key of `failing` is re-read too, whether or not its put-back landed.
    return failing, left & {w.write.key for w in released}


async def _request_welcome_emails(
    run: ImportRun, outcomes: list[RowOutcome], done_through: int, store: UserStore, publisher: EventPublisher
) -> int:
    """One event per created user with an email; the store remembers how far this import got, so a
    re-delivered import does not ask twice."""
    owed = [o for o in outcomes if o.welcome and o.status == "created" and o.index > done_through]
    if not owed:
        return done_through
    await asyncio.gather(
        *(publisher.publish(WelcomeEmailRequested.for_user(run.org_id, o.user_id, o.email, run.job_ref)) for o in owed)
    )
    last = outcomes[-1].index
    await store.mark_welcome_sent(run.org_id, run.job_ref, last)
    return last
