-- hl7edge hub schema, version 1. Forward-only: never edit once released;
-- a change is a new migration file.

-- One row per record (one entry of an envelope), keyed by the record id the
-- gateway assigned at commit: a redelivered or republished record is the
-- same row (the ingest inserts with ON CONFLICT DO NOTHING).
CREATE TABLE records (
    id uuid PRIMARY KEY,
    gateway text NOT NULL,               -- org/site/id
    source text NOT NULL,                -- the gateway's interface (listener)
    message_type text NOT NULL,          -- ORU_R01, ADT_A01, ...
    control_id text NOT NULL,            -- MSH-10
    sequence bigint,                     -- per-source sequence (wire schema 3); NULL before
    received_at timestamptz NOT NULL,    -- when the gateway received the message
    message_time timestamptz,            -- MSH-7
    mapping_version text NOT NULL,       -- the mapping table that coded the record
    ingested_at timestamptz NOT NULL DEFAULT now(),
    record jsonb NOT NULL,               -- the normalized record, every field by name
    raw bytea                            -- the HL7 message, only when the interface sends it
);
CREATE INDEX records_gateway_received_at ON records (gateway, received_at);
CREATE INDEX records_message_type_received_at ON records (message_type, received_at);
CREATE INDEX records_source_sequence ON records (gateway, source, sequence)
    WHERE sequence IS NOT NULL;

-- The typed tables carry no foreign key to records: the ingest writes their
-- rows in the statement that inserts the record row, and only for a row it
-- inserted, so every record_id has its record. A foreign key's check per
-- row cost a third of the ingest's database time (measured: 2,000 records of
-- 20 observations, 935 ms with, 531 ms without). To delete records, delete
-- their typed rows in the same transaction (see the README).

-- PID-3 (and PID-2/PID-4 in old versions): who a record is about.
CREATE TABLE patient_identifiers (
    record_id uuid NOT NULL,                 -- records.id
    ordinal integer NOT NULL,            -- position in the record
    value text NOT NULL,
    authority text,                      -- CX.4 assigning authority
    kind text,                           -- CX.5 identifier type (MR, PI, ...)
    PRIMARY KEY (record_id, ordinal)
);
CREATE INDEX patient_identifiers_value ON patient_identifiers (value, authority);

-- One row per OBX of an ORU record, as typed columns.
CREATE TABLE observations (
    record_id uuid NOT NULL,                 -- records.id
    ordinal integer NOT NULL,            -- position over the whole record
    order_ordinal integer NOT NULL,      -- which OBR group (0-based)
    code_system text,                    -- the standard code's system (LN, MDC, ...); NULL when unmapped
    code text NOT NULL,                  -- the standard code, or the local one when unmapped
    display text,
    standard text NOT NULL,              -- where the standard code is: original | alternate | mapped | unmapped
    local_system text NOT NULL,          -- the code as sent (OBX-3.3) ...
    local_code text NOT NULL,            -- ... and (OBX-3.1)
    value_type text NOT NULL,            -- none | quantity | structured | coded | time | text | series
    value_num numeric,                   -- exact decimal for quantities (and plain SN)
    value_text text,                     -- the value as text for the other types
    unit text,                           -- UCUM when known, else as sent
    observed_at timestamptz,             -- OBX-14, or the OBR's OBR-7 when absent
    flags text[] NOT NULL,               -- OBX-8 abnormal flags (table 0078)
    status text NOT NULL,                -- OBX-11 (table 0085), '' when absent
    PRIMARY KEY (record_id, ordinal)
);
CREATE INDEX observations_code_observed_at ON observations (code_system, code, observed_at);

-- Heartbeats over time: the fleet's history.
CREATE TABLE heartbeats (
    gateway text NOT NULL,
    sent_at timestamptz NOT NULL,        -- the gateway's clock
    received_at timestamptz NOT NULL DEFAULT now(),
    agent_version text NOT NULL,
    uptime_s bigint NOT NULL,
    queue_depth bigint NOT NULL,
    oldest_unsent_ms bigint,
    disk_free_bytes bigint NOT NULL,
    db_bytes bigint NOT NULL,
    storage_alarm boolean NOT NULL,
    heartbeat jsonb NOT NULL,            -- every field of the heartbeat
    PRIMARY KEY (gateway, sent_at)
);

-- Payloads the ingest refused: kept with the reason, never lost.
CREATE TABLE dead_letters (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic text NOT NULL,
    reason text NOT NULL,                -- undecodable | unknown_schema | gateway_mismatch | ...
    detail text NOT NULL,
    payload bytea NOT NULL,
    payload_sha256 bytea NOT NULL,
    UNIQUE (topic, payload_sha256)       -- a redelivered payload is kept once
);

-- One row per heartbeat with Grafana's "time" column and plain numbers.
CREATE VIEW heartbeat_series AS
SELECT
    h.sent_at AS "time",
    h.gateway,
    h.agent_version,
    h.uptime_s,
    h.queue_depth,
    coalesce(h.oldest_unsent_ms, 0) / 1000.0 AS oldest_unsent_seconds,
    h.disk_free_bytes,
    h.db_bytes,
    h.storage_alarm::int AS storage_alarm,
    (h.heartbeat -> 'counters' ->> 'received')::bigint AS received,
    (h.heartbeat -> 'counters' ->> 'acknowledged')::bigint AS acknowledged,
    (h.heartbeat -> 'counters' ->> 'rejected')::bigint AS rejected,
    (h.heartbeat -> 'counters' ->> 'quarantined')::bigint AS quarantined,
    (h.heartbeat -> 'counters' ->> 'forwarded')::bigint AS forwarded,
    (h.heartbeat ->> 'broker_reconnects')::bigint AS broker_reconnects,
    (h.heartbeat ->> 'cert_days_left')::bigint AS cert_days_left,
    (h.heartbeat ->> 'clock_offset_ms')::bigint / 1000.0 AS clock_offset_seconds,
    extract(epoch FROM h.received_at - h.sent_at) AS delivery_delay_seconds
FROM heartbeats h;
