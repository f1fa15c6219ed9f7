import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    RUN_STATUS_PENDING: _ClassVar[RunStatus]
    RUN_STATUS_RUNNING: _ClassVar[RunStatus]
    RUN_STATUS_COMPLETED: _ClassVar[RunStatus]
    RUN_STATUS_FAILED: _ClassVar[RunStatus]
    RUN_STATUS_CANCELLED: _ClassVar[RunStatus]
RUN_STATUS_UNSPECIFIED: RunStatus
RUN_STATUS_PENDING: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_COMPLETED: RunStatus
RUN_STATUS_FAILED: RunStatus
RUN_STATUS_CANCELLED: RunStatus

class StartRunRequest(_message.Message):
    __slots__ = ("run_id", "spec", "upload", "dataset_name")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    spec: RunSpec
    upload: DatasetUpload
    dataset_name: str
    def __init__(self, run_id: _Optional[str] = ..., spec: _Optional[_Union[RunSpec, _Mapping]] = ..., upload: _Optional[_Union[DatasetUpload, _Mapping]] = ..., dataset_name: _Optional[str] = ...) -> None: ...

class RunSpec(_message.Message):
    __slots__ = ("model", "endpoint", "languages", "concurrency", "max_tokens", "temperature", "request_timeout_seconds", "prompt_template", "samples", "reuse", "more_endpoints", "max_attempts", "wait_ready_seconds", "limit", "inference_service", "namespace", "elicit", "scoring")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    REUSE_FIELD_NUMBER: _ClassVar[int]
    MORE_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    WAIT_READY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ELICIT_FIELD_NUMBER: _ClassVar[int]
    SCORING_FIELD_NUMBER: _ClassVar[int]
    model: str
    endpoint: str
    languages: _containers.RepeatedScalarFieldContainer[str]
    concurrency: int
    max_tokens: int
    temperature: float
    request_timeout_seconds: float
    prompt_template: str
    samples: int
    reuse: bool
    more_endpoints: _containers.RepeatedScalarFieldContainer[str]
    max_attempts: int
    wait_ready_seconds: float
    limit: int
    inference_service: str
    namespace: str
    elicit: str
    scoring: str
    def __init__(self, model: _Optional[str] = ..., endpoint: _Optional[str] = ..., languages: _Optional[_Iterable[str]] = ..., concurrency: _Optional[int] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., request_timeout_seconds: _Optional[float] = ..., prompt_template: _Optional[str] = ..., samples: _Optional[int] = ..., reuse: _Optional[bool] = ..., more_endpoints: _Optional[_Iterable[str]] = ..., max_attempts: _Optional[int] = ..., wait_ready_seconds: _Optional[float] = ..., limit: _Optional[int] = ..., inference_service: _Optional[str] = ..., namespace: _Optional[str] = ..., elicit: _Optional[str] = ..., scoring: _Optional[str] = ...) -> None: ...

class DatasetUpload(_message.Message):
    __slots__ = ("name", "sha256", "items")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    sha256: str
    items: _containers.RepeatedCompositeFieldContainer[Item]
    def __init__(self, name: _Optional[str] = ..., sha256: _Optional[str] = ..., items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("id", "choice_num", "answer", "level", "texts")
    class TextsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: LocalizedQuestion
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[LocalizedQuestion, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    CHOICE_NUM_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    choice_num: int
    answer: str
    level: int
    texts: _containers.MessageMap[str, LocalizedQuestion]
    def __init__(self, id: _Optional[str] = ..., choice_num: _Optional[int] = ..., answer: _Optional[str] = ..., level: _Optional[int] = ..., texts: _Optional[_Mapping[str, LocalizedQuestion]] = ...) -> None: ...

class LocalizedQuestion(_message.Message):
    __slots__ = ("question", "options")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    question: str
    options: _containers.ScalarMap[str, str]
    def __init__(self, question: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "model", "endpoint", "dataset_name", "dataset_sha256", "languages", "status", "total", "done", "failed", "correct", "unanswered", "started_at", "finished_at", "error", "prompt_template", "prompt_sha256", "max_tokens", "temperature", "samples", "harness_version", "extractor_version", "elicit", "elicit_prompt", "elicit_prompt_sha256", "elicit_constraint", "accuracy_delta", "accuracy_delta_pvalue", "scoring")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_SHA256_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    UNANSWERED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_SHA256_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    HARNESS_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXTRACTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    ELICIT_FIELD_NUMBER: _ClassVar[int]
    ELICIT_PROMPT_FIELD_NUMBER: _ClassVar[int]
    ELICIT_PROMPT_SHA256_FIELD_NUMBER: _ClassVar[int]
    ELICIT_CONSTRAINT_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_DELTA_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_DELTA_PVALUE_FIELD_NUMBER: _ClassVar[int]
    SCORING_FIELD_NUMBER: _ClassVar[int]
    id: str
    model: str
    endpoint: str
    dataset_name: str
    dataset_sha256: str
    languages: _containers.RepeatedScalarFieldContainer[str]
    status: RunStatus
    total: int
    done: int
    failed: int
    correct: int
    unanswered: int
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    error: str
    prompt_template: str
    prompt_sha256: str
    max_tokens: int
    temperature: float
    samples: int
    harness_version: str
    extractor_version: str
    elicit: str
    elicit_prompt: str
    elicit_prompt_sha256: str
    elicit_constraint: str
    accuracy_delta: float
    accuracy_delta_pvalue: float
    scoring: str
    def __init__(self, id: _Optional[str] = ..., model: _Optional[str] = ..., endpoint: _Optional[str] = ..., dataset_name: _Optional[str] = ..., dataset_sha256: _Optional[str] = ..., languages: _Optional[_Iterable[str]] = ..., status: _Optional[_Union[RunStatus, str]] = ..., total: _Optional[int] = ..., done: _Optional[int] = ..., failed: _Optional[int] = ..., correct: _Optional[int] = ..., unanswered: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ..., prompt_template: _Optional[str] = ..., prompt_sha256: _Optional[str] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., samples: _Optional[int] = ..., harness_version: _Optional[str] = ..., extractor_version: _Optional[str] = ..., elicit: _Optional[str] = ..., elicit_prompt: _Optional[str] = ..., elicit_prompt_sha256: _Optional[str] = ..., elicit_constraint: _Optional[str] = ..., accuracy_delta: _Optional[float] = ..., accuracy_delta_pvalue: _Optional[float] = ..., scoring: _Optional[str] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class WatchRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("run", "items_per_second")
    RUN_FIELD_NUMBER: _ClassVar[int]
    ITEMS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    run: Run
    items_per_second: float
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., items_per_second: _Optional[float] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class GetLeaderboardRequest(_message.Message):
    __slots__ = ("run_id", "run_ids", "include_incomplete")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_INCOMPLETE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    include_incomplete: bool
    def __init__(self, run_id: _Optional[str] = ..., run_ids: _Optional[_Iterable[str]] = ..., include_incomplete: _Optional[bool] = ...) -> None: ...

class GetLeaderboardResponse(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[LeaderboardRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[LeaderboardRow, _Mapping]]] = ...) -> None: ...

class LeaderboardRow(_message.Message):
    __slots__ = ("run_id", "model", "dataset", "language", "level", "correct", "total", "accuracy", "unanswered", "errors", "status", "ci_low", "ci_high", "prompt_template", "prompt_sha256", "max_tokens", "temperature", "samples", "mean_accuracy", "majority_accuracy", "agreement", "item_limit", "elicit", "elicited", "accuracy_strict", "scoring", "brier", "ece", "reliability")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    UNANSWERED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_SHA256_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MEAN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    MAJORITY_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    ITEM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ELICIT_FIELD_NUMBER: _ClassVar[int]
    ELICITED_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_STRICT_FIELD_NUMBER: _ClassVar[int]
    SCORING_FIELD_NUMBER: _ClassVar[int]
    BRIER_FIELD_NUMBER: _ClassVar[int]
    ECE_FIELD_NUMBER: _ClassVar[int]
    RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    model: str
    dataset: str
    language: str
    level: str
    correct: int
    total: int
    accuracy: float
    unanswered: int
    errors: int
    status: str
    ci_low: float
    ci_high: float
    prompt_template: str
    prompt_sha256: str
    max_tokens: int
    temperature: float
    samples: int
    mean_accuracy: float
    majority_accuracy: float
    agreement: float
    item_limit: int
    elicit: str
    elicited: int
    accuracy_strict: float
    scoring: str
    brier: float
    ece: float
    reliability: _containers.RepeatedCompositeFieldContainer[ReliabilityBin]
    def __init__(self, run_id: _Optional[str] = ..., model: _Optional[str] = ..., dataset: _Optional[str] = ..., language: _Optional[str] = ..., level: _Optional[str] = ..., correct: _Optional[int] = ..., total: _Optional[int] = ..., accuracy: _Optional[float] = ..., unanswered: _Optional[int] = ..., errors: _Optional[int] = ..., status: _Optional[str] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., prompt_template: _Optional[str] = ..., prompt_sha256: _Optional[str] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., samples: _Optional[int] = ..., mean_accuracy: _Optional[float] = ..., majority_accuracy: _Optional[float] = ..., agreement: _Optional[float] = ..., item_limit: _Optional[int] = ..., elicit: _Optional[str] = ..., elicited: _Optional[int] = ..., accuracy_strict: _Optional[float] = ..., scoring: _Optional[str] = ..., brier: _Optional[float] = ..., ece: _Optional[float] = ..., reliability: _Optional[_Iterable[_Union[ReliabilityBin, _Mapping]]] = ...) -> None: ...

class ReliabilityBin(_message.Message):
    __slots__ = ("bin", "n", "correct", "confidence")
    BIN_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    bin: int
    n: int
    correct: int
    confidence: float
    def __init__(self, bin: _Optional[int] = ..., n: _Optional[int] = ..., correct: _Optional[int] = ..., confidence: _Optional[float] = ...) -> None: ...

class GetReportFiguresRequest(_message.Message):
    __slots__ = ("run_ids", "wrong_shown")
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    WRONG_SHOWN_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    wrong_shown: int
    def __init__(self, run_ids: _Optional[_Iterable[str]] = ..., wrong_shown: _Optional[int] = ...) -> None: ...

class GetReportFiguresResponse(_message.Message):
    __slots__ = ("runs", "trend")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    TREND_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[RunFigures]
    trend: _containers.RepeatedCompositeFieldContainer[TrendPoint]
    def __init__(self, runs: _Optional[_Iterable[_Union[RunFigures, _Mapping]]] = ..., trend: _Optional[_Iterable[_Union[TrendPoint, _Mapping]]] = ...) -> None: ...

class Quantiles(_message.Message):
    __slots__ = ("median", "p90", "max")
    MEDIAN_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    median: float
    p90: float
    max: float
    def __init__(self, median: _Optional[float] = ..., p90: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class RunFigures(_message.Message):
    __slots__ = ("run_id", "by_outcome", "methods", "completion_tokens", "latency_s", "wrong")
    class ByOutcomeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class MethodsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    BY_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_S_FIELD_NUMBER: _ClassVar[int]
    WRONG_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    by_outcome: _containers.ScalarMap[str, int]
    methods: _containers.ScalarMap[str, int]
    completion_tokens: Quantiles
    latency_s: Quantiles
    wrong: _containers.RepeatedCompositeFieldContainer[ExportedResult]
    def __init__(self, run_id: _Optional[str] = ..., by_outcome: _Optional[_Mapping[str, int]] = ..., methods: _Optional[_Mapping[str, int]] = ..., completion_tokens: _Optional[_Union[Quantiles, _Mapping]] = ..., latency_s: _Optional[_Union[Quantiles, _Mapping]] = ..., wrong: _Optional[_Iterable[_Union[ExportedResult, _Mapping]]] = ...) -> None: ...

class TrendPoint(_message.Message):
    __slots__ = ("model", "series", "label", "run_id", "created_at", "correct", "total")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    model: str
    series: str
    label: str
    run_id: str
    created_at: _timestamp_pb2.Timestamp
    correct: int
    total: int
    def __init__(self, model: _Optional[str] = ..., series: _Optional[str] = ..., label: _Optional[str] = ..., run_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., correct: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class ExportResultsRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class ExportResultsChunk(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ExportedResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ExportedResult, _Mapping]]] = ...) -> None: ...

class ExportedResult(_message.Message):
    __slots__ = ("item_id", "language", "level", "sample", "gold", "predicted", "method", "outcome", "correct", "response", "reasoning", "finish_reason", "prompt_tokens", "completion_tokens", "latency_s", "attempts", "error", "elicited", "pred_rules", "method_rules", "elicitation", "elicitation_params", "elicitation_response", "elicitation_error", "elicitation_attempts", "elicitation_latency_s", "elicitation_prompt_tokens", "elicitation_completion_tokens", "letter_probs", "letter_probs_complete")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    GOLD_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    REASONING_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_S_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ELICITED_FIELD_NUMBER: _ClassVar[int]
    PRED_RULES_FIELD_NUMBER: _ClassVar[int]
    METHOD_RULES_FIELD_NUMBER: _ClassVar[int]
    ELICITATION_FIELD_NUMBER: _ClassVar[int]
    ELICITATION_PARAMS_FIELD_NUMBER: _ClassVar[int]
    ELICITATION_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ELICITATION_ERROR_FIELD_NUMBER: _ClassVar[int]
    ELICITATION_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ELICITATION_LATENCY_S_FIELD_NUMBER: _ClassVar[int]
    ELICITATION_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ELICITATION_COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LETTER_PROBS_FIELD_NUMBER: _ClassVar[int]
    LETTER_PROBS_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    language: str
    level: str
    sample: int
    gold: str
    predicted: str
    method: str
    outcome: str
    correct: bool
    response: str
    reasoning: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    attempts: int
    error: str
    elicited: bool
    pred_rules: str
    method_rules: str
    elicitation: str
    elicitation_params: str
    elicitation_response: str
    elicitation_error: str
    elicitation_attempts: int
    elicitation_latency_s: float
    elicitation_prompt_tokens: int
    elicitation_completion_tokens: int
    letter_probs: str
    letter_probs_complete: bool
    def __init__(self, item_id: _Optional[str] = ..., language: _Optional[str] = ..., level: _Optional[str] = ..., sample: _Optional[int] = ..., gold: _Optional[str] = ..., predicted: _Optional[str] = ..., method: _Optional[str] = ..., outcome: _Optional[str] = ..., correct: _Optional[bool] = ..., response: _Optional[str] = ..., reasoning: _Optional[str] = ..., finish_reason: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., latency_s: _Optional[float] = ..., attempts: _Optional[int] = ..., error: _Optional[str] = ..., elicited: _Optional[bool] = ..., pred_rules: _Optional[str] = ..., method_rules: _Optional[str] = ..., elicitation: _Optional[str] = ..., elicitation_params: _Optional[str] = ..., elicitation_response: _Optional[str] = ..., elicitation_error: _Optional[str] = ..., elicitation_attempts: _Optional[int] = ..., elicitation_latency_s: _Optional[float] = ..., elicitation_prompt_tokens: _Optional[int] = ..., elicitation_completion_tokens: _Optional[int] = ..., letter_probs: _Optional[str] = ..., letter_probs_complete: _Optional[bool] = ...) -> None: ...

class PruneRunsRequest(_message.Message):
    __slots__ = ("keep_last", "older_than_days", "keep_aggregates")
    KEEP_LAST_FIELD_NUMBER: _ClassVar[int]
    OLDER_THAN_DAYS_FIELD_NUMBER: _ClassVar[int]
    KEEP_AGGREGATES_FIELD_NUMBER: _ClassVar[int]
    keep_last: int
    older_than_days: float
    keep_aggregates: bool
    def __init__(self, keep_last: _Optional[int] = ..., older_than_days: _Optional[float] = ..., keep_aggregates: _Optional[bool] = ...) -> None: ...

class PruneRunsResponse(_message.Message):
    __slots__ = ("run_ids", "kept_aggregates", "bytes_before", "bytes_after")
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    KEPT_AGGREGATES_FIELD_NUMBER: _ClassVar[int]
    BYTES_BEFORE_FIELD_NUMBER: _ClassVar[int]
    BYTES_AFTER_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    kept_aggregates: bool
    bytes_before: int
    bytes_after: int
    def __init__(self, run_ids: _Optional[_Iterable[str]] = ..., kept_aggregates: _Optional[bool] = ..., bytes_before: _Optional[int] = ..., bytes_after: _Optional[int] = ...) -> None: ...

class BackupStoreRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackupStoreChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class RegradeRunRequest(_message.Message):
    __slots__ = ("run_id", "new_run_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    new_run_id: str
    def __init__(self, run_id: _Optional[str] = ..., new_run_id: _Optional[str] = ...) -> None: ...
