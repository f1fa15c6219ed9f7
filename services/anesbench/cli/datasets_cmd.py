"""``anesbench datasets``: fetch AnesBench into a directory (the cluster's provisioning job)."""

from __future__ import annotations

import click


@click.group()
def datasets() -> None:
    """Manage datasets for a dispatcher's --datasets-dir."""


@datasets.command()
@click.option("--repo-id", default="MiliLab/AnesBench", show_default=True, help="Hugging Face dataset repo.")
@click.option("--dest", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("--revision", default=None, help="Git revision (branch, tag or commit) to pin.")
@click.option("--name", default="anesbench", show_default=True, help="Dataset name to publish it as.")
@click.option("--skip-if-present", is_flag=True,
              help="Do nothing (and do not contact the hub) when this repo and revision were published before.")
def download(repo_id: str, dest: str, revision: str | None, name: str, skip_if_present: bool) -> None:
    """Download and validate the dataset (token from $HF_TOKEN), then publish it atomically."""
    from anesbench.dataset.download import already_present, download_dataset

    if skip_if_present and already_present(repo_id=repo_id, dest=dest, revision=revision, name=name):
        click.echo(f"dataset {name}: {repo_id}@{revision or 'default branch'} already present in {dest}; not downloaded")
        return
    path = download_dataset(repo_id=repo_id, dest=dest, revision=revision, name=name)
    click.echo(f"dataset {name}: {path}")
