"""A run's configuration: built once at the edge (CLI or gRPC request) and passed down; the one front door.

Before anything is stored a run's inputs are checked (:func:`check_run`) and its endpoints probed
(:func:`probe_endpoints`), so bad input leaves no run row. The store a run writes to is opened with
:func:`open_store`, which applies the abandoned-run rule: whoever opens the file read-write holds
DuckDB's lock, so a run still 'pending' or 'running' in it was left so by a process that stopped,
and is marked failed (:meth:`anesbench.store.Store.fail_abandoned`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from anesbench import __version__
from anesbench.dataset import LANGUAGES, Dataset, Item
from anesbench.defaults import (
    DEFAULT_ELICIT,
    DEFAULT_LANGUAGES,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_TOKENS,
    DEFAULT_REQUEST_TIMEOUT_S,
    DEFAULT_SAMPLES,
    DEFAULT_SCORING,
    DEFAULT_TEMPERATURE,
    ELICIT_MODES,
    RUN_BOUNDS,
    SCORINGS,
)
from anesbench.errors import InvalidInput
from anesbench.grading import EXTRACTOR_VERSION
from anesbench.inference.client import GenerationParams
from anesbench.inference.endpoint import check_url_credentials, public_endpoint
from anesbench.inference.preflight import preflight, probe_logprobs
from anesbench.inference.transport import HttpOptions
from anesbench.prompts import PromptTemplate, load_elicitation_prompt, load_template
from anesbench.store import RunRecord
from anesbench.store.database import Store

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
DEFAULT_CONCURRENCY = 64
DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class RunConfig:
    model: str
    endpoints: tuple[str, ...]  # one model's replicas or data-parallel ranks, used together
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    concurrency: int | None = None  # None: automatic
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = DEFAULT_TEMPERATURE
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S
    samples: int = DEFAULT_SAMPLES
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    reuse: bool = False
    run_id: str | None = None
    limit: int | None = None  # only the first N items (a smoke test)
    wait_ready: float = 0.0  # seconds preflight waits for the endpoint to become ready
    # A KServe InferenceService the dispatcher resolves to `endpoints` (then empty here) once it is Ready.
    inference_service: str | None = None
    namespace: str | None = None
    elicit: str = DEFAULT_ELICIT  # off | unanswered | all: when to ask the model for its final letter
    scoring: str = DEFAULT_SCORING  # generate | logprobs

    def __post_init__(self) -> None:
        for name, allowed in (("elicit", ELICIT_MODES), ("scoring", SCORINGS)):
            if getattr(self, name) not in allowed:
                raise InvalidInput(f"must be one of {', '.join(allowed)}, got {getattr(self, name)!r}", field=name)
        if self.scoring == "logprobs" and self.elicit != "off":
            raise InvalidInput("does not apply to {scoring} logprobs (there is no reply to ask about); leave it "
                               "out or give off", field="elicit", mentions=("scoring",))
        if self.scoring == "logprobs" and self.samples != 1:
            raise InvalidInput("must be 1 with {scoring} logprobs (one greedy next-token distribution per item)",
                               field="samples", mentions=("scoring",))
        if not self.model.strip():
            raise InvalidInput("must not be empty", field="model")
        if self.inference_service is not None:
            if not DNS_NAME.match(self.inference_service):
                raise InvalidInput(f"{self.inference_service[:80]!r} is not a Kubernetes object name (lower-case "
                                   "letters, digits, '-', at most 63)", field="inference_service")
            if self.namespace is not None and not DNS_NAME.match(self.namespace):
                raise InvalidInput(f"{self.namespace[:80]!r} is not a Kubernetes namespace name", field="namespace")
            if self.endpoints:
                raise InvalidInput("give either {endpoints} or {inference_service}, not both", field="endpoints",
                                   mentions=("endpoints", "inference_service"))
        elif self.namespace is not None:
            raise InvalidInput("only with {inference_service}", field="namespace", mentions=("inference_service",))
        elif not self.endpoints:
            raise InvalidInput("at least one is needed (or {inference_service})", field="endpoints",
                               mentions=("inference_service",))
        if len(set(self.endpoints)) != len(self.endpoints):
            raise InvalidInput("the same URL is given twice", field="endpoints")
        unknown = [language for language in self.languages if language not in LANGUAGES]
        if unknown or not self.languages:
            raise InvalidInput(
                f"unknown language(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(LANGUAGES)}", field="languages")
        for name, bounds in RUN_BOUNDS.items():
            value = getattr(self, name)
            if value is not None and value not in bounds:
                raise InvalidInput(f"must be {bounds.describe()}, got {value}", field=name)
        if self.run_id is not None and not RUN_ID_PATTERN.match(self.run_id):
            raise InvalidInput(
                f"{self.run_id!r} must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a "
                "letter or digit", field="run_id")

    @property
    def params(self) -> GenerationParams:
        return GenerationParams(max_tokens=self.max_tokens, temperature=self.temperature)

    @property
    def endpoint(self) -> str:
        """The endpoints as one display string (credentials removed), as stored with the run."""
        if not self.endpoints and self.inference_service:
            return f"inferenceservice:{self.namespace or ''}/{self.inference_service}"
        return " ".join(public_endpoint(url) for url in self.endpoints)


class _FirstItems:
    """The first ``count`` items of a dataset (a list, or a file streamed from disk)."""

    def __init__(self, items: Iterable[Item], count: int) -> None:
        self._items, self._count = items, count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Item]:
        return itertools.islice(iter(self._items), self._count)


def limited(dataset: Dataset, limit: int | None) -> Dataset:
    """The dataset cut to its first ``limit`` items (``--limit``); unchanged without a limit."""
    if limit is None or limit >= len(dataset.items):
        return dataset
    return replace(dataset, items=_FirstItems(dataset.items, limit))  # type: ignore[arg-type]


def new_run_id(model: str, dataset: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{model.split('/')[-1]}-{dataset}").strip("-")[:80] or "run"
    return f"{slug}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def config_hash(config: RunConfig, dataset: Dataset, template: PromptTemplate) -> str:
    """What must match for a run to be resumed (not endpoint, concurrency or timeouts)."""
    identity: dict[str, object] = {
        "model": config.model,
        "dataset_sha256": dataset.sha256,
        "prompt_sha256": template.sha256,
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
        "samples": config.samples,
        "languages": sorted(config.languages),
    }
    if config.limit is not None:  # absent without --limit: runs stored before it keep their hash
        identity["limit"] = config.limit
    if config.elicit != "off":  # absent when off: runs stored before elicitation existed keep their hash
        identity["elicit"] = config.elicit
        identity["elicit_prompt_sha256"] = load_elicitation_prompt().sha256
    if config.scoring != DEFAULT_SCORING:  # absent for generate: runs stored before scoring existed keep their hash
        identity["scoring"] = config.scoring
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


RECORDED = ("model", "endpoint", "max_tokens", "temperature", "samples", "elicit", "scoring")  # as the config has them


def run_record(run_id: str, config: RunConfig, dataset: Dataset, template: PromptTemplate) -> RunRecord:
    """The run as stored; ``dataset`` whole or already cut by ``config.limit`` (either way the record's
    ``total`` and ``item_limit`` are those of the cut)."""
    dataset = limited(dataset, config.limit)
    prompt = load_elicitation_prompt() if config.elicit != "off" else None
    return RunRecord(
        id=run_id, dataset_name=dataset.name, dataset_sha256=dataset.sha256, prompt_template=template.name,
        prompt_sha256=template.sha256, languages=list(config.languages), harness_version=__version__,
        config_hash=config_hash(config, dataset, template), extractor_version=EXTRACTOR_VERSION,
        total=len(dataset.items) * len(config.languages) * config.samples,
        item_limit=len(dataset.items) if isinstance(dataset.items, _FirstItems) else None,
        elicit_prompt=prompt.name if prompt else None, elicit_prompt_sha256=prompt.sha256 if prompt else None,
        **{name: getattr(config, name) for name in RECORDED},
    )


def check_run(
    config: RunConfig, prompt_template: str | None, *, api_key: str | None, http: HttpOptions, allow_files: bool,
) -> PromptTemplate:
    """The run's prompt template, once the key suits the endpoints, the HTTP options are usable and the
    template (a bundled name, or with ``allow_files`` a file) covers the run's languages."""
    check_url_credentials(config.endpoints, api_key)
    http.check()  # $SSL_CERT_FILE, the proxy variables, --ca-bundle
    template = load_template(prompt_template or None, allow_files=allow_files, scoring=config.scoring)
    template.require(config.languages)
    return template


async def probe_endpoints(
    config: RunConfig, *, api_key: str | None, http: HttpOptions, report: Callable[[str], None],
) -> None:
    """Return once an endpoint of the run is up, healthy and serves its model (a run on an
    InferenceService has no endpoint yet: it waits for the Ready condition instead); a logprob run's
    endpoints must return log-probabilities."""
    if config.endpoints:
        await preflight(config.endpoints, config.model, api_key=api_key, wait_ready=config.wait_ready,
                        report=report, options=http)
        if config.scoring == "logprobs":
            await probe_logprobs(config.endpoints, config.model, api_key=api_key, report=report, options=http)


def open_store(path: str, abandoned: Callable[[str], None]) -> Store:
    """The store at ``path``, opened for writing, with ``abandoned(run_id)`` told of each run marked failed."""
    store = Store(path)
    for run_id in store.fail_abandoned():
        abandoned(run_id)
    return store
