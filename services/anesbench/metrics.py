"""Prometheus metrics. The names are a contract (docs/architecture.md): dashboards and alerts depend on them.

Labels carry only bounded values: model names, languages, levels, outcomes, causes, methods.
Never item ids, run ids or prompts.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)

# --- inference (dispatcher / embedded engine) -------------------------------------------------
INFERENCE_REQUESTS = Counter(
    "anesbench_inference_requests",
    "HTTP attempts to the inference server by outcome "
    "(ok, rate_limited, server_error, timeout, connection_error, client_error).",
    ["model", "outcome"],
)
INFERENCE_DURATION = Histogram(
    "anesbench_inference_request_duration_seconds",
    "Wall time of one inference attempt, from send to the last byte of the answer.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
INFERENCE_INFLIGHT = Gauge(
    "anesbench_inference_inflight", "Inference requests currently in flight.", ["model"]
)
INFERENCE_CONCURRENCY_LIMIT = Gauge(
    "anesbench_inference_concurrency_limit",
    "Requests the harness allows in flight to the model's endpoints (adaptive or --concurrency).",
    ["model"],
)
INFERENCE_RETRIES = Counter(
    "anesbench_inference_retries", "Inference attempts that were retried, by cause.", ["model", "cause"]
)
INFERENCE_TOKENS = Counter(
    "anesbench_inference_tokens", "Tokens reported by the server (kind = prompt|completion).", ["model", "kind"]
)
INFERENCE_REUSED = Counter(
    "anesbench_inference_reused", "Items answered from the store instead of the model (--reuse).", ["model"]
)

# --- grading and runs ---------------------------------------------------------------------------
ITEMS_GRADED = Counter(
    "anesbench_items_graded",
    "Items finished, by result (correct, wrong, unanswered; error = no usable response).",
    ["model", "language", "level", "result"],
)
# Run-level series carry the dataset and the configuration (prompt template, generation parameters
# and languages, e.g. "anesbench-cot/t0/max2048/n1/en+zh"), so that concurrent runs of one model keep
# their own series and alerts compare like with like.
RUN_LABELS = ["model", "dataset", "config"]
RUN_ACCURACY = Gauge(
    "anesbench_run_accuracy",
    "Accuracy so far of the most recent run of a model, dataset and configuration (level 'overall' included).",
    [*RUN_LABELS, "language", "level"],
)
RUN_ITEMS = Gauge(
    "anesbench_run_items",
    "Work items of the active or last run of a model, dataset and configuration by state (total, done, failed); "
    "removed when that run is cancelled.",
    [*RUN_LABELS, "state"],
)
RUN_LAST_PROGRESS = Gauge(
    "anesbench_run_last_progress_timestamp_seconds",
    "Unix time of the last result written for the active run (0 when idle).",
    RUN_LABELS,
)
RUN_ACCURACY_CI_LOW = Gauge(
    "anesbench_run_accuracy_ci_low", "Lower end of the 95 % Wilson interval of anesbench_run_accuracy.",
    [*RUN_LABELS, "language", "level"],
)
RUN_ACCURACY_CI_HIGH = Gauge(
    "anesbench_run_accuracy_ci_high", "Upper end of the 95 % Wilson interval of anesbench_run_accuracy.",
    [*RUN_LABELS, "language", "level"],
)
# Over time: the newest clean run of a model and dataset against the run before it in its series (same
# configuration), paired on their common items; language 'all' pairs across the languages of both.
DELTA_LABELS = ["model", "dataset", "language"]
ACCURACY_DELTA = Gauge(
    "anesbench_accuracy_delta",
    "Overall accuracy of the newest paired run minus that of the run before it in its series (-1..1).",
    DELTA_LABELS,
)
ACCURACY_DELTA_PVALUE = Gauge(
    "anesbench_accuracy_delta_pvalue", "Exact McNemar p-value of anesbench_accuracy_delta.", DELTA_LABELS,
)
RUNS = Gauge("anesbench_runs", "Runs known to this process by state.", ["state"])
QUEUE_DEPTH = Gauge(
    "anesbench_queue_depth", "Work items waiting to be sent to the inference server.", ["model"]
)
GRADE_QUEUE_DEPTH = Gauge(
    "anesbench_grade_queue_depth", "Responses sent to the grader service and not graded yet (dispatcher)."
)
STORE_ROWS = Counter("anesbench_store_rows_written", "Result rows written to DuckDB.")
STORE_FLUSH = Histogram(
    "anesbench_store_flush_duration_seconds", "Time to write one batch of results.", buckets=FAST_BUCKETS
)

DISPATCHER_REQUESTS = Counter(
    "anesbench_dispatcher_requests", "Dispatcher RPCs by method and status code.", ["rpc", "code"]
)

# --- grader service -----------------------------------------------------------------------------
GRADER_REQUESTS = Counter(
    "anesbench_grader_requests", "Grader RPCs by method and status code.", ["rpc", "code"]
)
GRADER_ITEMS = Counter(
    "anesbench_grader_items", "Replies graded, by extraction method.", ["method"]
)
GRADER_DURATION = Histogram(
    "anesbench_grader_grade_duration_seconds",
    "Time to extract the answer from one reply.",
    buckets=FAST_BUCKETS,
)
GRADER_STREAMS = Gauge("anesbench_grader_active_streams", "Open GradeStream calls.")


# --- InferenceServices the dispatcher drives (anesbench.kube) ------------------------------------
MODEL_STATES = ("stopped", "queued", "starting", "ready", "stopping", "external")
MODEL_STATE = Gauge(
    "anesbench_model_state",
    "State of an InferenceService the dispatcher uses, 1 for the current state: stopped, queued (waiting "
    "for the GPU budget), starting, ready, stopping, external (up, not started by this dispatcher).",
    ["model", "state"],
)
MODEL_READY_WAIT = Histogram(
    "anesbench_model_ready_wait_seconds",
    "Time a run waited for its InferenceService to become Ready (budget queue included).",
    ["model"],
    buckets=(0.5, 1, 5, 10, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600),
)
MODEL_STARTS = Counter(
    "anesbench_model_starts", "On-demand InferenceServices started by the dispatcher.", ["model"]
)
MODEL_QUEUED_RUNS = Gauge(
    "anesbench_model_queued_runs", "Runs waiting for the GPU budget (dispatcher.gpuBudget).", ["model"]
)
GPU_BUDGET_USED = Gauge(
    "anesbench_model_budget_used", "On-demand models up or starting, counted against the GPU budget."
)


def set_delta(model: str, dataset: str, language: str, delta: float, pvalue: float) -> None:
    ACCURACY_DELTA.labels(model, dataset, language).set(delta)
    ACCURACY_DELTA_PVALUE.labels(model, dataset, language).set(pvalue)


def set_model_state(model: str, state: str) -> None:
    for name in MODEL_STATES:
        MODEL_STATE.labels(model, name).set(1 if name == state else 0)
