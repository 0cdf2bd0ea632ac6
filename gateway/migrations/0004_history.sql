-- Anxin store, part 4: time-series history (gateway/src/history/, docs/history.md).
-- Portable SQL: runs unchanged on SQLite (>= 3.35) and PostgreSQL (>= 12).
-- Times are BIGINT milliseconds since the Unix epoch (UTC).

-- Raw points: one row per (series, field, time). A series is a measurement with its tags
-- (household, device, room, kind); `point_id` is assigned by the history writer, dense and
-- increasing, and is also the InfluxDB spool's position (the spool is every point and
-- hourly row whose id is above the sink cursor in `history_cursor`).
CREATE TABLE history_points (
    point_id      BIGINT PRIMARY KEY,
    at_ms         BIGINT NOT NULL,
    household_id  TEXT,
    device_id     TEXT NOT NULL,
    room          TEXT,
    kind          TEXT NOT NULL,
    measurement   TEXT NOT NULL,
    field         TEXT NOT NULL,
    value         DOUBLE PRECISION NOT NULL
);
-- Review queries by household or device over a time range; pruning and per-kind queries
-- by measurement and time.
CREATE INDEX history_points_household ON history_points (household_id, at_ms);
CREATE INDEX history_points_device ON history_points (device_id, at_ms);
CREATE INDEX history_points_measurement ON history_points (measurement, at_ms);

-- Hourly activity of each household (measurement `activity`), kept longer than raw points.
-- `version` comes from the same sequence as `point_id` and is renewed whenever a late
-- event changes a closed hour, so that the sink sends the new value again.
CREATE TABLE history_hourly (
    household_id    TEXT NOT NULL,
    hour_ms         BIGINT NOT NULL,
    version         BIGINT NOT NULL,
    events          BIGINT NOT NULL,
    motion          BIGINT NOT NULL,
    door_open       BIGINT NOT NULL,
    help            BIGINT NOT NULL,
    fall            BIGINT NOT NULL,
    gas_alarm       BIGINT NOT NULL,
    active_minutes  BIGINT NOT NULL,
    PRIMARY KEY (household_id, hour_ms)
);
CREATE INDEX history_hourly_version ON history_hourly (version);
CREATE INDEX history_hourly_hour ON history_hourly (hour_ms);

-- Household hours that received points and must be (re)aggregated once closed.
CREATE TABLE history_dirty_hours (
    household_id  TEXT NOT NULL,
    hour_ms       BIGINT NOT NULL,
    PRIMARY KEY (household_id, hour_ms)
);

-- What the history last wrote for each device (heartbeats fold into this; a point is
-- written only on a meaningful change or when the last one is an hour old).
CREATE TABLE history_device_state (
    device_id    TEXT PRIMARY KEY,
    online       INTEGER,
    online_ms    BIGINT,
    battery_pct  INTEGER,
    battery_mv   INTEGER,
    rssi_dbm     INTEGER,
    temp_dc      INTEGER,
    health_ms    BIGINT
);

-- Named positions: `journal` (last events.journal_id turned into points), `next_id` (next
-- point_id / version), `sink` (last id the time-series server accepted).
CREATE TABLE history_cursor (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
