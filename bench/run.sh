#!/usr/bin/env bash
# Anxin benchmarks, side by side with the do-it-yourself peer (mosquitto + Node-RED).
#
#   bench/run.sh [--quick] [--repeat N] [--out DIR] [--bin PATH] [--no-build] BENCH...
#
#   ingest    sustained lossless ingest (QoS 1, durable), embedded broker and mosquitto
#   latency   help press → alert committed (device feedback) and → dashboard SSE, at 50 %
#             and 90 % of the sustained maximum
#   peer      mosquitto (default and tuned) + Node-RED 4.1: lossless rate, CPU, help latency
#   overload  2× the sustained maximum for 30 s, then recovery at 50 %
#   storm     10,000 devices reconnecting at once under 50 % background load
#   history   history write rate (cargo bench --bench history)
#   detect    memory per household, re-arm, timers, restart to armed (cargo bench --bench detect)
#   all       every one of the above;   smoke   a tiny end-to-end pass (CI, with --quick)
#
# Every run starts a fresh gateway (a copy of a populated store) on loopback ports, drives
# it with `anxin load`, and appends one JSON line per run to OUT/results.jsonl; the
# Markdown summary is OUT/summary.md. Every load is bounded in count and time; processes
# started here are stopped by their pid at exit. Knobs (environment): BENCH_HOUSEHOLDS,
# BENCH_DURATION, BENCH_MAX_EMBEDDED / _MOSQUITTO / _PEER_DEFAULT / _PEER_TUNED (skip the
# search), BENCH_BROKERS ("embedded mosquitto"), BENCH_CACHE (where Node-RED is installed, default ~/.cache/anxin-bench),
# BENCH_PROFILE=1 (a `perf record` of the gateway during each ingest/latency run, OUT/perf-*.data).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# The broker holds three descriptors per device connection: a storm of 10,000 devices
# needs more than a default limit (as root the hard limit can be raised to the kernel's).
ulimit -Hn "$(cat /proc/sys/fs/nr_open 2>/dev/null || echo 1048576)" 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

QUICK=0; REPEAT=2; OUT=""; BIN=""; BUILD=1; BENCHES=()
while (($#)); do
  case "$1" in
    --quick) QUICK=1; REPEAT=1 ;;
    --repeat) REPEAT=$2; shift ;;
    --out) OUT=$2; shift ;;
    --bin) BIN=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) BENCHES+=("$1") ;;
  esac
  shift
done
((${#BENCHES[@]})) || { sed -n '2,22p' "$0"; exit 2; }
[[ " ${BENCHES[*]} " == *" all "* ]] && BENCHES=(ingest latency peer overload storm history detect)

if ((QUICK)); then
  HOUSEHOLDS=${BENCH_HOUSEHOLDS:-2000}; DURATION=${BENCH_DURATION:-3}
  OVERLOAD_S=3; STORM_DEVICES=200; START_RATE=2000; STEPS=1; DRAIN=30
else
  HOUSEHOLDS=${BENCH_HOUSEHOLDS:-100000}; DURATION=${BENCH_DURATION:-20}
  OVERLOAD_S=30; STORM_DEVICES=10000; START_RATE=5000; STEPS=6; DRAIN=60
fi
HELP_HOUSEHOLDS=2000
BROKERS=${BENCH_BROKERS:-embedded mosquitto}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }

# --- the binary ------------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -z "$BIN" ]]; then
  BIN=$TARGET_DIR/release/anxin
  if ((BUILD)); then
    step "building anxin (release)"
    cargo build --release -q -p anxin-gateway --bin anxin
  fi
fi
[[ -x "$BIN" ]] || { echo "no anxin binary at $BIN" >&2; exit 1; }

WORK=$(mktemp -d -t anxin-bench.XXXXXX)
OUT=${OUT:-/tmp/anxin-bench-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
STARTED=()
cleanup() {
  local p
  for p in "${STARTED[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${STARTED[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rand_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
forget() { # removes a pid from STARTED
  local keep=() p
  for p in "${STARTED[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  STARTED=("${keep[@]}")
}
stop_pid() {
  [[ -n "${1:-}" ]] || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget "$1"
}

export LOADGEN_SECRET; LOADGEN_SECRET=$(rand_hex 16)
export LOADGEN_PASSWORD; LOADGEN_PASSWORD="Bench-$(rand_hex 8)"
export LOADGEN_DEVICE_SECRET; LOADGEN_DEVICE_SECRET=$(rand_hex 16)
LOAD_HASH=$("$BIN" load secret-hash)
GW_MQTT_PASSWORD=$(rand_hex 16)

# --- what was measured where ---------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$( [[ -n "$(git status --porcelain 2>/dev/null)" ]] && echo ' + working tree')"
  echo "cores: $(nproc), memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "kernel: $(uname -r); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  echo "mosquitto: $( (mosquitto -h 2>/dev/null || true) | head -1)"
  echo "node: $(node --version 2>/dev/null || echo none)"
  echo "quick: $QUICK, households: $HOUSEHOLDS, duration: ${DURATION}s, repeat: $REPEAT"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt"

# --- a populated store, copied for every run ----------------------------------------------
TEMPLATE=$WORK/template
populate() {
  [[ -d "$TEMPLATE" ]] && return
  step "registering $HOUSEHOLDS households × 5 devices (template store)"
  "$BIN" load populate --data-dir "$TEMPLATE" --households "$HOUSEHOLDS" \
    --help-households "$HELP_HOUSEHOLDS" --credentialed-devices "$STORM_DEVICES"
}

# --- mosquitto -------------------------------------------------------------------------------
MOSQ_PID=""; MOSQ_PORT=""
start_mosquitto() { # tuned|default  anxin|peer
  local kind=$1 who=$2 dir=$WORK/mosquitto-$RANDOM
  mkdir -p "$dir"; MOSQ_PORT=$(free_port)
  {
    echo "listener $MOSQ_PORT 127.0.0.1"
    echo "persistence false"
    echo "log_dest file $dir/mosquitto.log"
    echo "log_type error"; echo "log_type warning"
    [[ $(id -u) -eq 0 ]] && echo "user root"
    if [[ $kind == tuned ]]; then
      echo "max_inflight_messages 1000"
      echo "max_queued_messages 1000000"
      echo "max_queued_bytes 0"
    fi
    if [[ $who == anxin ]]; then
      echo "allow_anonymous false"
      echo "password_file $dir/passwd"
      echo "acl_file $dir/acl"
    else
      echo "allow_anonymous true"   # what a do-it-yourself install runs with
    fi
  } > "$dir/mosquitto.conf"
  if [[ $who == anxin ]]; then
    : > "$dir/passwd"
    mosquitto_passwd -b "$dir/passwd" anxin-gateway "$GW_MQTT_PASSWORD"
    mosquitto_passwd -b "$dir/passwd" anxin-load "$LOADGEN_SECRET"
    cat > "$dir/acl" <<EOF
pattern write anxin/v1/dev/%u/up/#
pattern read anxin/v1/dev/%u/down/#

user anxin-gateway
topic readwrite anxin/v1/dev/#

# The load generator speaks for every device (a multiplexer).
user anxin-load
topic write anxin/v1/dev/+/up/#
topic read anxin/v1/dev/+/down/#
EOF
    chmod 600 "$dir/passwd" "$dir/acl"
  fi
  mosquitto -c "$dir/mosquitto.conf" >"$dir/stdout.log" 2>&1 &
  MOSQ_PID=$!; STARTED+=("$MOSQ_PID")
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$MOSQ_PORT") 2>/dev/null && return
    sleep 0.1
  done
  echo "mosquitto did not start" >&2; cat "$dir/mosquitto.log" >&2; exit 1
}
stop_mosquitto() { stop_pid "$MOSQ_PID"; MOSQ_PID=""; }

# --- the gateway -----------------------------------------------------------------------------
GW_PID=""; GW_HTTP=""; GW_MQTT=""; GW_DIR=""
start_gateway() { # embedded|mosquitto
  local mode=$1
  populate
  GW_DIR=$WORK/gw-$RANDOM; cp -a "$TEMPLATE" "$GW_DIR"
  GW_HTTP=$(free_port)
  {
    echo "[general]"; echo "data_dir = \"$GW_DIR\""
    echo "[http]"; echo "listen = \"127.0.0.1:$GW_HTTP\""
    # Provisioning's sweep writes one battery sample per device, each in its own
    # transaction, once an hour: kept out of the measurement windows (docs/benchmarks.md).
    echo "[provision]"; echo "sweep_interval_s = 3600"
    if [[ $mode == embedded ]]; then
      GW_MQTT=$(free_port)
      echo "[broker]"; echo "listen = \"127.0.0.1:$GW_MQTT\""
      echo "[[broker.multiplexers]]"; echo "username = \"anxin-load\""; echo "secret_hash = \"$LOAD_HASH\""
    else
      GW_MQTT=$MOSQ_PORT
      echo "[mqtt]"; echo "mode = \"external\""; echo "host = \"127.0.0.1\""; echo "port = $MOSQ_PORT"
      echo "username = \"anxin-gateway\""; echo "password = \"$GW_MQTT_PASSWORD\""
    fi
  } > "$GW_DIR/bench.toml"
  RUST_LOG=${RUST_LOG:-warn} "$BIN" run --config "$GW_DIR/bench.toml" >"$GW_DIR/gateway.log" 2>&1 &
  GW_PID=$!; STARTED+=("$GW_PID")
  for _ in $(seq 1200); do
    if curl -fsS "http://127.0.0.1:$GW_HTTP/healthz" 2>/dev/null | grep -q '"mqtt_connected":true'; then
      settle "$GW_PID"
      return
    fi
    kill -0 "$GW_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "the gateway did not start:" >&2; tail -20 "$GW_DIR/gateway.log" >&2; exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# settle PID: waits until the process has been idle (< 10 % of a core) for a second, so
# that start-up work (restoring state, loading registries) is not measured as load.
settle() {
  local a b quiet=0
  for _ in $(seq 600); do
    a=$(cpu_ticks "$1"); sleep 0.5; b=$(cpu_ticks "$1")
    if ((b - a <= 5)); then quiet=$((quiet + 1)); ((quiet >= 2)) && return; else quiet=0; fi
  done
}
stop_gateway() {
  stop_pid "$GW_PID"; GW_PID=""
  [[ -n "$GW_DIR" ]] && { cp "$GW_DIR/gateway.log" "$OUT/last-gateway.log" 2>/dev/null || true; rm -rf "$GW_DIR"; }
  GW_DIR=""
}

# --- Node-RED ------------------------------------------------------------------------------
CACHE=${BENCH_CACHE:-$HOME/.cache/anxin-bench}
NODE_RED=$CACHE/node-red-4.1
NR_PID=""; NR_PORT=""; HOOK_PORT=""
install_nodered() {
  [[ -f "$NODE_RED/node_modules/node-red/red.js" ]] && return
  command -v npm >/dev/null || { echo "npm is needed for the peer (Node.js 20)" >&2; exit 1; }
  step "installing Node-RED 4.1 from npm into $NODE_RED"
  mkdir -p "$NODE_RED"
  npm install --prefix "$NODE_RED" --no-audit --no-fund --loglevel=error node-red@4.1
}
start_nodered() {
  install_nodered
  local dir=$WORK/nodered-$RANDOM
  mkdir -p "$dir"; cp "$ROOT/bench/nodered/flows.json" "$dir/flows.json"
  NR_PORT=$(free_port); HOOK_PORT=$(free_port)
  PEER_MQTT_PORT=$MOSQ_PORT PEER_WEBHOOK="http://127.0.0.1:$HOOK_PORT/hook" PEER_INACTIVITY_S=3600 \
    node "$NODE_RED/node_modules/node-red/red.js" --userDir "$dir" --port "$NR_PORT" \
    -D logging.console.level=warn -D editorTheme.tours=false flows.json >"$dir/node-red.log" 2>&1 &
  NR_PID=$!; STARTED+=("$NR_PID")
  for _ in $(seq 300); do
    curl -fsS "http://127.0.0.1:$NR_PORT/stats" >/dev/null 2>&1 && { sleep 2; return; }
    sleep 0.1
  done
  echo "Node-RED did not start:" >&2; tail -20 "$dir/node-red.log" >&2; exit 1
}
stop_nodered() { stop_pid "$NR_PID"; NR_PID=""; }

# --- one run ---------------------------------------------------------------------------------
# load BROKER_PORT LABEL RATE [anxin load run options…]; sets LAST to the report line.
LAST=""
load() {
  local port=$1 label=$2 rate=$3; shift 3
  local pids=()
  [[ -n "$GW_PID" ]] && pids+=(--pid "gateway=$GW_PID")
  [[ -n "$MOSQ_PID" ]] && pids+=(--pid "mosquitto=$MOSQ_PID")
  [[ -n "$NR_PID" ]] && pids+=(--pid "node-red=$NR_PID")
  note "$label: $rate msgs/s for ${DURATION}s (load $(cut -d' ' -f1-3 /proc/loadavg))"
  local drain=(--drain-s "$DRAIN")
  [[ " $* " == *" --drain-s "* ]] && drain=()
  "$BIN" load run --broker "127.0.0.1:$port" --households "$HOUSEHOLDS" --rate "$rate" \
    --duration "$DURATION" "${drain[@]}" --label "$label" --out "$RESULTS" "${pids[@]}" "$@" \
    || note "(the run reported a failure; see above)"
  LAST=$(tail -1 "$RESULTS")
}
sustained() { [[ "$LAST" == *'"sustained":true'* ]]; }

# run_ingest MODE RATE LABEL [options]: a fresh gateway (and mosquitto) for one run.
run_ingest() {
  local mode=$1 rate=$2 label=$3; shift 3
  [[ $mode == mosquitto ]] && start_mosquitto tuned anxin
  start_gateway "$mode"
  local help=(--help-rate 0)
  [[ " $* " == *" --help-rate "* ]] && help=()
  local prof=""
  if [[ -n "${BENCH_PROFILE:-}" ]] && command -v perf >/dev/null; then
    perf record -q -F 499 -g -e cpu-clock -p "$GW_PID" -o "$OUT/perf-${label//[^A-Za-z0-9%#._-]/_}.data" \
      -- sleep "$DURATION" >/dev/null 2>&1 &
    prof=$!
  fi
  load "$GW_MQTT" "$label" "$rate" --http "http://127.0.0.1:$GW_HTTP" "${help[@]}" "$@"
  [[ -n "$prof" ]] && wait "$prof" 2>/dev/null || true
  save_metrics "$label"
  stop_gateway; stop_mosquitto
}
# save_metrics LABEL: the gateway's /metrics after a run, beside the results (the store's
# write-lock times, queue depths, commit sizes), as OUT/metrics/LABEL.txt.
save_metrics() {
  mkdir -p "$OUT/metrics"
  curl -fsS "http://127.0.0.1:$GW_HTTP/metrics" >"$OUT/metrics/${1//[^A-Za-z0-9%#._-]/_}.txt" 2>/dev/null || true
}

# find_max KIND: doubles the rate until a run is not sustained, then bisects; prints the
# highest sustained rate (the search runs are in the results too).
find_max() {
  local kind=$1 rate=$START_RATE ok=0 bad=0 i
  for ((i = 0; i < STEPS; i++)); do
    max_run "$kind" "$rate" "search"
    if sustained; then ok=$rate; rate=$((rate * 2)); else bad=$rate; break; fi
  done
  if ((bad > 0 && ok > 0)); then
    for i in 1 2; do
      rate=$(((ok + bad) / 2))
      max_run "$kind" "$rate" "search"
      if sustained; then ok=$rate; else bad=$rate; fi
    done
  fi
  echo "$ok" > "$WORK/max-$kind"
}
max_run() { # KIND RATE TAG
  case $1 in
    embedded|mosquitto) run_ingest "$1" "$2" "ingest $1 $3" ;;
    peer-*) run_peer "${1#peer-}" "$2" "peer ${1#peer-} $3" --help-rate 0 ;;
  esac
}
MAX=0
max_of() { # KIND: sets MAX from the environment, this invocation's search, or a search now
  local var
  var="BENCH_MAX_$(echo "$1" | tr '[:lower:]-' '[:upper:]_')"
  if [[ -n "${!var:-}" ]]; then MAX=${!var}; return; fi
  [[ -f "$WORK/max-$1" ]] || find_max "$1"
  MAX=$(cat "$WORK/max-$1")
}

run_peer() { # tuned|default RATE LABEL [options]
  local kind=$1 rate=$2 label=$3; shift 3
  start_mosquitto "$kind" peer
  start_nodered
  load "$MOSQ_PORT" "$label" "$rate" --target peer --peer-stats "http://127.0.0.1:$NR_PORT/stats" \
    --webhook-listen "127.0.0.1:$HOOK_PORT" "$@"
  stop_nodered; stop_mosquitto
}

# --- the benchmarks ------------------------------------------------------------------------
bench_ingest() {
  local mode max r
  for mode in $BROKERS; do
    step "ingest, $mode broker: searching the sustained lossless maximum"
    max_of "$mode"; max=$MAX
    note "sustained maximum ($mode): $max msgs/s"
    for ((r = 1; r <= REPEAT; r++)); do
      run_ingest "$mode" "$max" "ingest $mode max #$r"
    done
  done
}

bench_latency() {
  local mode max pct r
  for mode in $BROKERS; do
    max_of "$mode"; max=$MAX
    for pct in 50 90; do
      step "help-press latency, $mode broker, $pct % of $max msgs/s"
      for ((r = 1; r <= REPEAT; r++)); do
        run_ingest "$mode" $((max * pct / 100)) "latency $mode $pct% #$r" \
          --help-rate 5 --help-households "$HELP_HOUSEHOLDS" --user bench-cw
      done
    done
  done
}

bench_peer() {
  local kind max r rate
  for kind in default tuned; do
    step "peer: mosquitto ($kind) + Node-RED 4.1: searching the lossless maximum"
    max_of "peer-$kind"; max=$MAX
    note "peer maximum ($kind): $max msgs/s"
    for ((r = 1; r <= REPEAT; r++)); do
      for rate in $((max / 2)) $((max * 9 / 10)); do
        run_peer "$kind" "$rate" "peer $kind $((rate * 100 / (max > 0 ? max : 1)))% #$r" \
          --help-rate 5 --help-households "$HELP_HOUSEHOLDS"
      done
    done
  done
}

bench_overload() {
  local max r
  max_of embedded; max=$MAX
  for ((r = 1; r <= REPEAT; r++)); do
    step "overload: $((max * 2)) msgs/s (2× the maximum) for ${OVERLOAD_S}s, then 50 %"
    start_gateway embedded
    DURATION=$OVERLOAD_S load "$GW_MQTT" "overload 200% #$r" $((max * 2)) \
      --http "http://127.0.0.1:$GW_HTTP" --help-rate 5 --help-households "$HELP_HOUSEHOLDS" \
      --user bench-cw --drain-s 300 --boot $(( $(date +%s) / 2 - 880000000 ))
    DURATION=10 load "$GW_MQTT" "overload recovery 50% #$r" $((max / 2)) \
      --http "http://127.0.0.1:$GW_HTTP" --help-rate 5 --help-households "$HELP_HOUSEHOLDS" \
      --user bench-cw --boot $(( $(date +%s) / 2 - 880000000 + 1 ))
    stop_gateway
  done
}

bench_storm() {
  local max r bg
  max_of embedded; max=$MAX
  for ((r = 1; r <= REPEAT; r++)); do
    step "storm: $STORM_DEVICES devices connect, drop and reconnect at once, under 50 % load"
    start_gateway embedded
    DURATION=$((DURATION + 40)) load "$GW_MQTT" "storm background 50% #$r" $((max / 2)) \
      --http "http://127.0.0.1:$GW_HTTP" --help-rate 2 --help-households "$HELP_HOUSEHOLDS" \
      --user bench-cw --quiet &
    bg=$!
    sleep 5
    "$BIN" load storm --broker "127.0.0.1:$GW_MQTT" --households "$HOUSEHOLDS" \
      --devices "$STORM_DEVICES" --http "http://127.0.0.1:$GW_HTTP" --pid "gateway=$GW_PID" \
      --label "storm $STORM_DEVICES #$r" --out "$RESULTS" || note "(the storm reported a failure)"
    wait "$bg" || true
    stop_gateway
  done
}

bench_cargo() { # history|detect
  step "cargo bench --bench $1"
  local args=(); ((QUICK)) && args=(-- --quick)
  cargo bench -q -p anxin-gateway --bench "$1" "${args[@]}" 2>&1 | tee "$OUT/$1.txt"
}

bench_smoke() {
  step "smoke: a tiny pass through every part (no timing checks)"
  start_gateway embedded
  load "$GW_MQTT" "smoke embedded" 500 --http "http://127.0.0.1:$GW_HTTP" --help-rate 2 \
    --help-households 20 --user bench-cw
  [[ "$LAST" == *'"lossless":true'* ]] || { echo "smoke: the embedded run lost or rejected something" >&2; exit 1; }
  "$BIN" load storm --broker "127.0.0.1:$GW_MQTT" --households "$HOUSEHOLDS" --devices 50 \
    --http "http://127.0.0.1:$GW_HTTP" --label "smoke storm" --out "$RESULTS" --quiet
  stop_gateway
  if command -v mosquitto >/dev/null; then
    start_mosquitto tuned anxin; start_gateway mosquitto
    load "$GW_MQTT" "smoke mosquitto" 500 --http "http://127.0.0.1:$GW_HTTP" --help-rate 0
    [[ "$LAST" == *'"lossless":true'* ]] || { echo "smoke: the mosquitto run lost something" >&2; exit 1; }
    stop_gateway; stop_mosquitto
  fi
  if [[ -f "$NODE_RED/node_modules/node-red/red.js" || -n "${BENCH_PEER:-}" ]]; then
    run_peer default 500 "smoke peer" --help-rate 2 --help-households 20
  else
    note "peer skipped (Node-RED not installed; BENCH_PEER=1 installs it)"
  fi
}

for b in "${BENCHES[@]}"; do
  case $b in
    ingest) bench_ingest ;;
    latency) bench_latency ;;
    peer) bench_peer ;;
    overload) bench_overload ;;
    storm) bench_storm ;;
    history|detect) bench_cargo "$b" ;;
    smoke) bench_smoke ;;
    *) echo "unknown benchmark: $b" >&2; exit 2 ;;
  esac
done

if [[ -s "$RESULTS" ]]; then
  "$BIN" load summary "$RESULTS" > "$OUT/summary.md"
  step "summary ($OUT/summary.md)"
  cat "$OUT/summary.md"
fi
echo
echo "results: $OUT"
