"""DDL for the anesbench DuckDB file. Additive only: a column added after the first release is nullable, and a
file written before it gets it on opening, NULL (readers take a NULL elicit for 'off', and so on)."""

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
    ordering         VARCHAR,              -- how pending work was ordered: 'history:<run ids>' | 'file'
    extractor_version VARCHAR,             -- anesbench.grading.EXTRACTOR_VERSION of the grader (NULL read as '')
    item_limit       INTEGER,              -- --limit N that cut the dataset short, NULL: every item (a partial run)
    pruned_at        TIMESTAMP,            -- when prune --keep-aggregates dropped its results (counts in run_cells)
    elicit           VARCHAR,              -- off | unanswered | all (NULL read as off)
    elicit_prompt    VARCHAR,              -- name of the follow-up prompt
    elicit_prompt_sha256 VARCHAR,
    elicit_constraint VARCHAR,             -- what the server was found to support
    scoring          VARCHAR               -- generate | logprobs (NULL read as generate)
);
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
    pred_rules        VARCHAR,             -- the rules' letter, NULL = no answer (pred may come from elicitation)
    method_rules      VARCHAR,             -- the rules' method
    elicitation       VARCHAR,             -- NULL: not asked | pending (reply stored, follow-up not yet) | done | failed
    elicitation_params VARCHAR,            -- JSON: prompt, constraint, max_tokens, temperature of the follow-up
    elicitation_response VARCHAR,          -- the follow-up reply, raw
    elicitation_error VARCHAR,             -- why the follow-up got no reply (after retries)
    elicitation_attempts INTEGER,
    elicitation_latency_s DOUBLE,
    elicitation_prompt_tokens INTEGER,
    elicitation_completion_tokens INTEGER,
    letter_probs      VARCHAR,             -- JSON: letter -> probability over the item's letters (logprobs scoring)
    letter_probs_complete BOOLEAN,         -- false: some letter was not in the server's top list (an upper bound)
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
    elicited        BIGINT NOT NULL DEFAULT 0,  -- graded answers whose letter came from the follow-up
    rules_correct   BIGINT NOT NULL DEFAULT 0,  -- graded answers the rules alone got right
    mean_accuracy     DOUBLE,            -- runs with several samples only (else NULL)
    majority_accuracy DOUBLE,
    agreement         DOUBLE,
    brier             DOUBLE,            -- calibration (leaderboard_sql.calibration_sql); NULL: not a logprobs run
    ece               DOUBLE,            -- NULL: neither a logprobs run nor one with several samples
    reliability       STRUCT(bin INTEGER, n BIGINT, correct BIGINT, confidence DOUBLE)[],  -- per bin: items, right, Σ confidence
    PRIMARY KEY (run_id, language, level)
);
-- A completed run paired with the newest earlier clean run of its series on their common items, per
-- language and 'all' (several languages): kept when results are pruned, so the trend survives.
CREATE TABLE IF NOT EXISTS run_deltas (
    run_id      VARCHAR NOT NULL,
    base_run_id VARCHAR NOT NULL,
    language    VARCHAR NOT NULL,        -- en | zh | all
    n_pairs     BIGINT NOT NULL,
    delta       DOUBLE NOT NULL,         -- accuracy of run_id minus that of base_run_id
    ci_low      DOUBLE NOT NULL,         -- 95 % paired bootstrap interval of delta
    ci_high     DOUBLE NOT NULL,
    pvalue      DOUBLE NOT NULL,         -- exact McNemar
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, language)
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
