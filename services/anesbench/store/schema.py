"""DDL for the anesbench DuckDB file. Additive only: new columns get defaults."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id               VARCHAR PRIMARY KEY,
    model            VARCHAR NOT NULL,
    endpoint         VARCHAR NOT NULL,     -- without credentials
    dataset_name     VARCHAR NOT NULL,
    dataset_sha256   VARCHAR NOT NULL,
    prompt_template  VARCHAR NOT NULL,
    prompt_sha256    VARCHAR NOT NULL,
    max_tokens       INTEGER NOT NULL,
    temperature      DOUBLE NOT NULL,
    samples          INTEGER NOT NULL,
    languages        VARCHAR[] NOT NULL,
    harness_version  VARCHAR NOT NULL,
    config_hash      VARCHAR NOT NULL,     -- what a resumed run must match
    status           VARCHAR NOT NULL,     -- pending | running | completed | failed | cancelled
    total            BIGINT NOT NULL,      -- work items: items x languages x samples
    created_at       TIMESTAMP NOT NULL,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP,
    error            VARCHAR,
    ordering         VARCHAR               -- how pending work was ordered: 'history:<run ids>' | 'file'
);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS ordering VARCHAR;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS extractor_version VARCHAR DEFAULT '';
-- --limit N that cut the dataset short (NULL: every item): a partial run is never a full series' row.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS item_limit INTEGER;
-- When `anesbench prune --keep-aggregates` dropped the run's results (its counts are in run_cells since).
ALTER TABLE runs ADD COLUMN IF NOT EXISTS pruned_at TIMESTAMP;
CREATE TABLE IF NOT EXISTS results (
    run_id            VARCHAR NOT NULL,
    item_id           VARCHAR NOT NULL,
    language          VARCHAR NOT NULL,
    sample            INTEGER NOT NULL,
    level             TINYINT NOT NULL,
    answer            VARCHAR NOT NULL,
    request_hash      VARCHAR NOT NULL,    -- sha256 of model, messages, parameters and sample (for --reuse)
    response          VARCHAR,             -- raw text as the server sent it (<think> kept)
    reasoning         VARCHAR,             -- reasoning_content when the server returns it
    finish_reason     VARCHAR,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    latency_s         DOUBLE,              -- the successful attempt
    attempts          INTEGER NOT NULL,
    pred              VARCHAR,             -- extracted letter, NULL = no answer
    method            VARCHAR,             -- how the grader decided
    correct           BOOLEAN,
    error             VARCHAR,             -- set when no answer could be obtained; such rows are retried on resume
    reused_from       VARCHAR,             -- run id the response was copied from (--reuse)
    created_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, item_id, language, sample)
);
-- The counts of a run whose results were pruned, as the leaderboard and the run list read them from
-- `results` before: one row per (language, level), 'overall' included.
CREATE TABLE IF NOT EXISTS run_cells (
    run_id          VARCHAR NOT NULL,
    language        VARCHAR NOT NULL,
    level           VARCHAR NOT NULL,    -- system1 | system1.x | system2 | overall
    correct         BIGINT NOT NULL,
    total           BIGINT NOT NULL,     -- graded: correct + wrong + unanswered
    unanswered      BIGINT NOT NULL,
    errors          BIGINT NOT NULL,     -- no usable response
    done            BIGINT NOT NULL,     -- results without an error (the run list's `done`)
    failed          BIGINT NOT NULL,     -- results with an error
    done_unanswered BIGINT NOT NULL,     -- results without an error and without a letter
    mean_accuracy     DOUBLE,            -- runs with several samples only (else NULL)
    majority_accuracy DOUBLE,
    agreement         DOUBLE,
    PRIMARY KEY (run_id, language, level)
);
-- The dispatcher's own records, so that it can resume runs after a restart by itself.
CREATE TABLE IF NOT EXISTS run_specs (
    run_id   VARCHAR PRIMARY KEY,
    spec     VARCHAR NOT NULL            -- JSON: configuration and dataset reference (no API keys)
);
CREATE TABLE IF NOT EXISTS uploaded_datasets (
    sha256     VARCHAR PRIMARY KEY,      -- of the canonical JSON of the records
    name       VARCHAR NOT NULL,
    records    VARCHAR NOT NULL,         -- JSON array of AnesBench records
    created_at TIMESTAMP NOT NULL
);
"""
