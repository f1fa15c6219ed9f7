"""``anesbench report``: one self-contained HTML page (inline CSS and SVG, no script, nothing fetched)."""

from anesbench.report.build import build_report as build_report
