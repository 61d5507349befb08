"""monitoring.prediction_log: rows written off the request path, dropped (counted) when the
database cannot take them, feedback stored once, old rows purged."""
import logging
import multiprocessing
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from model.feature_specs import FEATURES
from monitoring.prediction_log import (FEEDBACK, PREDICTIONS, Label, PredictionLog,
                                       create_log_engine, create_schema, new_prediction_ids,
                                       served_time, utc_now)

# the log counts into the service's metrics: they exist once an app was built
pytestmark = pytest.mark.usefixtures("app")


def counter(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def served(log, n, version="v1", classes=None, rows=None):
    """Queue `n` predictions in `log`; their ids."""
    ids = new_prediction_ids(n)
    rows = np.arange(n * len(FEATURES), dtype="float64").reshape(n, -1) if rows is None else rows
    classes = np.array(classes if classes is not None else [i % 2 for i in range(n)])
    log.add(ids, utc_now(), version, np.linspace(0.1, 0.9, n), classes, rows)
    return ids


def stored(log, table=PREDICTIONS):
    with log.connect().connect() as connection:
        return [row._asdict() for row in connection.execute(sa.select(table))]


@pytest.fixture
def sqlite_log(tmp_path):
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite3'}", flush_seconds=3600)
    yield log
    log.stop()


def test_rows_wait_for_the_flush_then_hold_every_fact_and_feature(sqlite_log):
    rows = np.full((2, len(FEATURES)), 3.0)
    rows[1, FEATURES.index("vma")] = np.nan  # an imputed unknown is stored as NULL
    ids = served(sqlite_log, 2, classes=[1, 0], rows=rows)
    assert stored(sqlite_log) == []  # queued, not written on the request path
    written = counter("prediction_log_written_total")
    sqlite_log.flush()
    by_id = {row["prediction_id"]: row for row in stored(sqlite_log)}
    assert set(by_id) == set(ids)
    first, second = by_id[ids[0]], by_id[ids[1]]
    assert (first["model_version"], first["predicted"], first["probability"]) == ("v1", 1, 0.1)
    assert second["predicted"] == 0 and second["probability"] == pytest.approx(0.9)
    assert first["vma"] == 3.0 and second["vma"] is None and second["lat"] == 3.0
    assert abs(first["served_at"] - served_time(ids[0])) < timedelta(seconds=1)
    assert counter("prediction_log_written_total") == written + 2


def test_without_features_only_the_prediction_is_stored(tmp_path):
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite3'}", log_features=False,
                        flush_seconds=3600)
    served(log, 1)
    log.flush()
    (row,) = stored(log)
    assert all(row[name] is None for name in FEATURES) and row["probability"] == 0.1


def test_a_full_queue_drops_and_counts_what_it_cannot_hold(tmp_path):
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite3'}", max_pending=3,
                        flush_seconds=3600)
    dropped = counter("prediction_log_dropped_total", reason="queue_full")
    served(log, 2)
    served(log, 2)  # one fits
    log.flush()
    assert len(stored(log)) == 3
    assert counter("prediction_log_dropped_total", reason="queue_full") == dropped + 1


def test_a_refused_write_drops_the_rows_counts_and_logs_them_and_the_next_flush_goes_on(
        tmp_path, caplog):
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite3'}", flush_seconds=3600)
    log.connect()
    with log.connect().begin() as connection:  # the table taken away: every insert fails
        connection.execute(sa.text("ALTER TABLE predictions RENAME TO predictions_away"))
    failed = counter("prediction_log_dropped_total", reason="write_failed")
    served(log, 3)
    with caplog.at_level(logging.WARNING, logger="monitoring.prediction_log"):
        log.flush()
    assert counter("prediction_log_dropped_total", reason="write_failed") == failed + 3
    assert [r.getMessage().split(",")[0] for r in caplog.records
            if "dropped" in r.getMessage()] == ["prediction log: 3 row(s) dropped"]
    with log.connect().begin() as connection:
        connection.execute(sa.text("ALTER TABLE predictions_away RENAME TO predictions"))
    ids = served(log, 1)
    log.flush()
    assert [row["prediction_id"] for row in stored(log)] == ids


def test_feedback_is_stored_once_and_a_conflict_is_reported(sqlite_log):
    ids = served(sqlite_log, 3, classes=[1, 0, 1])
    sqlite_log.flush()
    outcomes = sqlite_log.record_feedback([Label(ids[0], 1, None), Label(ids[1], 1, None),
                                           Label(ids[0], 1, None)])
    assert [o.status for o in outcomes] == ["recorded", "recorded", "already_recorded"]
    assert (outcomes[0].predicted, outcomes[0].model_version) == (1, "v1")
    again = sqlite_log.record_feedback([Label(ids[0], 1, None), Label(ids[1], 0, None)])
    assert [(o.status, o.recorded_actual) for o in again] == [("already_recorded", 1),
                                                              ("conflict", 1)]
    assert sorted((row["prediction_id"], row["actual"], row["predicted"])
                  for row in stored(sqlite_log, FEEDBACK)) == sorted([(ids[0], 1, 1),
                                                                      (ids[1], 1, 0)])


def test_unknown_ids_and_ids_older_than_the_retention(sqlite_log):
    (old,) = new_prediction_ids(1)
    assert [o.status for o in sqlite_log.record_feedback([
        Label("not-an-issued-id-00000000000000000000", 1, None), Label(old, 1, None)],
        now=utc_now() + timedelta(days=91))] == ["unknown", "purged"]


def test_feedback_for_a_prediction_still_queued_waits_for_its_row(tmp_path):
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite3'}", flush_seconds=0.05)
    ids = served(log, 1)  # the writer thread writes it within a flush interval
    started = time.monotonic()
    (outcome,) = log.record_feedback([Label(ids[0], 0, None)])
    assert outcome.status == "recorded" and time.monotonic() - started < 1.5
    log.stop()


def test_rows_older_than_the_retention_are_purged(sqlite_log):
    ids = served(sqlite_log, 2)
    sqlite_log.flush()
    sqlite_log.record_feedback([Label(ids[0], 1, None)])
    with sqlite_log.connect().begin() as connection:
        for table in (PREDICTIONS, FEEDBACK):
            connection.execute(table.update().where(table.c.prediction_id == ids[0]).values(
                served_at=utc_now() - timedelta(days=91)))
    sqlite_log.purge()  # each flush does, once an hour
    assert [row["prediction_id"] for row in stored(sqlite_log)] == [ids[1]]
    assert stored(sqlite_log, FEEDBACK) == []


@pytest.mark.integration
def test_postgresql_going_away_drops_rows_counted_and_writing_resumes(postgres_factory):
    server = postgres_factory()
    log = PredictionLog(server.url, flush_seconds=3600)
    first = served(log, 2)
    log.flush()
    server.stop()
    failed = counter("prediction_log_dropped_total", reason="write_failed")
    started = time.monotonic()
    served(log, 3)
    log.flush()
    assert time.monotonic() - started < 10, "a database that is down must fail fast"
    assert counter("prediction_log_dropped_total", reason="write_failed") == failed + 3
    server.start()
    last = served(log, 1)
    log.flush()
    assert sorted(row["prediction_id"] for row in stored(log)) == sorted(first + last)




def _first_write_after(barrier, url, results):
    log = PredictionLog(url, flush_seconds=3600)
    served(log, 1)
    barrier.wait(timeout=30)
    failed = counter("prediction_log_dropped_total", reason="write_failed")
    log.flush()
    results.put(counter("prediction_log_dropped_total", reason="write_failed") - failed)


def test_workers_forked_after_prepare_all_write_their_first_rows(tmp_path):
    """Two processes meeting at a fresh SQLite file race on its journal mode and tables (one
    first write in thirty was refused); prepared once before the fork, none is."""
    fork = multiprocessing.get_context("fork")
    for attempt in range(30):
        url = f"sqlite:///{tmp_path}/{attempt}/predictions.sqlite3"
        PredictionLog(url).prepare()
        barrier, results = fork.Barrier(2), fork.Queue()
        writers = [fork.Process(target=_first_write_after, args=(barrier, url, results))
                   for _ in range(2)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=60)
        assert [results.get(timeout=5) for _ in writers] == [0, 0], f"attempt {attempt}"
        assert len(stored(PredictionLog(url))) == 2


def test_prepare_leaves_a_wal_database_with_its_tables_and_no_connection(tmp_path):
    path = tmp_path / "data" / "predictions.sqlite3"
    log = PredictionLog(f"sqlite:///{path}")
    log.prepare()
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert set(sa.inspect(engine).get_table_names()) == {"predictions", "feedback"}
    engine.dispose()
    served(log, 1)
    log.flush()  # this process connects again on its own
    assert len(stored(log)) == 1


def test_prepare_on_an_unusable_location_only_logs(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    log = PredictionLog(f"sqlite:///{blocker}/predictions.sqlite3")
    with caplog.at_level(logging.WARNING):
        log.prepare()
    assert "cannot be prepared yet" in caplog.text

def _create_schema_after(barrier, url):
    engine = create_log_engine(url)
    engine.connect().close()  # connected before the start, so both reach CREATE together
    barrier.wait(timeout=30)
    create_schema(engine)  # an exception is the child's exit status 1


@pytest.mark.integration
def test_processes_creating_the_schema_at_once_on_postgresql_all_succeed(postgres_factory):
    server = postgres_factory()
    admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
    fork = multiprocessing.get_context("fork")
    for attempt in range(3):  # a fresh database each time: the race is on the first creation
        with admin.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE race{attempt}"))
        url = server.url.rsplit("/", 1)[0] + f"/race{attempt}"
        barrier = fork.Barrier(2)
        racers = [fork.Process(target=_create_schema_after, args=(barrier, url))
                  for _ in range(2)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=60)
        assert [racer.exitcode for racer in racers] == [0, 0], f"attempt {attempt}"
        engine = sa.create_engine(url)
        assert set(sa.inspect(engine).get_table_names()) == {"predictions", "feedback"}
        engine.dispose()
    admin.dispose()

def test_prediction_ids_are_uuid7_of_this_millisecond_and_unique():
    before = time.time_ns() // 1_000_000
    ids = new_prediction_ids(100_000)  # as 100 batches of 1,000 would ask
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    parsed = [uuid.UUID(i) for i in ids]
    assert {u.version for u in parsed} == {7} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert all(before <= u.int >> 80 <= after for u in parsed)
    assert served_time(ids[0]) == datetime.fromtimestamp(
        (parsed[0].int >> 80) / 1000, timezone.utc).replace(tzinfo=None)
