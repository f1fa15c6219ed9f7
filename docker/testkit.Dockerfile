# syntax=docker/dockerfile:1
# The test-tool image: the anesbench image plus anesbench_testkit (stand-in model and Kubernetes API
# servers). Only the chart's `standin` (a development stand-in, never for real results) uses it.
#   docker build -f docker/Dockerfile -t anesbench .
#   docker build -f docker/testkit.Dockerfile --build-arg BASE=anesbench -t anesbench-testkit .
ARG BASE=anesbench

FROM ${BASE}

USER 0:0
COPY testkit /tmp/testkit
RUN PIP_NO_CACHE_DIR=1 /opt/venv/bin/pip install --no-compile --no-deps /tmp/testkit \
    && /opt/venv/bin/pip install --no-compile "aiohttp>=3.9,<4" \
    && rm -rf /tmp/testkit
USER 10001:10001

ENTRYPOINT ["python", "-m", "anesbench_testkit.standin"]
CMD ["--help"]
