"""Prometheus metrics. The names are a contract (docs/architecture.md): dashboards and alerts depend on them.

Labels carry only bounded values: model names, languages, levels, outcomes, causes, methods.
Never item ids, run ids or prompts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
# Run-level series carry the dataset and the configuration (prompt template, generation parameters
# and languages, e.g. "anesbench-cot/t0/max2048/n1/en+zh"), so that concurrent runs of one model keep
# their own series and alerts compare like with like.
RUN_LABELS = ["model", "dataset", "config"]
# Over time: the newest clean run of a model and dataset against the run before it in its series (same
# configuration), paired on their common items; language 'all' pairs across the languages of both.
DELTA_LABELS = ["model", "dataset", "language"]
MODEL_STATES = ("stopped", "queued", "starting", "ready", "stopping", "external")

# module variable -> (type, name, labels, help[, buckets]), in the order /metrics lists them
DECLARED: dict[str, tuple[Any, ...]] = {
    # --- inference (dispatcher / embedded engine)
    "INFERENCE_REQUESTS": (Counter, "anesbench_inference_requests", ["model", "outcome"],
                           "HTTP attempts to the inference server by outcome "
                           "(ok, rate_limited, server_error, timeout, connection_error, client_error)."),
    "INFERENCE_DURATION": (Histogram, "anesbench_inference_request_duration_seconds", ["model"],
                           "Wall time of one inference attempt, from send to the last byte of the answer.",
                           LATENCY_BUCKETS),
    "INFERENCE_INFLIGHT": (Gauge, "anesbench_inference_inflight", ["model"], "Inference requests currently in flight."),
    "INFERENCE_CONCURRENCY_LIMIT": (
        Gauge, "anesbench_inference_concurrency_limit", ["model"],
        "Requests the harness allows in flight to the model's endpoints (adaptive or --concurrency)."),
    "INFERENCE_RETRIES": (Counter, "anesbench_inference_retries", ["model", "cause"],
                          "Inference attempts that were retried, by cause."),
    "INFERENCE_TOKENS": (Counter, "anesbench_inference_tokens", ["model", "kind"],
                         "Tokens reported by the server (kind = prompt|completion)."),
    "INFERENCE_REUSED": (Counter, "anesbench_inference_reused", ["model"],
                         "Items answered from the store instead of the model (--reuse)."),
    # --- grading and runs
    "ITEMS_GRADED": (Counter, "anesbench_items_graded", ["model", "language", "level", "result"],
                     "Items finished, by result (correct, wrong, unanswered; error = no usable response)."),
    "RUN_ACCURACY": (Gauge, "anesbench_run_accuracy", [*RUN_LABELS, "language", "level"],
                     "Accuracy so far of the most recent run of a model, dataset and configuration "
                     "(level 'overall' included)."),
    "RUN_ITEMS": (Gauge, "anesbench_run_items", [*RUN_LABELS, "state"],
                  "Work items of the active or last run of a model, dataset and configuration by state "
                  "(total, done, failed); removed when that run is cancelled."),
    "RUN_LAST_PROGRESS": (Gauge, "anesbench_run_last_progress_timestamp_seconds", RUN_LABELS,
                          "Unix time of the last result written for the active run (0 when idle)."),
    "RUN_ACCURACY_CI_LOW": (Gauge, "anesbench_run_accuracy_ci_low", [*RUN_LABELS, "language", "level"],
                            "Lower end of the 95 % Wilson interval of anesbench_run_accuracy."),
    "RUN_ACCURACY_CI_HIGH": (Gauge, "anesbench_run_accuracy_ci_high", [*RUN_LABELS, "language", "level"],
                             "Upper end of the 95 % Wilson interval of anesbench_run_accuracy."),
    "ACCURACY_DELTA": (Gauge, "anesbench_accuracy_delta", DELTA_LABELS,
                       "Overall accuracy of the newest paired run minus that of the run before it in its series "
                       "(-1..1)."),
    "ACCURACY_DELTA_PVALUE": (Gauge, "anesbench_accuracy_delta_pvalue", DELTA_LABELS,
                              "Exact McNemar p-value of anesbench_accuracy_delta."),
    "RUNS": (Gauge, "anesbench_runs", ["state"], "Runs known to this process by state."),
    "QUEUE_DEPTH": (Gauge, "anesbench_queue_depth", ["model"], "Work items waiting to be sent to the inference server."),
    "GRADE_QUEUE_DEPTH": (Gauge, "anesbench_grade_queue_depth", [],
                          "Responses sent to the grader service and not graded yet (dispatcher)."),
    "STORE_ROWS": (Counter, "anesbench_store_rows_written", [], "Result rows written to DuckDB."),
    "STORE_FLUSH": (Histogram, "anesbench_store_flush_duration_seconds", [], "Time to write one batch of results.",
                    FAST_BUCKETS),
    "DISPATCHER_REQUESTS": (Counter, "anesbench_dispatcher_requests", ["rpc", "code"],
                            "Dispatcher RPCs by method and status code."),
    # --- grader service
    "GRADER_REQUESTS": (Counter, "anesbench_grader_requests", ["rpc", "code"], "Grader RPCs by method and status code."),
    "GRADER_ITEMS": (Counter, "anesbench_grader_items", ["method"], "Replies graded, by extraction method."),
    "GRADER_DURATION": (Histogram, "anesbench_grader_grade_duration_seconds", [],
                        "Time to extract the answer from one reply.", FAST_BUCKETS),
    "GRADER_STREAMS": (Gauge, "anesbench_grader_active_streams", [], "Open GradeStream calls."),
    # --- InferenceServices the dispatcher drives (anesbench.kube)
    "MODEL_STATE": (Gauge, "anesbench_model_state", ["model", "state"],
                    "State of an InferenceService the dispatcher uses, 1 for the current state: stopped, queued "
                    "(waiting for the GPU budget), starting, ready, stopping, external (up, not started by this "
                    "dispatcher)."),
    "MODEL_READY_WAIT": (Histogram, "anesbench_model_ready_wait_seconds", ["model"],
                         "Time a run waited for its InferenceService to become Ready (budget queue included).",
                         (0.5, 1, 5, 10, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600)),
    "MODEL_STARTS": (Counter, "anesbench_model_starts", ["model"], "On-demand InferenceServices started by the dispatcher."),
    "MODEL_QUEUED_RUNS": (Gauge, "anesbench_model_queued_runs", ["model"],
                          "Runs waiting for the GPU budget (dispatcher.gpuBudget)."),
    "GPU_BUDGET_USED": (Gauge, "anesbench_model_budget_used", [],
                        "On-demand models up or starting, counted against the GPU budget."),
}
COLLECTORS = {variable: kind(name, text, labels, **({"buckets": found[0]} if found else {}))
              for variable, (kind, name, labels, text, *found) in DECLARED.items()}
globals().update(COLLECTORS)

if TYPE_CHECKING:
    def __getattr__(name: str) -> Any:  # the collectors, as module variables (``metrics.RUNS``)
        ...


def set_delta(model: str, dataset: str, language: str, delta: float, pvalue: float) -> None:
    COLLECTORS["ACCURACY_DELTA"].labels(model, dataset, language).set(delta)
    COLLECTORS["ACCURACY_DELTA_PVALUE"].labels(model, dataset, language).set(pvalue)


def set_model_state(model: str, state: str) -> None:
    for name in MODEL_STATES:
        COLLECTORS["MODEL_STATE"].labels(model, name).set(1 if name == state else 0)
