#!/usr/bin/env bash
# `make demo`: migrate the embedded SQLite store, make a first admin, start one reference
# engine, register it, and serve the control plane in the foreground (Ctrl-C stops both).
set -euo pipefail
BIN=.venv/bin
export CP_DATA_DIR="${CP_DATA_DIR:-.cplane}"
export CP_COLLECTORS__ENABLED="${CP_COLLECTORS__ENABLED:-true}"
ENGINE_PORT="${ENGINE_PORT:-8500}"
ENGINE_MODEL="${ENGINE_MODEL:-small}"
mkdir -p "$CP_DATA_DIR"
umask 077

"$BIN/cplane" db upgrade
if ! "$BIN/cplane" user list --json | grep -q '"name": "admin"'; then
    "$BIN/cplane" user create admin --admin
fi
[ -s "$CP_DATA_DIR/admin.token" ] || "$BIN/cplane" token create admin --name demo --output "$CP_DATA_DIR/admin.token"
[ -s "$CP_DATA_DIR/engine-admin.token" ] || "$BIN/python" -c "import secrets; print(secrets.token_urlsafe(24))" > "$CP_DATA_DIR/engine-admin.token"
ENGINE_TOKEN=$(cat "$CP_DATA_DIR/engine-admin.token")

echo "starting reference engine '$ENGINE_MODEL' on 127.0.0.1:$ENGINE_PORT (log: $CP_DATA_DIR/engine.log)"
CPLANE_ENGINE_ADMIN_TOKEN="$ENGINE_TOKEN" "$BIN/cplane-engine" serve --model "$ENGINE_MODEL" \
    --host 127.0.0.1 --port "$ENGINE_PORT" > "$CP_DATA_DIR/engine.log" 2>&1 &
ENGINE_PID=$!
trap 'kill $ENGINE_PID 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 120); do
    "$BIN/python" -c "import httpx,sys; httpx.get('http://127.0.0.1:$ENGINE_PORT/healthz', timeout=1).raise_for_status()" 2>/dev/null && break
    kill -0 $ENGINE_PID 2>/dev/null || { echo "engine exited; see $CP_DATA_DIR/engine.log"; exit 1; }
    sleep 0.5
done

if ! "$BIN/cplane" engine show demo >/dev/null 2>&1; then
    CP_ENGINE_ADMIN_TOKEN="$ENGINE_TOKEN" "$BIN/cplane" engine add demo --url "http://127.0.0.1:$ENGINE_PORT"
    "$BIN/cplane" slo set demo 'p99_ms<=2000'
    "$BIN/cplane" slo set demo 'error_rate<=1%'
fi
cat <<MSG

Control plane: http://127.0.0.1:${CP_API__PORT:-8400}/docs   (API token in $CP_DATA_DIR/admin.token)
  curl -H "Authorization: Bearer \$(cat $CP_DATA_DIR/admin.token)" http://127.0.0.1:${CP_API__PORT:-8400}/api/v1/engines
Engine:        http://127.0.0.1:$ENGINE_PORT/v1/completions (OpenAI-compatible), /metrics
Try a guarded change (in another shell, with some traffic on the engine):
  CP_DATA_DIR=$CP_DATA_DIR .venv/bin/cplane engine apply demo max_batch_size=16 --bake 30s
MSG
"$BIN/cplane" up
