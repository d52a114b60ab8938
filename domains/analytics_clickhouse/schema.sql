-- analytics_clickhouse: product analytics on ClickHouse (policy.yaml `dialect: clickhouse`).
-- Projects are the tenants: every table carries project_id (projects: id). ClickHouse has no
-- foreign or primary keys; the join paths are declared in policy.yaml (`joins`).
-- Containment is ClickHouse's own: one row policy per table for the read-only role, whose users
-- are named after their project (USING project_id = currentUser()). Row policies only hold for
-- read-only users: the role gets SELECT and nothing else (docs/domain.md).

CREATE TABLE projects (
    id String,
    organization_id String,
    name String,
    timezone String
) ENGINE = MergeTree ORDER BY id;

CREATE TABLE sessions (
    project_id String,
    session_id String,
    user_id String,
    started_at DateTime
) ENGINE = MergeTree ORDER BY (project_id, started_at, session_id);

CREATE TABLE events (
    project_id String,
    legacy_project_id String,
    event_id String,
    session_id String,
    user_id String,
    event_name String,
    cohort_id String,
    country LowCardinality(String),
    platform LowCardinality(String),
    event_time DateTime
) ENGINE = MergeTree ORDER BY (project_id, event_time, event_name);

-- the same events, sampleable by user (SELECT ... FROM events_sampled SAMPLE 0.1)
CREATE TABLE events_sampled (
    project_id String,
    legacy_project_id String,
    event_id String,
    session_id String,
    user_id String,
    event_name String,
    cohort_id String,
    country LowCardinality(String),
    platform LowCardinality(String),
    event_time DateTime
) ENGINE = MergeTree ORDER BY (project_id, cityHash64(user_id), event_time)
  SAMPLE BY cityHash64(user_id);

-- events_sampled is filled from events on insert: its columns are lineage of events' columns
CREATE MATERIALIZED VIEW events_sampled_feed TO events_sampled AS
SELECT project_id, legacy_project_id, event_id, session_id, user_id, event_name, cohort_id,
       country, platform, event_time
FROM events;

-- the cluster-wide front of events: reads the shards' local events tables
CREATE TABLE events_distributed AS events
  ENGINE = Distributed(analytics, currentDatabase(), events, cityHash64(project_id));

-- daily rollup, filled on insert into events (days in the server's zone: UTC)
CREATE MATERIALIZED VIEW events_mv
  ENGINE = AggregatingMergeTree ORDER BY (project_id, event_name, day)
AS SELECT
    project_id,
    event_name,
    toDate(event_time) AS day,
    countState() AS events_state,
    uniqExactState(user_id) AS users_state
FROM events
GROUP BY project_id, event_name, day;

-- the read-only role of the project users (project_acme_mobile, project_beta_web, ...)
CREATE ROLE IF NOT EXISTS policystrata_readonly;
GRANT SELECT ON projects TO policystrata_readonly;
GRANT SELECT ON sessions TO policystrata_readonly;
GRANT SELECT ON events TO policystrata_readonly;
GRANT SELECT ON events_sampled TO policystrata_readonly;
GRANT SELECT ON events_distributed TO policystrata_readonly;
GRANT SELECT ON events_mv TO policystrata_readonly;

CREATE ROW POLICY project_scope_projects ON projects USING id = currentUser() TO policystrata_readonly;
CREATE ROW POLICY project_scope_sessions ON sessions USING project_id = currentUser() TO policystrata_readonly;
CREATE ROW POLICY project_scope_events ON events USING project_id = currentUser() TO policystrata_readonly;
CREATE ROW POLICY project_scope_events_sampled ON events_sampled USING project_id = currentUser() TO policystrata_readonly;
CREATE ROW POLICY project_scope_events_distributed ON events_distributed USING project_id = currentUser() TO policystrata_readonly;
CREATE ROW POLICY project_scope_events_mv ON events_mv USING project_id = currentUser() TO policystrata_readonly;
