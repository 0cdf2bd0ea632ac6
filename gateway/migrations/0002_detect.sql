-- Anxin store, part 2: detection state.
-- Portable SQL (SQLite >= 3.35, PostgreSQL >= 12). BYTEA has BLOB affinity in SQLite.

-- Each household's detector state (learned routine, silences, alerts raised), written
-- every few seconds; with the journal position below it restores the detector exactly.
CREATE TABLE detect_households (
    household_id  TEXT PRIMARY KEY,
    state         BYTEA NOT NULL,
    updated_ms    BIGINT NOT NULL
);

-- The last journal position (events.journal_id) reflected in detect_households.
CREATE TABLE detect_cursor (
    id          INTEGER PRIMARY KEY,
    journal_id  BIGINT NOT NULL
);

-- Household modes set by people (away, in hospital, installation test), with their end.
CREATE TABLE household_modes (
    household_id  TEXT PRIMARY KEY,
    mode          TEXT NOT NULL,
    until_ms      BIGINT,
    set_by        TEXT,
    set_ms        BIGINT NOT NULL
);

-- Per-household detection overrides (wake cap, sleep window, bathroom limit …), JSON.
CREATE TABLE household_settings (
    household_id  TEXT PRIMARY KEY,
    settings      TEXT NOT NULL,
    updated_ms    BIGINT NOT NULL
);
