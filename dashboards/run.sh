#!/usr/bin/env bash
# Superset for Agora's dashboards. `make dashboards` runs `dashboards/run.sh up`.
#
#   up       venv from the lock, initialise (first time), start on 127.0.0.1, import the assets
#   import   rebuild the bundle and import it into the running Superset (updates in place)
#   analyst NAME  create/update a read-only SQL Lab user (password: AGORA_ANALYST_PASSWORD,
#            else generated and printed once)
#   stop     stop Superset: gunicorn master and workers, by PID
#   status   say whether it runs, and where
#
# Environment (all optional):
#   SUPERSET_ADMIN_USER      admin user (default admin)
#   SUPERSET_ADMIN_PASSWORD  its password; when unset one is generated, printed once
#                            and kept in $AGORA_SUPERSET_HOME/admin_password (mode 600)
#   SUPERSET_PORT            port on 127.0.0.1 (default 8088)
#   SUPERSET_WORKERS         gunicorn workers (default 2)
#   AGORA_SUPERSET_HOME      all Superset state (default <repo>/.superset, gitignored)
#   AGORA_SERVING_DB         serving file (default: <paths.warehouse>/serving.duckdb from
#                            $AGORA_CONFIG or agora.yml, else data/warehouse/serving.duckdb)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AGORA_SUPERSET_HOME="${AGORA_SUPERSET_HOME:-$ROOT/.superset}"
VENV="${AGORA_SUPERSET_VENV:-$ROOT/.superset/venv}"
ENV_PROJECT="$ROOT/dashboards/superset-env"
PORT="${SUPERSET_PORT:-8088}"
URL="http://127.0.0.1:$PORT"
PIDFILE="$AGORA_SUPERSET_HOME/gunicorn.pid"
LOG="$AGORA_SUPERSET_HOME/superset.log"
export SUPERSET_CONFIG_PATH="$ROOT/dashboards/superset_config.py"
export SUPERSET_ADMIN_USER="${SUPERSET_ADMIN_USER:-admin}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

say() { printf '[dashboards] %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

uv_bin() {
    if [[ -n "${UV:-}" ]]; then echo "$UV"; elif [[ -x "$ROOT/.tools/bin/uv" ]]; then echo "$ROOT/.tools/bin/uv"; else command -v uv; fi
}

ensure_venv() {
    local t0; t0=$(now)
    # Superset cannot share a venv with Airflow 3: its own project, its own lock.
    UV_PROJECT_ENVIRONMENT="$VENV" "$(uv_bin)" sync --frozen --quiet --project "$ENV_PROJECT"
    say "venv ready ($VENV) in $(since "$t0") s"
}

ensure_secrets() {
    mkdir -p "$AGORA_SUPERSET_HOME"
    chmod 700 "$AGORA_SUPERSET_HOME"
    if [[ ! -s "$AGORA_SUPERSET_HOME/secret_key" ]]; then
        (umask 077 && "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(48))' >"$AGORA_SUPERSET_HOME/secret_key")
    fi
    if [[ -z "${SUPERSET_ADMIN_PASSWORD:-}" ]]; then
        local pwfile="$AGORA_SUPERSET_HOME/admin_password"
        if [[ ! -s "$pwfile" ]]; then
            (umask 077 && "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(18))' >"$pwfile")
            say "generated Superset admin password for '$SUPERSET_ADMIN_USER': $(cat "$pwfile")"
            say "(shown once; kept in $pwfile, mode 600)"
        fi
        SUPERSET_ADMIN_PASSWORD="$(cat "$pwfile")"
    fi
    export SUPERSET_ADMIN_PASSWORD
}

ensure_initialised() {
    # Re-initialise only when the lock or the admin credentials changed: it costs ~30 s.
    local stamp marker="$AGORA_SUPERSET_HOME/initialised"
    stamp=$(cat "$ENV_PROJECT/uv.lock" <(printf '%s\n%s' "$SUPERSET_ADMIN_USER" "$SUPERSET_ADMIN_PASSWORD") | sha256sum | cut -d' ' -f1)
    if [[ -f "$marker" && "$(cat "$marker")" == "$stamp" ]]; then
        return 0
    fi
    local t0; t0=$(now)
    AGORA_SUPERSET_BOOTSTRAP=1 "$VENV/bin/python" "$ROOT/dashboards/bootstrap.py" >>"$LOG" 2>&1 || {
        tail -n 30 "$LOG" >&2
        say "initialisation failed (log: $LOG)" >&2
        return 1
    }
    echo "$stamp" >"$marker"
    say "metadata initialised in $(since "$t0") s"
}

master_pid() {
    # The PID gunicorn wrote, if that process is still a gunicorn (PIDs get reused).
    [[ -s "$PIDFILE" ]] || return 1
    local pid; pid=$(cat "$PIDFILE")
    [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q gunicorn || return 1
    echo "$pid"
}

start() {
    if pid=$(master_pid); then
        say "already running (pid $pid) on $URL"
        return 0
    fi
    local t0; t0=$(now)
    cd "$AGORA_SUPERSET_HOME"
    setsid "$VENV/bin/gunicorn" \
        --bind "127.0.0.1:$PORT" --workers "${SUPERSET_WORKERS:-2}" --worker-class gthread --threads 4 \
        --timeout 120 --graceful-timeout 10 --pid "$PIDFILE" --no-control-socket \
        --limit-request-line 0 --limit-request-field_size 0 \
        --error-logfile "$LOG" --access-logfile "$AGORA_SUPERSET_HOME/access.log" \
        "superset.app:create_app()" </dev/null >>"$LOG" 2>&1 &
    cd - >/dev/null
    for _ in $(seq 1 360); do
        if curl -fsS -m 2 "$URL/health" >/dev/null 2>&1; then
            say "Superset healthy on $URL (pid $(cat "$PIDFILE")) in $(since "$t0") s"
            return 0
        fi
        if ! kill -0 $! 2>/dev/null; then break; fi
        sleep 0.5
    done
    tail -n 30 "$LOG" >&2
    say "Superset did not become healthy (log: $LOG)" >&2
    stop
    return 1
}

stop() {
    local pid workers
    if ! pid=$(master_pid); then
        rm -f "$PIDFILE"
        say "not running"
        return 0
    fi
    workers=$(pgrep -P "$pid" || true)
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
        local alive=0
        for p in $pid $workers; do kill -0 "$p" 2>/dev/null && alive=1; done
        [[ $alive == 0 ]] && break
        sleep 0.25
    done
    for p in $pid $workers; do kill -KILL "$p" 2>/dev/null || true; done
    rm -f "$PIDFILE"
    say "stopped (master $pid, workers $(echo $workers | tr '\n' ' '))"
}

serving_db() {
    if [[ -n "${AGORA_SERVING_DB:-}" ]]; then
        echo "$AGORA_SERVING_DB"
        return
    fi
    local cfg="${AGORA_CONFIG:-$ROOT/agora.yml}"
    if [[ -f "$cfg" && -x "$ROOT/.venv/bin/python" ]]; then
        # The main venv knows agora.yml; Superset's venv does not import the agora package.
        "$ROOT/.venv/bin/python" - "$cfg" <<'EOF' && return
import sys
from pathlib import Path
from agora.config import load_config
cfg = load_config(sys.argv[1])
try:
    from agora.publish import serving_path
    print(serving_path(cfg))
except ImportError:
    print(Path(cfg.path("warehouse")) / "serving.duckdb")
EOF
    fi
    echo "$ROOT/data/warehouse/serving.duckdb"
}

import_assets() {
    local serving; serving=$(serving_db)
    "$VENV/bin/python" -m dashboards import --serving "$serving" --url "$URL"
}

case "${1:-up}" in
up)
    ensure_venv
    ensure_secrets
    ensure_initialised
    start
    import_assets
    say "dashboard: $URL/superset/dashboard/community-health/  (SQL Lab: $URL/sqllab/)"
    ;;
import)
    ensure_secrets
    import_assets
    ;;
analyst)
    [[ -n "${2:-}" ]] || { echo "usage: $0 analyst USERNAME" >&2; exit 2; }
    if [[ -z "${AGORA_ANALYST_PASSWORD:-}" ]]; then
        AGORA_ANALYST_PASSWORD="$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(18))')"
        say "generated password for analyst '$2': $AGORA_ANALYST_PASSWORD (shown once, not stored)"
    fi
    AGORA_ANALYST_PASSWORD="$AGORA_ANALYST_PASSWORD" "$VENV/bin/python" "$ROOT/dashboards/analyst.py" "$2" 2>>"$LOG"
    ;;
stop) stop ;;
status)
    if pid=$(master_pid); then say "running (pid $pid) on $URL"; else say "not running"; exit 3; fi
    ;;
*)
    echo "usage: $0 [up|import|analyst NAME|stop|status]" >&2
    exit 2
    ;;
esac
