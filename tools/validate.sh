#!/usr/bin/env bash
# Offline validation of the deployment files: gateway/kong.yml (compose),
# gateway/kong.k8s.yml (Kubernetes, generated from kong.yml by
# tools/kong_k8s.py), deployment/, docker-compose.yml, Dockerfile. No Docker
# engine, cluster or Kong needed.
#
#   bash tools/validate.sh          (make validate)
#
# Works as root on a fresh Debian 12 with only apt and PyPI: creates the venv
# .local/validate-venv (validators pinned in tools/validate-requirements.txt)
# and installs Debian's `deck` when missing. Runs every step, then exits
# non-zero if any failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.local/validate-venv"
REQUIREMENTS="$ROOT/tools/validate-requirements.txt"
WORK="$ROOT/.local/validate"
K8S_VERSION="1.34.0"
KUSTOMIZATIONS=(deployment/base deployment/kong deployment/overlays/dev deployment/overlays/prod)
# Every Kong file shipped: compose mounts kong.yml, Kubernetes' ConfigMap holds kong.k8s.yml.
KONG_FILES=(gateway/kong.yml gateway/kong.k8s.yml)

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'validate: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
    APT_UPDATED=1
  fi
}

apt_install() {
  apt_update_once
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >/dev/null
}

# ------------------------------------------------------------------ tools

say "setting up tools"

# Python with venv support (Debian splits venv/ensurepip into python3-venv).
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1 || ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "installing python3 and python3-venv with apt-get"
  apt_install python3 python3-venv
  PYTHON=python3
fi

# The venv is rebuilt when the pinned requirements change.
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  echo "creating $VENV (pip install -r tools/validate-requirements.txt)"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  echo "$WANT" > "$STAMP"
else
  echo "venv $VENV is up to date"
fi
export PATH="$VENV/bin:$PATH"

# decK (Kong's declarative config tool) from Debian: validates kong.yml offline.
if ! command -v deck >/dev/null 2>&1; then
  echo "installing deck with apt-get"
  # (Output captured first: `apt-cache ... | grep -q` fails under pipefail
  # when grep exits early.)
  deck_candidate() { apt-cache policy deck 2>/dev/null | sed -n 's/^ *Candidate: *//p'; }
  candidate="$(deck_candidate)"
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    apt_update_once
    candidate="$(deck_candidate)"
  fi
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    die "the Debian package 'deck' is not available from apt on this machine (Debian 12 'bookworm' ships deck 1.4.0); install decK by other means and re-run"
  fi
  echo "apt candidate: deck $candidate"
  apt_install deck
fi

echo "kubectl:             $(kubectl version --client 2>/dev/null | head -n1)"
echo "kubernetes-validate: $(kubernetes-validate --version 2>&1 | tail -n1)"
echo "check-jsonschema:    $(check-jsonschema --version 2>&1 | tail -n1)"
echo "yamllint:            $(yamllint --version 2>&1)"
echo "deck:                $(deck version 2>&1 | head -n1)"

# ------------------------------------------------------------------ steps

rm -rf "$WORK"
mkdir -p "$WORK"

PASSED=()
FAILED=()
step() {  # step "what it checks" command...
  local title="$1"; shift
  say "$title"
  if "$@"; then
    PASSED+=("$title")
  else
    echo "FAILED: $title"
    FAILED+=("$title")
  fi
}

lint_yaml() {
  yamllint --strict -c .yamllint gateway/ deployment/ docker-compose.yml .yamllint
}

deck_validate() {
  # deck 1.4.0: `validate -s FILE`; it checks entity fields and references,
  # not plugin settings (tools/test_gateway.py does those). One file per call:
  # several -s files would be merged into one state.
  local file rc=0
  for file in "${KONG_FILES[@]}"; do
    if deck validate -s "$file"; then echo "$file: valid"; else rc=1; fi
  done
  return "$rc"
}

render_and_validate() {
  local dir out rc=0
  for dir in "${KUSTOMIZATIONS[@]}"; do
    out="$WORK/$(echo "$dir" | tr / _).yaml"
    echo "-- kubectl kustomize $dir > ${out#"$ROOT"/}"
    if ! kubectl kustomize "$dir" > "$out"; then
      rc=1; continue
    fi
    echo "-- kubernetes-validate --strict -k $K8S_VERSION ($(grep -c '^kind:' "$out") objects)"
    kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$out" || rc=1
  done
  return "$rc"
}

validate_argocd() {
  # Application is a custom resource: kubernetes-validate can only warn about
  # it (no schema); tools/test_gateway.py checks its fields.
  kubernetes-validate --strict -k "$K8S_VERSION" deployment/argocd/*.yaml
}

compose_schema() {
  check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
}

own_tests() {
  python tools/test_gateway.py
}

folder_dependencies() {
  python tools/folder_deps.py
}

step "yamllint (.yamllint): gateway/, deployment/, docker-compose.yml" lint_yaml
step "deck validate: gateway/kong.yml, gateway/kong.k8s.yml (Kong entities, fields, references)" deck_validate
step "kubectl kustomize + kubernetes-validate --strict -k $K8S_VERSION: base, kong, overlays dev and prod" render_and_validate
step "kubernetes-validate: Argo CD Applications (custom resources: warnings only)" validate_argocd
step "check-jsonschema --builtin-schema vendor.compose-spec: docker-compose.yml" compose_schema
step "tools/test_gateway.py: routes vs OpenAPI paths, Kong plugin settings, kong.k8s.yml vs kong.yml, no write route without jwt on Kubernetes, Deployment, NetworkPolicy, compose, Dockerfile" own_tests
step "tools/folder_deps.py: no two folders of Sources/MessagesService use each other (ARCHITECTURE.md)" folder_dependencies

# ------------------------------------------------------------------ summary

say "summary"
for t in "${PASSED[@]}"; do echo "  ok    $t"; done
for t in "${FAILED[@]+"${FAILED[@]}"}"; do echo "  FAIL  $t"; done
echo "validate: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
[ "${#FAILED[@]}" -eq 0 ]
