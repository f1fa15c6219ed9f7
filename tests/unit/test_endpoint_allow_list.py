"""The dispatcher's endpoint allow-list: scheme, host and port exactly, then a path prefix on a segment
boundary. A plain string prefix would admit other hosts and ports."""

from __future__ import annotations

import pytest

from anesbench.dispatcher.runs import serve_option
from anesbench.errors import PermissionDenied
from anesbench.inference.endpoint import check_allowed, matches_prefix

ALLOWED = ("https://api.x.com", "http://vllm.inference.svc.cluster.local:8000/v1")


@pytest.mark.parametrize("url", [
    "https://api.x.com/v1",
    "https://api.x.com",
    "https://API.X.com:443/v1",  # host case and the default port do not matter
    "http://vllm.inference.svc.cluster.local:8000/v1",
    "http://vllm.inference.svc.cluster.local:8000/v1/",
    "http://vllm.inference.svc.cluster.local:8000/v1/extra",
])
def test_admitted(url: str) -> None:
    check_allowed(url, ALLOWED)


@pytest.mark.parametrize("url", [
    "https://api.x.com.evil.net/v1",  # another host that merely starts with the allowed one
    "https://api.x.com:8443/v1",  # another port
    "http://api.x.com/v1",  # another scheme
    "https://user@api.x.comevil.net/v1",
    "http://vllm.inference.svc.cluster.local:8000/v10",  # not below /v1
    "http://vllm.inference.svc.cluster.local:8000/",
    "http://vllm.inference.svc.cluster.local:80/v1",
    "http://vllm.inference.svc.cluster.local.attacker.io:8000/v1",
])
def test_refused(url: str) -> None:
    with pytest.raises(PermissionDenied, match="does not match any allowed endpoint prefix"):
        check_allowed(url, ALLOWED)


def test_bad_port_never_matches() -> None:
    assert not matches_prefix("https://api.x.com:99999/v1", "https://api.x.com")


def test_loopback_only_without_prefixes() -> None:
    check_allowed("http://127.0.0.1:30000/v1", ())
    with pytest.raises(PermissionDenied) as caught:
        check_allowed("http://10.0.0.1:30000/v1", ())
    # the setting is data: the dispatcher, whose option it is, writes its own name into the message
    assert str(caught.value) == ("endpoint http://10.0.0.1:30000/v1 is not a loopback address and no allow_endpoint "
                                 "prefix is configured")
    caught.value.settle(serve_option)
    assert (caught.value.message, caught.value.mentions) == (
        "endpoint http://10.0.0.1:30000/v1 is not a loopback address and no --allow-endpoint prefix is configured", ())
