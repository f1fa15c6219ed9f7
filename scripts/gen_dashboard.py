#!/usr/bin/env python3
"""Generate the AnesBench Grafana dashboard with grafana-foundation-sdk.

The JSON is committed at charts/anesbench/dashboards/anesbench.json and shipped by the chart in a
ConfigMap labelled for Grafana's dashboard sidecar. Edit this file, never the JSON:

    .venv/bin/python scripts/gen_dashboard.py            # rewrite the committed JSON
    .venv/bin/python scripts/gen_dashboard.py --check    # exit 1 if the JSON is out of date

Every query reads the metrics of services/anesbench/metrics.py, plus SGLang's own `sglang:*`
metrics (label `model_name`, which the chart sets to the model's name with --served-model-name).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "charts" / "anesbench" / "dashboards" / "anesbench.json"

UID = "anesbench-overview"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")

# Label matchers every anesbench query carries; SGLang names the model label `model_name`.
OURS = 'namespace=~"$namespace", model=~"$model"'
OURS_NS = 'namespace=~"$namespace"'
SGLANG = 'namespace=~"$namespace", model_name=~"$model"'
RATE = "$__rate_interval"
BAND_HIGH, BAND_LOW = " 95% high", " 95% low"  # legend suffixes of the accuracy band's edges


def query(expr: str, legend: str, ref_id: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).datasource(DATASOURCE)


def queries(*pairs: tuple[str, str]) -> list[prometheus.Dataquery]:
    return [query(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def series(
    title: str,
    description: str,
    targets: Iterable[prometheus.Dataquery],
    unit: str,
    *,
    width: int = 12,
    stacked: bool = False,
    min_value: float | None = 0,
    max_value: float | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(targets))
        .unit(unit)
        .height(8)
        .span(width)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    return panel


def single(
    title: str, description: str, target: prometheus.Dataquery, unit: str, width: int = 6
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target)
        .unit(unit)
        .height(5)
        .span(width)
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def accuracy_bars(title: str, description: str, target: prometheus.Dataquery) -> bargauge.Panel:
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target.instant())
        .unit("percentunit")
        .min(0)
        .max(1)
        .decimals(1)
        .height(9)
        .span(12)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .orientation(common.VizOrientation.HORIZONTAL)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(
            dashboard.ThresholdsConfig()
            .mode(ThresholdsMode.ABSOLUTE)
            .steps(
                [
                    Threshold(value=None, color="red"),
                    Threshold(value=0.5, color="orange"),
                    Threshold(value=0.7, color="green"),
                ]
            )
        )
    )


def quantiles(metric: str, by: str, selector: str, legend_prefix: str) -> list[prometheus.Dataquery]:
    return queries(
        *(
            (
                f"histogram_quantile({q}, sum by ({by}le) (rate({metric}{{{selector}}}[{RATE}])))",
                f"{legend_prefix}p{int(q * 100)}",
            )
            for q in (0.5, 0.9, 0.99)
        )
    )


def runs_row() -> list[Builder]:
    return [
        dashboard.Row("Runs"),
        single(
            "Models running",
            "Models whose active run has items left.",
            query(
                f'count((sum by (model) (anesbench_run_items{{{OURS}, state="total"}})'
                f' - sum by (model) (anesbench_run_items{{{OURS}, state=~"done|failed"}})) > 0)',
                "models",
            ),
            "none",
        ),
        single(
            "Items left",
            "Work items of active runs not yet done or failed.",
            query(
                f'sum(anesbench_run_items{{{OURS}, state="total"}})'
                f' - sum(anesbench_run_items{{{OURS}, state=~"done|failed"}})',
                "left",
            ),
            "none",
        ),
        single(
            "Items graded / s",
            "Replies graded per second across models.",
            query(f"sum(rate(anesbench_items_graded_total{{{OURS}}}[{RATE}]))", "graded/s"),
            "ops",
        ),
        single(
            "Since last result",
            "Seconds since the active run of each model wrote a result (idle models are hidden).",
            query(
                f"time() - max by (model) (anesbench_run_last_progress_timestamp_seconds{{{OURS}}} > 0)",
                "{{model}}",
            ),
            "s",
        ),
        series(
            "Run progress",
            "Share of the active run's items done (or failed) per model.",
            queries(
                (
                    (
                        f'sum by (model) (anesbench_run_items{{{OURS}, state=~"done|failed"}})'
                        f' / sum by (model) (anesbench_run_items{{{OURS}, state="total"}})'
                    ),
                    "{{model}}",
                ),
            ),
            "percentunit",
            max_value=1,
        ),
        series(
            "Items graded by result",
            "Graded replies per second by result (correct, wrong, unanswered).",
            queries(
                (
                    f"sum by (model, result) (rate(anesbench_items_graded_total{{{OURS}}}[{RATE}]))",
                    "{{model}} {{result}}",
                ),
            ),
            "ops",
            stacked=True,
        ),
        series(
            "Run items by state",
            "Items of the active runs by state.",
            queries((f"sum by (model, state) (anesbench_run_items{{{OURS}}})", "{{model}} {{state}}")),
            "none",
        ),
        series(
            "Runs by state",
            "Runs known to the dispatcher by state.",
            queries((f"sum by (state) (anesbench_runs{{{OURS_NS}}})", "{{state}}")),
            "none",
        ),
    ]


def accuracy_row() -> list[Builder]:
    return [
        dashboard.Row("Accuracy"),
        accuracy_bars(
            "Accuracy by level",
            "Accuracy of each model's most recent run per cognitive level (system1, system1.x, system2, overall).",
            query(
                f'max by (model, language, level) (anesbench_run_accuracy{{{OURS}, language=~"$language"}})',
                "{{model}} {{language}} {{level}}",
            ),
        ),
        accuracy_bars(
            "Overall accuracy by language",
            "Overall accuracy of each model's most recent run per language.",
            query(
                f'max by (model, language) (anesbench_run_accuracy{{{OURS}, language=~"$language", level="overall"}})',
                "{{model}} {{language}}",
            ),
        ),
        accuracy_band(),
        series(
            "Accuracy delta against the run before",
            "Overall accuracy of each model's newest clean run minus that of the run before it with the same "
            "configuration, paired on the same items (language 'all': across languages). Alert: "
            "AnesbenchAccuracyRegression.",
            queries((f'max by (model, dataset, language) (anesbench_accuracy_delta{{{OURS}, language=~"$language|all"}})',
                     "{{model}} {{dataset}} {{language}}")),
            "percentunit",
            min_value=None,
        ),
        series(
            "Delta p-value (exact McNemar)",
            "How likely a delta at least this large is by chance alone, when the two runs are equally good.",
            queries((f'max by (model, dataset, language) (anesbench_accuracy_delta_pvalue{{{OURS}, language=~"$language|all"}})',
                     "{{model}} {{dataset}} {{language}}")),
            "none",
            max_value=1,
        ),
    ]


def accuracy_band() -> timeseries.Panel:
    """Overall accuracy over time, one panel per model (repeated over $model), each language with its 95 %
    Wilson interval as a band: Grafana fills from a series to another named one, so the legends are fixed."""
    overall = f'{{{OURS}, language=~"$language", level="overall"}}'
    panel = series(
        "Accuracy over time: ${model}",
        "Overall accuracy so far of the model's most recent run per language, and its 95 % Wilson interval.",
        queries(*((f"max by (language) ({metric}{overall})", f"{{{{language}}}}{suffix}") for metric, suffix in (
            ("anesbench_run_accuracy", ""), ("anesbench_run_accuracy_ci_high", BAND_HIGH),
            ("anesbench_run_accuracy_ci_low", BAND_LOW)))),
        "percentunit",
        width=24,
        max_value=1,
    ).repeat("model").repeat_direction("v")
    for language in ("en", "zh"):
        panel = panel.override_by_name(f"{language}{BAND_HIGH}", [
            DynamicConfigValue(id_val="custom.fillBelowTo", value=f"{language}{BAND_LOW}"),
            DynamicConfigValue(id_val="custom.lineWidth", value=0),
            DynamicConfigValue(id_val="custom.fillOpacity", value=20),
        ]).override_by_name(f"{language}{BAND_LOW}", [DynamicConfigValue(id_val="custom.lineWidth", value=0)])
    return panel


def inference_row() -> list[Builder]:
    return [
        dashboard.Row("Inference"),
        series(
            "Request latency",
            "Wall time of one inference attempt (p50, p90, p99) per model.",
            quantiles("anesbench_inference_request_duration_seconds_bucket", "model, ", OURS, "{{model}} "),
            "s",
        ),
        series(
            "Time to first token (SGLang)",
            "SGLang's time to first token (p50, p90, p99).",
            quantiles("sglang:time_to_first_token_seconds_bucket", "model_name, ", SGLANG, "{{model_name}} "),
            "s",
        ),
        series(
            "In flight and queued (harness)",
            "Requests in flight, the concurrency limit and the items waiting to be sent, per model;"
            " replies waiting for the grader.",
            queries(
                (f"sum by (model) (anesbench_inference_inflight{{{OURS}}})", "{{model}} in flight"),
                (f"max by (model) (anesbench_inference_concurrency_limit{{{OURS}}})", "{{model}} limit"),
                (f"sum by (model) (anesbench_queue_depth{{{OURS}}})", "{{model}} queued"),
                (f"sum(anesbench_grade_queue_depth{{{OURS_NS}}})", "grader queue"),
            ),
            "none",
        ),
        series(
            "Running and queued (SGLang)",
            "Requests SGLang is decoding and requests waiting in its scheduler queue.",
            queries(
                (f"sum by (model_name) (sglang:num_running_reqs{{{SGLANG}}})", "{{model_name}} running"),
                (f"sum by (model_name) (sglang:num_queue_reqs{{{SGLANG}}})", "{{model_name}} queued"),
            ),
            "none",
        ),
        series(
            "Attempts by outcome",
            "Inference attempts per second by outcome (ok, rate_limited, server_error, timeout,"
            " connection_error, client_error).",
            queries(
                (
                    f"sum by (model, outcome) (rate(anesbench_inference_requests_total{{{OURS}}}[{RATE}]))",
                    "{{model}} {{outcome}}",
                ),
            ),
            "reqps",
            stacked=True,
        ),
        series(
            "Retries by cause",
            "Retried attempts per second by cause.",
            queries(
                (
                    f"sum by (model, cause) (rate(anesbench_inference_retries_total{{{OURS}}}[{RATE}]))",
                    "{{model}} {{cause}}",
                ),
            ),
            "reqps",
        ),
        series(
            "Error ratio",
            "Share of inference attempts whose outcome is not ok.",
            queries(
                (
                    (
                        f'sum by (model) (rate(anesbench_inference_requests_total{{{OURS}, outcome!="ok"}}[{RATE}]))'
                        f" / sum by (model) (rate(anesbench_inference_requests_total{{{OURS}}}[{RATE}]))"
                    ),
                    "{{model}}",
                ),
            ),
            "percentunit",
            max_value=1,
        ),
        series(
            "Tokens per second",
            "Prompt and completion tokens per second reported to the harness, and SGLang's own"
            " generation throughput.",
            queries(
                (
                    f"sum by (model, kind) (rate(anesbench_inference_tokens_total{{{OURS}}}[{RATE}]))",
                    "{{model}} {{kind}}",
                ),
                (
                    f"sum by (model_name) (sglang:gen_throughput{{{SGLANG}}})",
                    "{{model_name}} SGLang generation",
                ),
            ),
            "short",
        ),
        series(
            "Reused answers",
            "Items answered from the store instead of the model, per second.",
            queries(
                (f"sum by (model) (rate(anesbench_inference_reused_total{{{OURS}}}[{RATE}]))", "{{model}}"),
            ),
            "ops",
            width=24,
        ),
    ]


# anesbench_model_state as one number per model for the state timeline (stopped = 0).
MODEL_STATES = (("stopped", "text"), ("queued", "purple"), ("starting", "yellow"), ("ready", "green"),
                ("stopping", "orange"))


def model_state_timeline() -> statetimeline.Panel:
    expr = " + ".join(
        f'{i} * sum by (model) (anesbench_model_state{{{OURS}, state="{state}"}})'
        for i, (state, _) in enumerate(MODEL_STATES)
    )
    mapping = ValueMap({str(i): ValueMappingResult(text=state, color=color, index=i)
                        for i, (state, color) in enumerate(MODEL_STATES)})
    return (
        statetimeline.Panel()
        .title("Model states")
        .description("InferenceServices the dispatcher drives: stopped, queued (waiting for the GPU budget),"
                     " starting (waiting for Ready), ready, stopping. On-demand models run only while a run"
                     " needs them.")
        .datasource(DATASOURCE)
        .with_target(query(expr, "{{model}}"))
        .mappings([mapping])
        .height(8)
        .span(12)
    )


def models_row() -> list[Builder]:
    return [
        dashboard.Row("Models (InferenceServices)"),
        model_state_timeline(),
        series(
            "Waiting for Ready",
            "How long runs waited for their InferenceService to become Ready, GPU budget queue"
            " included (p50, p90, p99), and the runs waiting for the budget now.",
            [
                *quantiles("anesbench_model_ready_wait_seconds_bucket", "model, ", OURS, "{{model}} "),
                query(f"sum by (model) (anesbench_model_queued_runs{{{OURS}}})", "{{model}} runs queued", "D"),
            ],
            "s",
        ),
        series(
            "Starts and GPU budget",
            "On-demand model starts per hour and the models counted against dispatcher.gpuBudget.",
            queries(
                (f"sum by (model) (increase(anesbench_model_starts_total{{{OURS}}}[1h]))", "{{model}} starts/h"),
                (f"max(anesbench_model_budget_used{{{OURS_NS}}})", "models up (budget used)"),
            ),
            "none",
            width=24,
        ),
    ]


def sglang_cache_row() -> list[Builder]:
    return [
        series(
            "KV cache usage (SGLang)",
            "Share of SGLang's KV-cache tokens in use (sglang:token_usage); near 1 the scheduler queues"
            " requests instead of running them.",
            queries((f"max by (model_name) (sglang:token_usage{{{SGLANG}}})", "{{model_name}}")),
            "percentunit",
            max_value=1,
        ),
        series(
            "Prefix cache hit rate (SGLang)",
            "Share of prompt tokens served from SGLang's radix (prefix) cache (sglang:cache_hit_rate); the"
            " shared system prompt of a run should keep it high.",
            queries((f"max by (model_name) (sglang:cache_hit_rate{{{SGLANG}}})", "{{model_name}}")),
            "percentunit",
            max_value=1,
        ),
    ]


def grader_row() -> list[Builder]:
    return [
        dashboard.Row("Grader, dispatcher and store"),
        series(
            "Grading latency",
            "Time to extract the answer from one reply (p50, p90, p99).",
            quantiles("anesbench_grader_grade_duration_seconds_bucket", "", OURS_NS, ""),
            "s",
        ),
        series(
            "Replies by extraction method",
            "Replies graded per second by the method that decided the answer.",
            queries(
                (f"sum by (method) (rate(anesbench_grader_items_total{{{OURS_NS}}}[{RATE}]))", "{{method}}"),
            ),
            "ops",
            stacked=True,
        ),
        series(
            "Grader RPCs",
            "Grader calls per second by RPC and status code, and open GradeStream calls.",
            queries(
                (
                    f"sum by (rpc, code) (rate(anesbench_grader_requests_total{{{OURS_NS}}}[{RATE}]))",
                    "{{rpc}} {{code}}",
                ),
                (f"sum(anesbench_grader_active_streams{{{OURS_NS}}})", "open streams"),
            ),
            "short",
        ),
        series(
            "Dispatcher RPCs",
            "Dispatcher calls per second by RPC and status code (runs started, progress streams, reads).",
            queries(
                (
                    f"sum by (rpc, code) (rate(anesbench_dispatcher_requests_total{{{OURS_NS}}}[{RATE}]))",
                    "{{rpc}} {{code}}",
                ),
            ),
            "reqps",
        ),
        series(
            "Result rows written",
            "Rows written to DuckDB per second and the p99 time of one batch.",
            queries(
                (f"sum(rate(anesbench_store_rows_written_total{{{OURS_NS}}}[{RATE}]))", "rows/s"),
                (
                    (
                        "histogram_quantile(0.99, sum by (le)"
                        f" (rate(anesbench_store_flush_duration_seconds_bucket{{{OURS_NS}}}[{RATE}])))"
                    ),
                    "flush p99 (s)",
                ),
            ),
            "short",
            width=24,
        ),
    ]


def variables() -> list[Builder]:
    return [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        dashboard.QueryVariable("namespace")
        .label("Namespace")
        .datasource(DATASOURCE)
        .query("label_values(anesbench_runs, namespace)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*"),
        dashboard.QueryVariable("model")
        .label("Model")
        .datasource(DATASOURCE)
        .query('label_values(anesbench_inference_requests_total{namespace=~"$namespace"}, model)')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*"),
        dashboard.CustomVariable("language")
        .label("Language")
        .values("en,zh")
        .multi(True)
        .include_all(True)
        .all_value(".*"),
    ]


def build() -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard("AnesBench")
        .uid(UID)
        .description("AnesBench evaluations: run progress, accuracy, inference and grading.")
        .tags(["anesbench", "llm", "evaluation"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .variables(variables())
    )
    items = [*runs_row(), *accuracy_row(), *inference_row(), *sglang_cache_row(), *models_row(), *grader_row()]
    # Stable panel ids keep links to a panel (viewPanel=N) valid across regenerations.
    for panel_id, item in enumerate(items, start=1):
        item.id(panel_id)
        board = board.with_row(item) if isinstance(item, dashboard.Row) else board.with_panel(item)
    return board


def render() -> str:
    """The dashboard JSON exactly as committed (sorted keys, two-space indent, final newline)."""
    model = build().build()
    return json.dumps(json.loads(JSONEncoder().encode(model)), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help="where to write the JSON (default: %(default)s)"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from the generated JSON"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run scripts/gen_dashboard.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
