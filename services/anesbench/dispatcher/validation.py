"""Check a run request against this dispatcher's policy, before anything is loaded, probed or stored.

One job: a client's :class:`RunConfig` and prompt template name in, the checked config (endpoints
normalised, an InferenceService's namespace filled in) and its :class:`PromptTemplate` out, or one
of our errors naming the field. Pure: no I/O beyond reading the dispatcher's own environment.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from anesbench.dispatcher.model_runs import check_model_run
from anesbench.dispatcher.settings import DispatcherSettings
from anesbench.engine.config import RunConfig
from anesbench.errors import QuotaExceeded
from anesbench.inference import validate_endpoint
from anesbench.inference.credentials import check_url_credentials, refuse_url_credentials
from anesbench.inference.endpoint import check_allowed
from anesbench.inference.transport import HttpOptions
from anesbench.prompts import PromptTemplate, load_template
from anesbench.store.budget import check_budget

if TYPE_CHECKING:
    from anesbench.kube.pool import ModelPool


def validate_run(
    config: RunConfig, prompt_template: str | None, settings: DispatcherSettings, models: ModelPool | None
) -> tuple[RunConfig, PromptTemplate]:
    """The run as this dispatcher will execute it: endpoints valid and allowed (--allowed-endpoint),
    one API key for all of them, the HTTP options usable, the template known and covering the languages."""
    if config.inference_service:
        config = check_model_run(models, config, settings.allowed_inference_services)
    endpoints = tuple(validate_endpoint(url) for url in config.endpoints)
    refuse_url_credentials(endpoints)
    for url in endpoints:
        check_allowed(url, settings.allowed_endpoints)
    check_url_credentials(endpoints, settings.key_for(endpoints))  # also refuses runs mixing keys
    HttpOptions().check()  # $SSL_CERT_FILE and the proxy variables of the dispatcher's environment
    template = load_template(prompt_template or None, allow_files=False)
    template.require(config.languages)
    return dataclasses.replace(config, endpoints=endpoints), template


def check_quotas(settings: DispatcherSettings, upload_text: str | None) -> None:
    """Before anything is stored: the upload within --max-upload-bytes, the store within --store-budget-bytes."""
    size = len(upload_text.encode()) if upload_text is not None else 0
    if settings.max_upload_bytes and size > settings.max_upload_bytes:
        raise QuotaExceeded(f"the dataset takes {size} bytes, more than this dispatcher accepts "
                            f"({settings.max_upload_bytes}, its {{max_upload_bytes}})", field="upload",
                            mentions=("max_upload_bytes",))
    check_budget(settings.db, settings.store_budget_bytes, size)
