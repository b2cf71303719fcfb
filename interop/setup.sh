#!/usr/bin/env bash
# Creates (once) the Python environment of the interoperability peers and prints its python.
# Quick when it exists: the requirements' hash decides whether to reinstall.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${HES_CACHE:-$HOME/.cache/hes}/venv-interop"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
