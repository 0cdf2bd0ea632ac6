-- Anxin store, part 5: provisioning, device security and health, installation tests.
-- Portable SQL (SQLite >= 3.35, PostgreSQL >= 12). Times are BIGINT ms since the Unix
-- epoch (UTC). Secrets are never stored: only their hashes.

-- What provisioning knows about a registered device (one row per `devices` row it
-- registered or gave credentials to).
CREATE TABLE device_provision (
    device_id       TEXT PRIMARY KEY REFERENCES devices (id),
    -- Serial number or MAC address as printed on the hardware.
    serial          TEXT,
    -- Zigbee2MQTT: the topic suffix after the base topic (friendly name or IEEE
    -- address); for a bridge (kind zigbee_bridge), its path ('' = the base topic).
    zigbee_name     TEXT,
    -- Embedded broker: SecretHash (SHA-256, domain-separated) of the secret, hex.
    secret_hash     TEXT,
    -- External mosquitto: the same secret as mosquitto's PBKDF2-SHA512 `$7$…` entry.
    mosquitto_hash  TEXT,
    -- 0 before the first secret; +1 at every issue or rotation.
    generation      INTEGER NOT NULL DEFAULT 0,
    issued_ms       BIGINT,
    revoked_ms      BIGINT,
    registered_ms   BIGINT NOT NULL,
    registered_by   TEXT
);
CREATE UNIQUE INDEX device_provision_serial ON device_provision (serial);
CREATE UNIQUE INDEX device_provision_zigbee ON device_provision (zigbee_name);

-- Bumped in the same transaction as every change a running gateway must apply (new
-- device, rotation, revocation, installation test): the gateway polls it.
CREATE TABLE provision_version (
    id       INTEGER PRIMARY KEY,
    version  BIGINT NOT NULL
);
INSERT INTO provision_version (id, version) VALUES (1, 0);

-- Technician work orders: offline, low battery, suspicious (self-pressing) devices,
-- dead Zigbee2MQTT bridges, devices left untested by an installation test.
CREATE TABLE work_orders (
    id            BIGINT PRIMARY KEY,
    device_id     TEXT NOT NULL,
    household_id  TEXT,
    reason        TEXT NOT NULL,
    detail        TEXT NOT NULL,
    opened_ms     BIGINT NOT NULL,
    closed_ms     BIGINT,
    closed_by     TEXT,
    resolution    TEXT
);
-- At most one open work order per device and reason.
CREATE UNIQUE INDEX work_orders_one_open ON work_orders (device_id, reason) WHERE closed_ms IS NULL;
CREATE INDEX work_orders_device ON work_orders (device_id, opened_ms);

-- Battery and signal samples (at most one per device and hour): the battery trend.
CREATE TABLE device_samples (
    device_id    TEXT NOT NULL,
    at_ms        BIGINT NOT NULL,
    battery_pct  INTEGER,
    rssi_dbm     INTEGER,
    PRIMARY KEY (device_id, at_ms)
);

-- Every help press, with what became of it: pressed (stood), cancelled (within the
-- device's window; cancel_after_ms says how soon), unattended (nobody there: household
-- out, away or in hospital), test (during an installation test).
CREATE TABLE device_presses (
    device_id        TEXT NOT NULL,
    pressed_ms       BIGINT NOT NULL,
    household_id     TEXT,
    outcome          TEXT NOT NULL,
    cancel_after_ms  BIGINT,
    PRIMARY KEY (device_id, pressed_ms)
);

-- Installation tests: one running (ended_ms NULL) per household at most.
CREATE TABLE install_tests (
    household_id  TEXT NOT NULL,
    started_ms    BIGINT NOT NULL,
    until_ms      BIGINT NOT NULL,
    ended_ms      BIGINT,
    started_by    TEXT,
    report        TEXT,
    PRIMARY KEY (household_id, started_ms)
);
CREATE UNIQUE INDEX install_tests_one_running ON install_tests (household_id) WHERE ended_ms IS NULL;
