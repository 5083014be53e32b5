# Shared by the official-client suites' run.sh scripts (sourced, not run).
#
#   compat_binary LABEL ROOT [PATH]   sets BIN: PATH (relative to $PWD or ROOT), else
#                                     ROOT/target/release/mfad if built, else target/debug
#   compat_install LABEL DIR          npm ci and a venv with DIR/requirements.txt, redone
#                                     only when the lock or requirements files change; sets VENV

compat_binary() {
  local label="$1" root="$2" arg="${3:-}"
  if [[ -n "$arg" ]]; then
    BIN="$arg"
    if [[ "$BIN" != /* ]]; then
      if [[ -e "$PWD/$BIN" ]]; then BIN="$PWD/$BIN"; else BIN="$root/$BIN"; fi
    fi
  elif [[ -x "$root/target/release/mfad" ]]; then
    BIN="$root/target/release/mfad"
  else
    BIN="$root/target/debug/mfad"
  fi
  if [[ ! -x "$BIN" ]]; then
    echo "$label: mfad binary not found or not executable: $BIN (build it with cargo build -p mfad-server)" >&2
    exit 2
  fi
  echo "$label: using $BIN"
}

compat_install() {
  local label="$1" dir="$2" node_hash py_hash
  hash_of() { sha256sum "$@" | sha256sum | cut -c1-16; }
  # Suites may start at once (cargo test runs the SQLite and PostgreSQL variants in
  # parallel): one installs, the others wait for it instead of sharing a half-made venv.
  exec 9>"$dir/.install.lock"
  flock 9
  node_hash="$(hash_of "$dir/package.json" "$dir/package-lock.json")"
  if [[ ! -f "$dir/node_modules/.compat-hash" || "$(cat "$dir/node_modules/.compat-hash")" != "$node_hash" ]]; then
    echo "$label: npm ci"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$node_hash" > "$dir/node_modules/.compat-hash"
  fi
  VENV="$dir/.venv"
  py_hash="$(hash_of "$dir/requirements.txt")"
  if [[ ! -x "$VENV/bin/python" || ! -f "$VENV/.compat-hash" || "$(cat "$VENV/.compat-hash")" != "$py_hash" ]]; then
    echo "$label: creating venv and installing requirements.txt"
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$dir/requirements.txt"
    echo "$py_hash" > "$VENV/.compat-hash"
  fi
  flock -u 9
  exec 9>&-
}
