"""A durable ingestion spool in front of chDB: capture is acknowledged once its rows are on disk.

Why: every ClickHouse statement has a fixed cost (a MergeTree insert >= 2.5 ms of CPU, the uuid
lookup ~4 ms, then merges of the small parts), so writing each request (or the few that overlap)
as it arrives caps ingestion far below what ClickHouse does with big inserts. PostHog too
acknowledges capture once the events are in Kafka, not in ClickHouse.

How: a capture request appends its validated events (`append_captured`; with
`CLICKHOUSE_SPOOL_PERSONS` off, its person-resolved rows, `append`) as one record to the current
segment file under `CLICKHOUSE_SPOOL_DIR` and waits for an fsync (one fsync covers every record
appended before it: group fsync); they stay in memory too. A flusher thread seals the segment
every `CLICKHOUSE_SPOOL_FLUSH_SECONDS` (sooner with many events or a waiting reader), resolves
the persons of all sealed requests together (`services.store_spooled`: one transaction for the
group) and writes them with `writer.write_rows` (one insert per table, the uuid dedupe across the
group and what is stored), then deletes the segment files. Persons resolve in a process of their
own where the database allows (`resolver.py`, `CLICKHOUSE_SPOOL_PERSONS_PROCESS`), pipelined: it
resolves the next group while this thread writes the last one into ClickHouse. If anything fails
the thread retries with backoff; the records stay spooled. A request that can never be stored
(its project was deleted meanwhile) is set aside in `dead/`. Past `CLICKHOUSE_SPOOL_MAX_BYTES` or
`CLICKHOUSE_SPOOL_MAX_AGE_SECONDS` of backlog, appends are refused (capture answers 503 with
Retry-After) instead of growing without bound.

- Restart: segments left by a crash are read back when the spool opens (with the process's first
  ClickHouse client) and flushed first; the uuid dedupe drops what was already stored, and the
  mirrors (persons, distinct ids, overrides) are versioned rows, so writing them twice is harmless.
  A torn last record (a crash mid-append) was never acknowledged and is skipped.
- Read-your-writes: every statement of the process's client (`get_client()`), and every API
  request other than capture (`events.middleware`), first waits until the spool is flushed up to
  that moment, so a read sees every acknowledged event, person and group; while the spooled
  records cannot be stored, they fail (after one more attempt) instead.
- Records are pickles of plain rows, written and read only by this server (trusted like the chDB
  data next to them); each record carries its length and CRC32.
- chDB only: one process owns the data directory, so one spool per directory. A ClickHouse server
  (`CLICKHOUSE_URL`, many workers) keeps the synchronous group writer.
"""
import atexit
import logging
import os
import pickle
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Optional

from django.conf import settings

from .client import ClickHouseError, json_bytes
from .resolver import UnstorableRequests
from .writer import Rows, write_rows

logger = logging.getLogger(__name__)

HEADER = struct.Struct("<II")  # record length, CRC32 of the record
SUFFIX = ".spool"
MAX_BACKOFF_SECONDS = 5.0
READ_WAIT_SECONDS = 60  # a reader waits at most this long for the spool before failing


class SpoolFull(ClickHouseError):
    """The backlog is over its bound (ClickHouse has not taken the rows for too long): retry later."""


class _Segment:
    """One spool file and the rows appended to it (kept in memory for the flusher)."""

    def __init__(self, path: Path, batches: Optional[list] = None, *, fd: Optional[int] = None):
        self.path = path
        self.fd = fd
        self.batches: list[Rows] = batches or []
        self.bytes = 0
        self.events = 0
        self.written = 0  # records written to the file
        self.synced = 0  # records known to be on disk
        self.last_seq = 0  # spool sequence number of the last record
        self.first_at: Optional[float] = None  # when its first record came (monotonic)
        self._sync_lock = threading.Lock()

    def sync(self, upto: int) -> None:
        """Make the first `upto` records durable: one fsync for everyone waiting at that moment."""
        with self._sync_lock:
            if self.synced >= upto:
                return
            target = self.written  # appends happen before, under the spool's lock
            os.fsync(self.fd)
            self.synced = target

    def close(self) -> None:
        self.sync(self.written)
        with self._sync_lock:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None


class Spool:
    def __init__(self, directory: Path, client, *, flush_seconds: float, flush_events: int, max_bytes: int,
                 max_age_seconds: float):
        self.directory = Path(directory)
        self.client = client  # a client without the read barrier (the flusher's own statements)
        self.flush_seconds = flush_seconds
        self.flush_events = flush_events
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._sealed: list[_Segment] = []  # waiting for (or being written by) the flusher, in order
        self._seq = 0  # records appended
        self._flushed = 0  # records in ClickHouse
        self._urgent = False  # a reader waits
        self._attempts = 0  # flushes started
        self._failed_attempt = 0  # the last one that failed
        self._error: Optional[BaseException] = None  # and why
        self._stopping = False
        self._flushing: Optional[int] = None  # the thread flushing now
        self.resolver = None  # the person resolution process (resolver.py), False: none
        self._in_child: list[_Segment] = []  # segments the resolver process is resolving
        self._unwritten: Optional[tuple[list[_Segment], list]] = None  # resolved, not yet in ClickHouse: (segments, rows)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._number = 0
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            self._number = max(self._number, int(path.stem))
            self._replay(path)
        self._current = self._new_segment()
        self._thread = threading.Thread(target=self._run, name="clickhouse-spool", daemon=True)
        self._thread.start()

    # --- appending (request threads) ---------------------------------------------------------

    def append(self, rows: Rows) -> None:
        """Spool one request's rows; returns once they are on disk. Raises SpoolFull (backlog over
        its bound) or ClickHouseError (the disk refused them)."""
        record = pickle.dumps((rows.persons, rows.distinct_ids, rows.overrides, rows.events), pickle.HIGHEST_PROTOCOL)
        self._append(record, rows, len(rows.events))

    def append_captured(self, team_id: int, now, events: list) -> None:
        """Spool one capture request's validated events (`services.CapturedEvent`), whose persons
        the flusher resolves; returns once they are on disk (raises as `append`)."""
        record = pickle.dumps((CAPTURED, team_id, now, [_captured_fields(event) for event in events]), pickle.HIGHEST_PROTOCOL)
        self._append(record, _Captured(team_id, now, events, record), len(events))

    def _append(self, record: bytes, item, events: int) -> None:
        with self._lock:
            self._check_backlog()
            segment = self._current
            offset = os.lseek(segment.fd, 0, os.SEEK_CUR)
            try:
                os.write(segment.fd, HEADER.pack(len(record), zlib.crc32(record)) + record)
            except OSError as error:
                os.ftruncate(segment.fd, offset)  # no torn record in front of later ones
                os.lseek(segment.fd, offset, os.SEEK_SET)
                raise ClickHouseError(f"Could not spool the events: {error}") from None
            if not segment.batches:
                segment.first_at = time.monotonic()
            segment.batches.append(item)
            segment.bytes += len(record)
            segment.events += events
            segment.written += 1
            self._seq += 1
            segment.last_seq = self._seq
            upto = segment.written
            if segment.events >= self.flush_events:
                self._changed.notify_all()
        try:
            segment.sync(upto)
        except OSError as error:
            raise ClickHouseError(f"Could not spool the events: {error}") from None

    def _check_backlog(self) -> None:
        segments = [*self._sealed, self._current]
        backlog = sum(segment.bytes for segment in segments)
        oldest = next((segment.first_at for segment in segments if segment.batches), None)
        if backlog > self.max_bytes or (oldest is not None and time.monotonic() - oldest > self.max_age_seconds):
            raise SpoolFull("The events store is behind; ingestion is paused until it catches up.")

    # --- reading (any other statement of the process) ----------------------------------------

    def wait_flushed(self, timeout: float = READ_WAIT_SECONDS) -> None:
        """Return once everything appended so far is in ClickHouse (read-your-writes). Raises
        ClickHouseError if a flush started meanwhile failed (ClickHouse refuses the rows: the
        statement fails now rather than holding its thread through the retries) or on timeout."""
        if threading.get_ident() == self._flushing:
            return  # a statement of the flush itself
        if settings.CLICKHOUSE_SPOOL_PERSONS and _holds_database_write_lock():
            return  # the flush resolves persons: it needs the write lock this thread holds until it commits
        with self._lock:
            target, attempts = self._seq, self._attempts
            if self._flushed >= target:
                return
            deadline = time.monotonic() + timeout
            while self._flushed < target and self._failed_attempt <= attempts:
                self._urgent = True  # again after every flush: with a resolver process, a group takes two
                self._changed.notify_all()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._changed.wait(remaining):
                    break
            if self._flushed < target:
                raise ClickHouseError(f"Events acknowledged by this server are not yet stored in ClickHouse: {self._error}")

    # --- flushing (the flusher thread) --------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._lock:
                deadline = time.monotonic() + (backoff or self.flush_seconds)
                while not self._stopping and not self._urgent and not (
                        not backoff and self._current.events >= self.flush_events):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._changed.wait(remaining)
                if self._stopping:
                    break
                self._urgent = False
                idle = not self._current.batches and not self._sealed
            if idle:
                _close_connections()
                continue
            if self.flush():
                backoff = 0.0
            else:
                backoff = min(MAX_BACKOFF_SECONDS, max(0.05, backoff * 2))
        _close_connections()

    def flush(self) -> bool:
        """Seal the current segment and store the sealed ones; False if that failed (they stay)."""
        with self._lock:
            if self._current.batches:
                self._sealed.append(self._current)
                self._current = self._new_segment()
            sealed = list(self._sealed)
            self._attempts += 1
            attempt = self._attempts
        if not sealed:
            return True
        self._flushing = threading.get_ident()
        try:
            for segment in sealed:
                segment.close()  # its records on disk before they reach ClickHouse
            resolver = self._resolver()
            if resolver is None:
                self._store([item for segment in sealed for item in segment.batches])
                done = sealed
            else:
                done = self._store_overlapped(resolver, sealed)
        except Exception as error:  # ClickHouse (or a database, or the disk) failed: keep everything, retry later
            logger.warning("ClickHouse spool flush failed (%d events waiting): %s",
                           sum(segment.events for segment in sealed), error)
            with self._lock:
                self._failed_attempt, self._error = attempt, error
                self._changed.notify_all()
            return False
        finally:
            self._flushing = None
        for segment in done:
            segment.path.unlink(missing_ok=True)
        with self._lock:
            if done:
                del self._sealed[: len(done)]
                self._flushed = max(self._flushed, done[-1].last_seq)
            self._changed.notify_all()
        return True

    def _store_overlapped(self, resolver, sealed: list[_Segment]) -> list[_Segment]:
        """One step of the pipeline through the resolver process; returns the segments now stored.

        The sealed segments are, in order: those resolved but not yet in ClickHouse
        (`_unwritten`, with their rows), those the child is resolving (`_in_child`), and new ones.
        The group in the child comes back resolved; the new ones go to the child before that group
        is written, so the child resolves while ClickHouse writes."""
        if self._unwritten is None and self._in_child:
            group, self._in_child = self._in_child, []
            try:
                resolved = resolver.collect()
            except UnstorableRequests:  # the child rolled back: find what cannot be stored, one at a time
                self._store([item for segment in group for item in segment.batches])
                return group
            self._unwritten = (group, resolved)
        if not self._in_child:
            ahead = len(self._unwritten[0]) if self._unwritten else 0
            waiting = sealed[ahead:]
            records = [item.record for segment in waiting for item in segment.batches if isinstance(item, _Captured)]
            if records:
                resolver.submit(records)
                self._in_child = waiting
            elif waiting and self._unwritten is None:
                self._unwritten = (waiting, [])  # rows only: nothing to resolve
        if self._unwritten is None:
            return []
        group, resolved = self._unwritten
        rows = [item for segment in group for item in segment.batches if isinstance(item, Rows)]
        write_rows(self.client, [*resolved, *rows], side_by_side=False)
        self._unwritten = None
        return group

    def _store(self, items: list) -> None:
        """Store spooled items, one step: rows as they are; capture requests after resolving their
        persons in one transaction (here, committed once ClickHouse has the rows; or in the
        resolver process, see resolver.py). A request that cannot be stored at all (its project was
        deleted meanwhile, a bug), unlike an outage, is set aside in `dead/` with the reason logged,
        so that it does not hold up everything after it."""
        captured = [item for item in items if isinstance(item, _Captured)]
        rows = [item for item in items if isinstance(item, Rows)]
        # One statement at a time: in the background nobody waits for it, and at exit no
        # thread pool is left to run them side by side.
        if not captured:
            write_rows(self.client, rows, side_by_side=False)
            return
        try:
            resolver = self._resolver()
            if resolver is not None:
                resolver.submit([item.record for item in captured])
                write_rows(self.client, [*resolver.collect(), *rows], side_by_side=False)
            else:
                from django.db import close_old_connections

                from ..services import store_spooled

                close_old_connections()  # this thread's connection, as a request would get it
                store_spooled([(item.team_id, item.now, item.events) for item in captured],
                              lambda resolved: write_rows(self.client, [*resolved, *rows], side_by_side=False))
        except Exception as error:
            if _is_outage(error):
                raise
            if len(items) > 1:
                for item in items:  # find the one(s) that cannot be stored; the others go in
                    self._store([item])
                return
            self._set_aside(items, error)

    def _resolver(self):
        if self.resolver is None:
            from .resolver import process_for

            self.resolver = process_for(self.client) or False
        return self.resolver or None

    def _set_aside(self, items: list, error: BaseException) -> None:
        logger.error("ClickHouse spool: a capture request of %d events cannot be stored, set aside in %s: %r",
                     sum(len(item.events) for item in items), self.directory / "dead", error)
        dead = self.directory / "dead"
        dead.mkdir(exist_ok=True)
        with open(dead / f"{time.time_ns()}{SUFFIX}", "wb") as file:
            for item in items:
                file.write(HEADER.pack(len(item.record), zlib.crc32(item.record)) + item.record)
            file.flush()
            os.fsync(file.fileno())

    def close(self) -> None:
        """Stop the flusher and write what is spooled (at exit; what fails stays for the next start)."""
        with self._lock:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join()
        for _ in range(3):  # through the resolver process, a group takes two steps
            if not self._sealed and not self._current.batches or not self.flush():
                break
        if self.resolver:
            self.resolver.stop()
        self._current.close()
        if not self._current.batches:
            self._current.path.unlink(missing_ok=True)

    # --- files ---------------------------------------------------------------------------------

    def _new_segment(self) -> _Segment:
        self._number += 1
        path = self.directory / f"{self._number:012d}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        _fsync_directory(self.directory)  # the new file's name survives a crash too
        return _Segment(path, fd=fd)

    def _replay(self, path: Path) -> None:
        """Queue a segment left by a previous process (its complete records) for the flusher."""
        data = path.read_bytes()
        segment = _Segment(path)
        offset = 0
        while offset + HEADER.size <= len(data):
            length, crc = HEADER.unpack_from(data, offset)
            record = data[offset + HEADER.size : offset + HEADER.size + length]
            if len(record) < length or zlib.crc32(record) != crc:
                logger.warning("ClickHouse spool %s: skipping a torn record at byte %d (never acknowledged)", path, offset)
                break
            item = _item(record)
            segment.batches.append(item)
            segment.bytes += length
            segment.events += len(item.events)
            offset += HEADER.size + length
        self._seq += 1
        segment.last_seq = self._seq
        segment.first_at = time.monotonic()
        self._sealed.append(segment)
        if segment.batches:
            logger.warning("ClickHouse spool: replaying %d events left in %s", segment.events, path)


CAPTURED = "captured"  # the first field of a capture request's record; a rows record is a 4-tuple


class _Captured:
    """A spooled capture request: its project, when it came, its validated events."""

    __slots__ = ("team_id", "now", "events", "record")

    def __init__(self, team_id: int, now, events: list, record: bytes):
        self.team_id, self.now, self.events = team_id, now, events
        self.record = record  # as spooled (what the resolver process is sent)


def _captured_fields(event) -> tuple:
    # The properties as their stored JSON: encoding it costs less than pickling the dict, and
    # decoding it than unpickling one; and what reads the record back has the text to store.
    return (str(event.uuid), event.event, event.distinct_id, json_bytes(event.properties), event.timestamp, event.session_id,
            event.process_person)


def _item(data: bytes):
    """A record read back: a capture request, or rows."""
    record = pickle.loads(data)
    if record[0] == CAPTURED:
        from ..capture import decode_json
        from ..services import CapturedEvent

        _, team_id, now, events = record
        # The uuid stays text: the ClickHouse rows take it so (a UUID would cost a parse here).
        captured = []
        for uuid, name, distinct_id, properties, *rest in events:
            if isinstance(properties, bytes):  # (records spooled before the JSON carry the dict)
                # Decoded by capture's rule, which already held for this text (no integer
                # past 64 bits turns into a float).
                captured.append(CapturedEvent(uuid, name, distinct_id, decode_json(properties), *rest,
                                              properties_json=properties.decode()))
            else:
                captured.append(CapturedEvent(uuid, name, distinct_id, properties, *rest))
        return _Captured(team_id, now, captured, data)
    persons, distinct_ids, overrides, events = record
    return Rows(persons=persons, distinct_ids=distinct_ids, overrides=overrides, events=events)


def _is_outage(error: BaseException) -> bool:
    """A failure that retrying later fixes (ClickHouse, the database or the disk away), as opposed
    to a request that cannot be stored."""
    from django.db import InterfaceError, OperationalError

    return isinstance(error, (ClickHouseError, OperationalError, InterfaceError, OSError))  # resolver.UnstorableRequests: no


def _holds_database_write_lock() -> bool:
    from django.db import connection

    from core.database import for_connection

    return connection.in_atomic_block and for_connection().transaction_holds_write_lock


def _close_connections() -> None:
    """Close this thread's Django database connections (the flusher's, while it has nothing to do:
    it opens one again on its next group, and an idle one would hold a server connection)."""
    from django.db import connections

    connections.close_all()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_spools: dict[str, Spool] = {}
_spools_lock = threading.Lock()


def is_enabled() -> bool:
    return settings.EVENTS_ENGINE == "chdb" and settings.CLICKHOUSE_SPOOL


def spool_directory(data_dir) -> Path:
    return Path(settings.CLICKHOUSE_SPOOL_DIR or f"{data_dir}-spool")


def get_spool(data_dir: str) -> Spool:
    """The process's spool in front of chDB data `data_dir` (opened, and replayed, on first use)."""
    with _spools_lock:
        spool = _spools.get(data_dir)
        if spool is None:
            from .client import ChdbClient

            spool = _spools[data_dir] = Spool(
                spool_directory(data_dir), ChdbClient(data_dir),
                flush_seconds=settings.CLICKHOUSE_SPOOL_FLUSH_SECONDS,
                flush_events=settings.CLICKHOUSE_SPOOL_FLUSH_EVENTS,
                max_bytes=settings.CLICKHOUSE_SPOOL_MAX_BYTES,
                max_age_seconds=settings.CLICKHOUSE_SPOOL_MAX_AGE_SECONDS,
            )
            if len(_spools) == 1:
                atexit.register(close_spools)  # registered after chDB's close hook, so it runs before it
        return spool


def close_spools() -> None:
    with _spools_lock:
        spools = list(_spools.values())
        _spools.clear()
    for spool in spools:
        spool.close()


def wait_for_capture() -> None:
    """Return once the capture requests this process acknowledged so far are stored, where the
    spool resolves their persons (see `events.middleware`); raises ClickHouseError as `wait_flushed`."""
    if not settings.CLICKHOUSE_SPOOL_PERSONS:
        return
    with _spools_lock:
        spools = list(_spools.values())
    for spool in spools:
        spool.wait_flushed()
