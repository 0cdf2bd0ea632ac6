-- Anxin store, part 3: the alert workflow — organisation, alerts and their escalation,
-- the audit trail, the notification outbox, the daily-contact ledger, visit tasks, needs.
-- Portable SQL: runs unchanged on SQLite (>= 3.35) and PostgreSQL (>= 12).
-- Times are BIGINT milliseconds since the Unix epoch (UTC); ids are TEXT made by the
-- gateway; booleans are INTEGER 0/1; days are local dates 'YYYY-MM-DD'
-- (general.timezone).

-- Organisation: district (区) → street/town (街镇) → residents' committee (居委会).
CREATE TABLE districts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE streets (
    id           TEXT PRIMARY KEY,
    district_id  TEXT REFERENCES districts (id),
    name         TEXT NOT NULL,
    created_ms   BIGINT NOT NULL
);

CREATE TABLE committees (
    id          TEXT PRIMARY KEY,
    street_id   TEXT REFERENCES streets (id),
    name        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- People who use the system. channels: comma list (wecom, dingtalk, webhook, email);
-- empty = the role's default. quiet_*: 'HH:MM' local, NULL = the configured default.
-- password_hash: set by the API (argon2); NULL = cannot log in.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL,
    committee_id   TEXT REFERENCES committees (id),
    street_id      TEXT REFERENCES streets (id),
    phone          TEXT,
    email          TEXT,
    wecom_userid   TEXT,
    channels       TEXT NOT NULL DEFAULT '',
    quiet_start    TEXT,
    quiet_end      TEXT,
    on_duty        INTEGER NOT NULL DEFAULT 0,
    active         INTEGER NOT NULL DEFAULT 1,
    password_hash  TEXT,
    created_ms     BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL
);
CREATE INDEX users_committee ON users (committee_id, role);
CREATE INDEX users_street ON users (street_id, role);

-- 包保: each household has a responsible caseworker and a backup.
ALTER TABLE households ADD COLUMN committee_id TEXT REFERENCES committees (id);
ALTER TABLE households ADD COLUMN caseworker_id TEXT REFERENCES users (id);
ALTER TABLE households ADD COLUMN backup_id TEXT REFERENCES users (id);
ALTER TABLE households ADD COLUMN risk_tags TEXT NOT NULL DEFAULT '';
ALTER TABLE households ADD COLUMN phone TEXT;
ALTER TABLE households ADD COLUMN notes TEXT NOT NULL DEFAULT '';
CREATE INDEX households_caseworker ON households (caseworker_id);
CREATE INDEX households_committee ON households (committee_id);

-- Emergency contacts (family), in order of priority.
CREATE TABLE household_contacts (
    id            TEXT PRIMARY KEY,
    household_id  TEXT NOT NULL REFERENCES households (id),
    name          TEXT NOT NULL,
    relation      TEXT NOT NULL DEFAULT '',
    phone         TEXT NOT NULL,
    priority      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX household_contacts_household ON household_contacts (household_id, priority);

-- Alerts. open_key is (household, kind[, device]) while the alert is open and NULL once
-- closed: the UNIQUE constraint keeps one open alert per household and cause.
-- The next deadlines (escalation step, repeat, arrival check) are persisted here and
-- re-read at start; version guards every change (compare-and-set).
CREATE TABLE alerts (
    id                    TEXT PRIMARY KEY,
    household_id          TEXT,
    device_id             TEXT,
    kind                  TEXT NOT NULL,
    audience              TEXT NOT NULL,
    severity              TEXT NOT NULL,
    state                 TEXT NOT NULL,
    open_key              TEXT UNIQUE,
    reason                TEXT NOT NULL,
    repeats               BIGINT NOT NULL DEFAULT 0,
    raised_ms             BIGINT NOT NULL,
    observed_ms           BIGINT,
    last_signal_ms        BIGINT NOT NULL,
    notified_ms           BIGINT,
    acknowledged_ms       BIGINT,
    acknowledged_by       TEXT,
    on_the_way_ms         BIGINT,
    on_the_way_by         TEXT,
    arrived_ms            BIGINT,
    arrived_by            TEXT,
    condition_cleared_ms  BIGINT,
    closed_ms             BIGINT,
    closed_by             TEXT,
    outcome               TEXT,
    outcome_note          TEXT,
    follow_up_due_ms      BIGINT,
    follow_up_done_ms     BIGINT,
    follow_up_by          TEXT,
    follow_up_note        TEXT,
    policy                TEXT NOT NULL,
    policy_start_ms       BIGINT NOT NULL,
    escalation_step       BIGINT NOT NULL DEFAULT 0,
    next_escalation_ms    BIGINT,
    repeat_count          BIGINT NOT NULL DEFAULT 0,
    next_repeat_ms        BIGINT,
    arrival_due_ms        BIGINT,
    arrival_realarms      BIGINT NOT NULL DEFAULT 0,
    version               BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX alerts_household ON alerts (household_id, raised_ms);
CREATE INDEX alerts_raised ON alerts (raised_ms);
CREATE INDEX alerts_closed ON alerts (closed_ms);

-- Raises applied, by episode (open key | episode_ms | severity): detection may send a
-- raise again after re-deriving its state at a restart; it changes nothing the second
-- time.
CREATE TABLE alert_episodes (
    episode_key  TEXT PRIMARY KEY,
    alert_id     TEXT NOT NULL,
    at_ms        BIGINT NOT NULL
);

-- Who has been called on for an alert, at which step.
CREATE TABLE alert_recipients (
    alert_id     TEXT NOT NULL REFERENCES alerts (id),
    user_id      TEXT NOT NULL,
    step         BIGINT NOT NULL,
    target       TEXT NOT NULL,
    notified_ms  BIGINT NOT NULL,
    PRIMARY KEY (alert_id, user_id)
);

-- Append-only audit trail: every action (and reads of household data, by the API).
CREATE TABLE audit (
    id            TEXT PRIMARY KEY,
    at_ms         BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    entity        TEXT NOT NULL,
    entity_id     TEXT NOT NULL,
    household_id  TEXT,
    detail        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_entity ON audit (entity, entity_id, at_ms);
CREATE INDEX audit_household ON audit (household_id, at_ms);

-- Notification outbox: written in the transaction of the change it reports; delivered
-- at least once by the sender lanes. state: pending, sent, failed, superseded.
CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    idempotency_key  TEXT NOT NULL,
    channel          TEXT NOT NULL,
    recipient_id     TEXT,
    recipient        TEXT,
    address          TEXT NOT NULL DEFAULT '',
    alert_id         TEXT,
    purpose          TEXT NOT NULL,
    critical         INTEGER NOT NULL DEFAULT 0,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    created_ms       BIGINT NOT NULL,
    next_attempt_ms  BIGINT NOT NULL,
    sent_ms          BIGINT,
    last_error       TEXT,
    UNIQUE (idempotency_key, channel)
);
CREATE INDEX outbox_due ON outbox (state, channel, next_attempt_ms);
CREATE INDEX outbox_alert ON outbox (alert_id);

-- Daily contact ledger (一日三问 台账).
CREATE TABLE contacts (
    id            TEXT PRIMARY KEY,
    household_id  TEXT NOT NULL REFERENCES households (id),
    user_id       TEXT NOT NULL,
    day           TEXT NOT NULL,
    at_ms         BIGINT NOT NULL,
    method        TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    note          TEXT NOT NULL DEFAULT '',
    created_ms    BIGINT NOT NULL
);
CREATE INDEX contacts_day ON contacts (day, household_id);
CREATE INDEX contacts_household ON contacts (household_id, at_ms);

-- Visit tasks: no answer and no sign of life today → someone goes to the door.
-- state: open, done, cancelled.
CREATE TABLE visit_tasks (
    id            TEXT PRIMARY KEY,
    household_id  TEXT NOT NULL REFERENCES households (id),
    assignee_id   TEXT,
    day           TEXT NOT NULL,
    reason        TEXT NOT NULL,
    contact_id    TEXT,
    state         TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    done_ms       BIGINT,
    done_by       TEXT,
    note          TEXT
);
CREATE INDEX visit_tasks_assignee ON visit_tasks (assignee_id, state);
CREATE INDEX visit_tasks_household ON visit_tasks (household_id, state);

-- Needs list (需求名单库). status: open, assigned, fulfilled, cancelled.
CREATE TABLE needs (
    id                 TEXT PRIMARY KEY,
    household_id       TEXT NOT NULL REFERENCES households (id),
    category           TEXT NOT NULL,
    description        TEXT NOT NULL,
    status             TEXT NOT NULL,
    source_contact_id  TEXT,
    source_alert_id    TEXT,
    created_ms         BIGINT NOT NULL,
    created_by         TEXT NOT NULL,
    assignee_id        TEXT,
    due_ms             BIGINT,
    fulfilled_ms       BIGINT,
    fulfilled_by       TEXT,
    outcome_note       TEXT,
    updated_ms         BIGINT NOT NULL
);
CREATE INDEX needs_household ON needs (household_id, status);
CREATE INDEX needs_status ON needs (status, created_ms);

-- Daily jobs done (morning list, end-of-day list), so that a restart neither skips nor
-- repeats one.
CREATE TABLE workflow_jobs (
    job      TEXT NOT NULL,
    day      TEXT NOT NULL,
    done_ms  BIGINT NOT NULL,
    PRIMARY KEY (job, day)
);
