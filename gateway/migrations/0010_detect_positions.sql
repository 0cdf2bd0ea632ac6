-- Anxin store, part 10: each detector snapshot records the journal position it reflects.
-- Portable SQL (SQLite >= 3.35, PostgreSQL >= 12).

-- Snapshots are written in small transactions, so that none holds the store's write lock
-- for long; a crash between two of them leaves households at different positions, and
-- the restart replays each one from its own. 0: written before positions were kept (the
-- household replays from detect_cursor, as before).
ALTER TABLE detect_households ADD COLUMN journal_id BIGINT NOT NULL DEFAULT 0;
