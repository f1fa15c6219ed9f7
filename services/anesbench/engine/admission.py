"""The one front door of a run, below both the CLI's embedded run and the dispatcher.

Before anything is stored a run's inputs are checked (:func:`check_run`) and its endpoints probed
(:func:`probe_endpoints`), so bad input leaves no run row. The store a run writes to is opened with
:func:`open_store`, which applies the abandoned-run rule: whoever opens the file read-write holds
DuckDB's lock, so a run still 'pending' or 'running' in it was left so by a process that stopped,
and is marked failed (:meth:`anesbench.store.Store.fail_abandoned`).
"""

from __future__ import annotations

from collections.abc import Callable

from anesbench.engine.config import RunConfig
from anesbench.inference.endpoint import check_url_credentials
from anesbench.inference.preflight import preflight, probe_logprobs
from anesbench.inference.transport import HttpOptions
from anesbench.prompts import PromptTemplate, load_template
from anesbench.store.database import Store


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
