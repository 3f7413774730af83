# Sourced by the tools that run Python packages (schemathesis.sh, bench.sh):
#   ensure_venv DIR REQUIREMENTS   makes DIR a venv with REQUIREMENTS installed, installing
#                                  python3-venv with apt first on a bare Debian; rebuilt only
#                                  when the pinned requirements change.
ensure_venv() {
  local venv=$1 requirements=$2
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "[venv] installing python3-venv" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 python3-venv >/dev/null
  fi
  if ! cmp -s "$requirements" "$venv/.requirements" 2>/dev/null; then
    echo "[venv] creating $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$requirements"
    cp "$requirements" "$venv/.requirements"
  fi
}
