"""The prediction log: every served prediction, and the true outcomes (feedback) joined to it.

One table of predictions, one of feedback, in SQLite (WAL, a file in DATA_DIR) by default or
in any database SQLAlchemy reaches by URL (PostgreSQL: several server instances share one
log). A request only appends its rows to this process's queue; a `PeriodicFlusher` thread
writes them in one transaction every PREDICTION_LOG_FLUSH_MS. A slow, full or unreachable
database never delays or fails a prediction: rows that cannot be queued (the queue is full)
or written (the database refused) are dropped and counted in prediction_log_dropped_total,
the failure is logged once per flush, and the next flush tries again. Feedback is written
synchronously: an answer that says "recorded" comes after the commit.

Each process opens its own engine on first use (after gunicorn's fork), and creates the
tables if they are missing: schema set-up lives in `connect` alone. The gunicorn master calls
`prepare` once before it forks, so that workers never meet at a database still being created.
"""
import logging
import math
import os
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from model.feature_specs import FEATURES
from monitoring import metrics
from monitoring.recorder import PeriodicFlusher

log = logging.getLogger(__name__)

metadata = sa.MetaData()
PREDICTIONS = sa.Table(
    "predictions", metadata,
    sa.Column("prediction_id", sa.String(36), primary_key=True),
    sa.Column("served_at", sa.DateTime, nullable=False, index=True),  # UTC
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("predicted", sa.SmallInteger, nullable=False),
    *[sa.Column(name, sa.Float, nullable=True) for name in FEATURES],
)
FEEDBACK = sa.Table(
    "feedback", metadata,
    sa.Column("prediction_id", sa.String(36), primary_key=True),
    sa.Column("actual", sa.SmallInteger, nullable=False),
    sa.Column("observed_at", sa.DateTime, nullable=True),  # UTC, when the client observed it
    sa.Column("received_at", sa.DateTime, nullable=False),  # UTC
    sa.Column("served_at", sa.DateTime, nullable=False, index=True),  # of the prediction
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("predicted", sa.SmallInteger, nullable=False),
)
PURGE_EVERY_SECONDS = 3600
DIALECT_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def utc_now() -> datetime:
    """Now, in UTC, naive (how the tables store times)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_prediction_ids(count: int) -> list:
    """`count` new prediction ids: UUIDv7 (RFC 9562) strings of this millisecond.

    The 48-bit Unix time in milliseconds comes first, so ids sort by serving time (the log's
    index stays append-only) and tell their age (`served_time`); 74 random bits make them
    unique across processes and instances. Every id of a request carries the clock's own
    millisecond: generators that keep ids of one millisecond in order by pushing the
    timestamp forward run seconds ahead of the clock under batches of 1,000.
    """
    milliseconds = time.time_ns() // 1_000_000
    randomness = os.urandom(10 * count)
    ids = []
    for index in range(count):
        bits = int.from_bytes(randomness[10 * index:10 * index + 10], "big")  # 80 bits
        value = (milliseconds << 80) | (0x7 << 76) | ((bits >> 68) << 64) \
            | (0b10 << 62) | (bits & ((1 << 62) - 1))
        ids.append(str(uuid.UUID(int=value)))
    return ids


def served_time(prediction_id: str) -> datetime | None:
    """When a prediction was served, read from its id (a UUIDv7 carries its millisecond)."""
    digits = prediction_id.replace("-", "")
    if len(digits) != 32 or digits[12] != "7":
        return None
    try:
        milliseconds = int(digits[:12], 16)
    except ValueError:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, timezone.utc).replace(tzinfo=None)


def _sqlite_pragmas(connection, _record):
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # a commit survives a killed process
    cursor.execute("PRAGMA busy_timeout=2000")  # workers take turns writing
    cursor.close()


def create_log_engine(url: str) -> sa.Engine:
    """An engine for `url` with short timeouts: a database that hangs must not hold a worker."""
    if url.startswith("sqlite"):
        path = sa.make_url(url).database
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 2})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2,
                            pool_timeout=2, connect_args={"connect_timeout": 2,
                                                          "options": "-c statement_timeout=5000"})


def create_schema(engine: sa.Engine) -> None:
    """Create the tables and indexes that are missing; safe when several processes race.

    IF NOT EXISTS alone is not, on PostgreSQL: when two processes create the same table at
    once, the second one's catalog insert waits for the first to commit and then fails (a
    unique violation). By then the tables exist, so one more attempt finds them.
    """
    try:
        _create_missing(engine)
    except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
        _create_missing(engine)


def _create_missing(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            connection.execute(sa.schema.CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                connection.execute(sa.schema.CreateIndex(index, if_not_exists=True))


class Label(NamedTuple):
    """One piece of feedback: the true outcome of a prediction."""

    prediction_id: str
    actual: int
    observed_at: datetime | None


class Recorded(NamedTuple):
    """What became of one Label: its status and, when it is known, the prediction's facts."""

    prediction_id: str
    status: str  # recorded | already_recorded | conflict | unknown | purged
    actual: int | None = None
    recorded_actual: int | None = None  # the label already there (already_recorded, conflict)
    predicted: int | None = None
    model_version: str | None = None
    served_at: datetime | None = None


class PredictionLog:
    """This process's writer and reader of the prediction log (one per app)."""

    def __init__(self, url: str, *, log_features: bool = True, retention_days: int = 90,
                 max_pending: int = 50_000, flush_seconds: float = 0.2):
        self.url = url
        self.log_features = log_features
        self.retention = timedelta(days=retention_days)
        self.max_pending = max_pending
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()  # the queue
        self._connect_lock = threading.Lock()  # the engine and the schema
        self._pending = deque()  # row dicts, oldest first
        self._engine = self._engine_pid = None
        self._schema_ready = False
        self._flusher = self._writer_pid = None
        self._next_purge = 0.0

    # --- the request path ------------------------------------------------------------------
    def add(self, ids, served_at: datetime, model_version: str, probabilities: np.ndarray,
            classes: np.ndarray, rows: np.ndarray) -> None:
        """Queue one row per prediction; never blocks on the database."""
        self._start_writer()
        features = rows.tolist() if self.log_features else None
        new = [{"prediction_id": prediction_id, "served_at": served_at,
                "model_version": model_version, "probability": float(probability),
                "predicted": int(predicted),
                **(dict(zip(FEATURES, _nullable(features[index]))) if features else {})}
               for index, (prediction_id, probability, predicted)
               in enumerate(zip(ids, probabilities.tolist(), classes.tolist()))]
        with self._lock:
            room = self.max_pending - len(self._pending)
            self._pending.extend(new[:max(room, 0)])
        if room < len(new):
            metrics.record_log_dropped("queue_full", len(new) - max(room, 0))

    # --- the writer thread ------------------------------------------------------------------
    def _start_writer(self) -> None:
        """One flush thread per process, started by the first prediction (after any fork)."""
        if self._writer_pid == os.getpid():
            return
        with self._lock:
            if self._writer_pid != os.getpid():  # a forked child: not the parent's queue
                self._pending.clear()
                self._writer_pid = os.getpid()
                self._flusher = PeriodicFlusher(self, self.flush_seconds,
                                                on_error=metrics.FLUSH_ERRORS.inc).start()

    def flush(self) -> None:
        """Write every queued row in one transaction; on failure drop them, counted."""
        with self._lock:
            rows, self._pending = list(self._pending), deque()
        if rows:
            try:
                with self.connect().begin() as connection:
                    connection.execute(PREDICTIONS.insert(), rows)
            except sa.exc.SQLAlchemyError as exc:
                metrics.record_log_dropped("write_failed", len(rows))
                log.warning("prediction log: %d row(s) dropped, the database refused them (%s)",
                            len(rows), _brief(exc))
            else:
                metrics.record_log_written(len(rows))
        if time.monotonic() >= self._next_purge:
            self.purge()

    def stop(self) -> None:
        """Write what is queued and stop the writer (a worker about to exit)."""
        if self._writer_pid == os.getpid() and self._flusher is not None:
            self._flusher.stop()
            self._flusher = None

    def purge(self) -> None:
        """Delete the predictions and feedback older than the retention, once an hour."""
        self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
        cutoff = utc_now() - self.retention
        try:
            with self.connect().begin() as connection:
                connection.execute(FEEDBACK.delete().where(FEEDBACK.c.served_at < cutoff))
                connection.execute(PREDICTIONS.delete().where(PREDICTIONS.c.served_at < cutoff))
        except sa.exc.SQLAlchemyError as exc:
            self._next_purge = 0.0  # try again at the next flush
            log.warning("prediction log: purge failed (%s)", _brief(exc))

    def prepare(self) -> None:
        """Create the database and its tables, then close this process's connections: in the
        gunicorn master, before the workers fork. Workers that first meet at a fresh SQLite
        file race on its journal mode and tables, and the loser's first write is refused.
        A database that cannot be reached yet only logs: each process tries again."""
        try:
            self.connect()
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.warning("prediction log: the database cannot be prepared yet (%s)", _brief(exc))
        with self._connect_lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = self._engine_pid = None

    def connect(self) -> sa.Engine:
        """This process's engine, the tables created if missing (raises SQLAlchemyError)."""
        with self._connect_lock:
            if self._engine_pid != os.getpid():  # never a connection inherited through a fork
                self._engine, self._engine_pid = create_log_engine(self.url), os.getpid()
                self._schema_ready = False
            if not self._schema_ready:
                create_schema(self._engine)
                self._schema_ready = True
            return self._engine

    # --- reading ----------------------------------------------------------------------------
    def read(self, since: datetime, until: datetime | None = None, labelled_only: bool = False,
             model_version: str | None = None):
        """The predictions served in [since, until) with their labels, as a pandas DataFrame.

        Columns: every prediction column, then `actual`, `observed_at` and `received_at`
        (empty where no label arrived). Times are UTC.
        """
        import pandas as pd  # the server never reads the log this way: only the CLI and report

        join = PREDICTIONS.outerjoin(FEEDBACK, FEEDBACK.c.prediction_id
                                     == PREDICTIONS.c.prediction_id)
        query = sa.select(*PREDICTIONS.c, FEEDBACK.c.actual, FEEDBACK.c.observed_at,
                          FEEDBACK.c.received_at).select_from(join).where(
            PREDICTIONS.c.served_at >= since).order_by(PREDICTIONS.c.served_at)
        if until is not None:
            query = query.where(PREDICTIONS.c.served_at < until)
        if labelled_only:
            query = query.where(FEEDBACK.c.actual.is_not(None))
        if model_version is not None:
            query = query.where(PREDICTIONS.c.model_version == model_version)
        with self.connect().connect() as connection:
            return pd.read_sql(query, connection)

    # --- feedback ---------------------------------------------------------------------------
    def record_feedback(self, labels: list, now: datetime | None = None) -> list:
        """Store each Label once, committed before this returns; a list of Recorded in order.

        A prediction that is not in the log yet, but was served less than a few flush
        intervals ago, is waited for (its row may still be in a writer's queue).
        """
        now = now or utc_now()
        predictions = self._wait_for_predictions({label.prediction_id for label in labels}, now)
        found = [label for label in labels if label.prediction_id in predictions]
        inserted = set()
        with self.connect().begin() as connection:
            if found:
                insert = DIALECT_INSERT[connection.dialect.name](FEEDBACK)
                statement = insert.on_conflict_do_nothing(
                    index_elements=["prediction_id"]).returning(FEEDBACK.c.prediction_id)
                values = [self._feedback_row(label, predictions[label.prediction_id], now)
                          for label in _first_of_each(found)]
                inserted = {row[0] for row in connection.execute(statement, values)} \
                    if values else set()
            existing = dict(connection.execute(
                sa.select(FEEDBACK.c.prediction_id, FEEDBACK.c.actual).where(
                    FEEDBACK.c.prediction_id.in_([label.prediction_id for label in found]))
            ).all()) if found else {}
        return [self._outcome(label, predictions, existing, inserted, now) for label in labels]

    def _outcome(self, label, predictions, existing, inserted, now) -> Recorded:
        prediction = predictions.get(label.prediction_id)
        if prediction is None:
            served = served_time(label.prediction_id)
            purged = served is not None and served < now - self.retention
            return Recorded(label.prediction_id, "purged" if purged else "unknown", label.actual)
        facts = dict(predicted=prediction.predicted, model_version=prediction.model_version,
                     served_at=prediction.served_at)
        recorded = existing.get(label.prediction_id)
        if label.prediction_id in inserted:
            inserted.discard(label.prediction_id)  # a repeat later in the same list: a duplicate
            return Recorded(label.prediction_id, "recorded", label.actual, **facts)
        status = "already_recorded" if recorded == label.actual else "conflict"
        return Recorded(label.prediction_id, status, label.actual, recorded, **facts)

    @staticmethod
    def _feedback_row(label: Label, prediction, now: datetime) -> dict:
        return {"prediction_id": label.prediction_id, "actual": label.actual,
                "observed_at": label.observed_at, "received_at": now,
                "served_at": prediction.served_at, "model_version": prediction.model_version,
                "predicted": prediction.predicted}

    def _wait_for_predictions(self, ids: set, now: datetime) -> dict:
        """{id: row} of the predictions in the log, waiting a little for recent ones."""
        patience = timedelta(seconds=2 * self.flush_seconds + 1.0)
        deadline = time.monotonic() + patience.total_seconds()
        found = {}
        while True:
            with self.connect().connect() as connection:
                found.update({row.prediction_id: row for row in connection.execute(
                    sa.select(PREDICTIONS.c.prediction_id, PREDICTIONS.c.predicted,
                              PREDICTIONS.c.model_version, PREDICTIONS.c.served_at).where(
                        PREDICTIONS.c.prediction_id.in_(sorted(ids - set(found)))))})
            recent = [i for i in ids - set(found)
                      if (served_time(i) or datetime.min) > now - patience]
            if not recent or time.monotonic() >= deadline:
                return found
            time.sleep(self.flush_seconds / 4)


def _first_of_each(labels: list) -> list:
    """The first label of each prediction id, in order (a list may repeat an id)."""
    seen, first = set(), []
    for label in labels:
        if label.prediction_id not in seen:
            seen.add(label.prediction_id)
            first.append(label)
    return first


def _nullable(values: list) -> list:
    """Feature values as stored: NaN (an imputed unknown) becomes NULL."""
    return [None if isinstance(value, float) and math.isnan(value) else value for value in values]


def _brief(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]
