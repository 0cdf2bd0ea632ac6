-- Anxin store, part 9: detection snapshots this gateway could not read.
-- Portable SQL (SQLite >= 3.35, PostgreSQL >= 12).

-- A snapshot of a version this gateway does not read (written by a newer one) or that
-- does not decode is moved here before the household starts afresh, so that the next
-- snapshot cannot overwrite what the household had learned: a newer gateway, or a
-- person with `anxin`, can still recover it.
CREATE TABLE detect_snapshot_quarantine (
    household_id    TEXT NOT NULL,
    version         INTEGER NOT NULL,
    state           BYTEA NOT NULL,
    error           TEXT NOT NULL,
    quarantined_ms  BIGINT NOT NULL,
    PRIMARY KEY (household_id, quarantined_ms)
);
