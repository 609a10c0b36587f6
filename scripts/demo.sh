#!/usr/bin/env bash
# `make demo`: migrate the embedded SQLite store, make a first admin, start one reference
# engine, register it, start Prometheus and Alertmanager beside it when they are installed,
# and serve the control plane in the foreground (Ctrl-C stops them all).
set -euo pipefail
BIN=.venv/bin
export CP_DATA_DIR="${CP_DATA_DIR:-.cplane}"
export CP_COLLECTORS__ENABLED="${CP_COLLECTORS__ENABLED:-true}"
ENGINE_PORT="${ENGINE_PORT:-8500}"
PROM_PORT="${PROM_PORT:-9090}"
AM_PORT="${AM_PORT:-9093}"
CP_URL="http://127.0.0.1:${CP_API__PORT:-8400}"
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
PIDS="$ENGINE_PID"
trap 'kill $PIDS 2>/dev/null || true' EXIT INT TERM
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
# Prometheus (discovers the engines over the control plane's http_sd, evaluates the shipped
# and the SLO rules) and Alertmanager (posts to the control plane's webhook), if installed.
PROM_DIR="$CP_DATA_DIR/prometheus"
mkdir -p "$PROM_DIR"
for who in prometheus:viewer alertmanager:operator; do
    name=${who%%:*}
    if ! "$BIN/cplane" user list --json | grep -q "\"name\": \"$name\""; then
        "$BIN/cplane" user create "$name" --role "${who##*:}"
    fi
    [ -s "$PROM_DIR/$name.token" ] || "$BIN/cplane" token create "$name" --name demo > "$PROM_DIR/$name.token"
done
# Debian names the binary prometheus-alertmanager.
ALERTMANAGER=$(command -v prometheus-alertmanager || command -v alertmanager || true)
port_free() { "$BIN/python" -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])))" "$1" 2>/dev/null; }
STACK=""
if command -v prometheus >/dev/null && command -v promtool >/dev/null && ! port_free "$PROM_PORT"; then
    STACK="Prometheus:    port $PROM_PORT is taken (a Prometheus service?); set PROM_PORT to run one here"
elif command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    "$BIN/cplane" prometheus rules --out "$PROM_DIR/slo.rules.yml"
    "$BIN/cplane" prometheus config --url "$CP_URL" --token-file "$PROM_DIR/prometheus.token" \
        --rules-file "$PROM_DIR/slo.rules.yml" --alertmanager "http://127.0.0.1:$AM_PORT" \
        > "$PROM_DIR/prometheus.yml"
    prometheus --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/tsdb" \
        --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-lifecycle \
        > "$PROM_DIR/prometheus.log" 2>&1 &
    PIDS="$PIDS $!"
    export CP_PROMETHEUS__URL="http://127.0.0.1:$PROM_PORT"
    # `cplane up` rewrites this file and reloads Prometheus when an SLO changes.
    export CP_PROMETHEUS__RULES_FILE="$PROM_DIR/slo.rules.yml"
    STACK="Prometheus:    $CP_PROMETHEUS__URL (log: $PROM_DIR/prometheus.log)"
fi
if [ -n "$ALERTMANAGER" ] && ! port_free "$AM_PORT"; then
    STACK="$STACK
Alertmanager:  port $AM_PORT is taken; set AM_PORT to run one here"
elif [ -n "$ALERTMANAGER" ]; then
    "$BIN/cplane" alertmanager config --url "$CP_URL" --token-file "$PROM_DIR/alertmanager.token" \
        > "$PROM_DIR/alertmanager.yml"
    "$ALERTMANAGER" --config.file="$PROM_DIR/alertmanager.yml" --storage.path="$PROM_DIR/alertmanager" \
        --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= \
        > "$PROM_DIR/alertmanager.log" 2>&1 &
    PIDS="$PIDS $!"
    STACK="$STACK
Alertmanager:  http://127.0.0.1:$AM_PORT (log: $PROM_DIR/alertmanager.log)"
fi

cat <<MSG

Web UI:        $CP_URL/   sign in as "admin" with the API token printed here:
  $(cat "$CP_DATA_DIR/admin.token")
Control plane: $CP_URL/docs   (API token in $CP_DATA_DIR/admin.token)
  curl -H "Authorization: Bearer \$(cat $CP_DATA_DIR/admin.token)" $CP_URL/api/v1/engines
Engine:        http://127.0.0.1:$ENGINE_PORT/v1/completions (OpenAI-compatible), /metrics
${STACK:-Prometheus and Alertmanager: not installed (Debian packages prometheus, prometheus-alertmanager)}
Try a guarded change (in another shell, with some traffic on the engine):
  CP_DATA_DIR=$CP_DATA_DIR .venv/bin/cplane engine apply demo max_batch_size=16 --bake 30s
MSG
"$BIN/cplane" up
