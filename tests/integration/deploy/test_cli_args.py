"""Every command line the chart renders parses with the real CLI: the CronJobs' `anesbench run`, the
dispatcher and grader servers, the dataset download and the stand-in. Parsing runs the options'
types and callbacks (HOST:PORT, languages, ranges) but never the command."""

from __future__ import annotations

import re
import warnings
from typing import Any

import click
import pytest
from chart_tools import CI_VALUES, Render

VALUES = ["defaults", *(path.name for path in CI_VALUES)]


def _expand(args: list[str], env: list[dict[str, Any]]) -> list[str]:
    """Kubernetes' $(VAR) expansion, with a Job-like name for variables from the downward API."""
    values = {e["name"]: e.get("value", "anesbench-schedule-29112233") for e in env}
    return [
        re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: values.get(m.group(1), m.group(0)), a)
        for a in args
    ]


def _rest(ctx: click.Context) -> list[str]:
    # click 8 keeps the subcommand in protected_args (deprecated); click 9 leaves everything in args.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        protected = list(getattr(ctx, "protected_args", []))
    return protected + list(ctx.args)


def parse(command: click.Command, args: list[str], name: str = "anesbench") -> list[str]:
    """Parse args down the group tree; returns the path of commands, e.g. ["anesbench", "serve", "grader"]."""
    ctx = command.make_context(name, list(args))
    path = [name]
    while isinstance(ctx.command, click.Group):
        rest = _rest(ctx)
        assert rest, f"{' '.join(path)}: no subcommand in {args}"
        sub_name, sub, sub_args = ctx.command.resolve_command(ctx, rest)
        assert sub is not None and sub_name is not None
        ctx = sub.make_context(sub_name, sub_args, parent=ctx)
        path.append(sub_name)
    assert not _rest(ctx), f"unparsed arguments {_rest(ctx)} in {args}"
    return path


@pytest.fixture(scope="module")
def cli() -> click.Group:
    try:
        from anesbench.cli.main import cli as group
    except ImportError as exc:  # pragma: no cover - the CLI is part of the package
        pytest.fail(f"anesbench.cli.main is not importable: {exc}")
    return group


def _containers(render: Render) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for doc in render.documents:
        spec = doc.get("spec", {})
        if doc["kind"] in ("Deployment", "Job"):
            pod = spec["template"]["spec"]
        elif doc["kind"] == "CronJob":
            pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        else:
            continue
        found += [(f"{doc['kind']}/{doc['metadata']['name']}", c) for c in pod["containers"]]
    return found


STANDIN = ["python", "-m", "anesbench_testkit.standin"]


@pytest.mark.parametrize("values", VALUES)
def test_rendered_command_lines_parse(render, cli: click.Group, values: str) -> None:
    seen = set()
    for where, container in _containers(render(values, True)):
        if container.get("command") == STANDIN:
            continue
        assert "command" not in container, f"{where}: the image's entry point is `anesbench`"
        args = _expand(container["args"], container.get("env", []))
        path = parse(cli, args)
        seen.add(" ".join(path[1:]))
        if path[1:] == ["run"]:
            assert "$(" not in " ".join(args), f"{where}: unexpanded variable in {args}"
    assert {"serve dispatcher", "serve grader", "datasets download"} <= seen
    schedules = len(render(values, True).of_kind("CronJob"))
    assert ("run" in seen) == (schedules > 0)


@pytest.mark.parametrize("values", ["dev-values.yaml", "full-values.yaml"])
def test_standin_command_line_parses(render, values: str) -> None:
    from anesbench_testkit.standin.__main__ import main as standin

    (container,) = [c for _, c in _containers(render(values, True)) if c.get("command") == STANDIN]
    parse(standin, container["args"], "standin")


def test_cronjob_args_mean_what_the_schedule_says(render, cli: click.Group) -> None:
    cronjob = render("full-values.yaml", True).one("CronJob", "anesbench-qwen3-8b-nightly")
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    args = _expand(container["args"], container["env"])
    ctx = cli.make_context("anesbench", list(args))
    name, run, rest = cli.resolve_command(ctx, _rest(ctx))
    assert name == "run" and run is not None
    params = run.make_context(name, rest, parent=ctx).params
    assert params["dispatcher"] == "anesbench-dispatcher.anesbench.svc:50051"
    assert params["endpoints"] == ()
    assert params["inference_service"] == "anesbench-qwen3-8b"  # the dispatcher resolves its URL
    assert params["model"] == "qwen3-8b"
    assert params["dataset"] == "anesbench"
    assert params["languages"] == ("en", "zh")
    assert params["concurrency"] == 128
    assert params["request_timeout"] == 600
    assert params["max_tokens"] == 2048
    assert params["temperature"] == 0
    assert params["elicit"] == "all"
    assert params["scoring"] == "generate"
    assert params["run_id"] == "anesbench-schedule-29112233"  # the Job's name, so a retry resumes


@pytest.mark.parametrize("schedule", ["anesbench-qwen3-32b-weekly", "anesbench-standin-smoke"])
def test_a_schedule_scores_by_logprobs_when_it_or_its_model_says(render, cli: click.Group, schedule: str) -> None:
    container = render("full-values.yaml", True).one("CronJob", schedule)["spec"]["jobTemplate"]["spec"][
        "template"]["spec"]["containers"][0]
    ctx = cli.make_context("anesbench", _expand(container["args"], container["env"]))
    name, run, rest = cli.resolve_command(ctx, _rest(ctx))
    assert run is not None
    params = run.make_context(name, rest, parent=ctx).params
    assert (params["scoring"], params["elicit"]) == ("logprobs", None)  # the run's default: no elicitation


def test_the_prune_cronjob_keeps_what_the_values_say(render, cli: click.Group) -> None:
    cronjob = render("full-values.yaml", True).one("CronJob", "anesbench-prune")
    assert (cronjob["spec"]["schedule"], cronjob["spec"]["timeZone"]) == ("15 6 * * 0", "Europe/Berlin")
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    ctx = cli.make_context("anesbench", list(container["args"]))
    name, prune, rest = cli.resolve_command(ctx, _rest(ctx))
    assert name == "prune" and prune is not None
    params = prune.make_context(name, rest, parent=ctx).params
    assert params["dispatcher"] == "anesbench-dispatcher.anesbench.svc:50051"
    assert (params["keep_last"], params["older_than"], params["keep_aggregates"]) == (14, None, True)
    assert not render("defaults", True).of_kind("CronJob")  # off unless enabled


def test_bad_arguments_do_not_parse(cli: click.Group) -> None:
    """parse() really exercises the options: a wrong value is refused."""
    with pytest.raises(click.UsageError):
        parse(
            cli,
            ["run", "--dispatcher", "no-port", "--endpoint", "http://x/v1", "--model", "m", "--dataset", "d"],
        )
    with pytest.raises(click.UsageError):
        parse(
            cli, ["run", "--endpoint", "http://x/v1", "--model", "m", "--dataset", "d", "--languages", "fr"]
        )
