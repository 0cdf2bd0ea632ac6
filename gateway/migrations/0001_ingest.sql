-- Anxin store, part 1: the registry and the event journal.
-- Portable SQL: runs unchanged on SQLite (>= 3.35) and PostgreSQL (>= 12).
-- Times are BIGINT milliseconds since the Unix epoch (UTC); ids are TEXT.

CREATE TABLE households (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    address     TEXT NOT NULL DEFAULT '',
    created_ms  BIGINT NOT NULL
);

CREATE TABLE devices (
    id            TEXT PRIMARY KEY,
    household_id  TEXT REFERENCES households (id),
    kind          TEXT NOT NULL,
    room          TEXT,
    created_ms    BIGINT NOT NULL
);
CREATE INDEX devices_household ON devices (household_id);

-- Every accepted device event, exactly once per (device, boot, seq).
CREATE TABLE events (
    journal_id    BIGINT PRIMARY KEY,
    device_id     TEXT NOT NULL,
    boot          BIGINT NOT NULL,
    seq           BIGINT NOT NULL,
    household_id  TEXT,
    kind          TEXT NOT NULL,
    event_ms      BIGINT NOT NULL,
    received_ms   BIGINT NOT NULL,
    body          TEXT NOT NULL,
    UNIQUE (device_id, boot, seq)
);
CREATE INDEX events_household_time ON events (household_id, event_ms);

-- Per device and boot epoch: the highest contiguous committed seq (what the
-- application-level ack says) and the estimated offset of an uptime clock.
CREATE TABLE device_seq (
    device_id        TEXT NOT NULL,
    boot             BIGINT NOT NULL,
    contig           BIGINT NOT NULL,
    clock_offset_ms  BIGINT,
    PRIMARY KEY (device_id, boot)
);

-- Latest health of each device, folded from heartbeats and status messages.
CREATE TABLE device_health (
    device_id     TEXT PRIMARY KEY,
    last_seen_ms  BIGINT NOT NULL,
    boot          BIGINT NOT NULL,
    last_seq      BIGINT NOT NULL,
    battery_pct   INTEGER,
    battery_mv    INTEGER,
    rssi_dbm      INTEGER,
    fw            TEXT,
    uptime_s      BIGINT,
    outbox        INTEGER,
    dropped       BIGINT,
    interval_s    INTEGER,
    temp_dc       INTEGER,
    online        INTEGER NOT NULL DEFAULT 0,
    status_ms     BIGINT
);
