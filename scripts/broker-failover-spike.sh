#!/usr/bin/env bash
# Spike: do QoS 1 sessions and their queued messages survive the death of one node of a
# clustered MQTT engine? Runs a three-node NATS server cluster (JetStream, its MQTT
# listener on each node) on loopback, in a temporary directory, and for each round:
#   1. a persistent session (clean session off, QoS 1, client id `gw`) is subscribed;
#   2. it goes offline and 1,000 QoS 1 messages are published on one node;
#   3. one node is killed (SIGTERM, then SIGKILL rounds) — in turn every node, so the
#      streams' leaders are among the victims;
#   4. the session reconnects on another node and must receive all 1,000.
# Prints one line per round and exits non-zero when a message is missing.
# Needs: nats-server (Debian `nats-server`, 2.9+), mosquitto-clients.
# Usage: scripts/broker-failover-spike.sh [ROUNDS_PER_SIGNAL (default 3)]
set -euo pipefail
command -v nats-server >/dev/null || { echo "nats-server is not installed (apt-get install nats-server)" >&2; exit 2; }
command -v mosquitto_sub >/dev/null || { echo "mosquitto-clients is not installed" >&2; exit 2; }
ROUNDS=${1:-3}
N=1000
S=$(mktemp -d -t anxin-nats-spike.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -a CLIENT ROUTE MQTT PID
for i in 1 2 3; do CLIENT[$i]=$(free_port); ROUTE[$i]=$(free_port); MQTT[$i]=$(free_port); done
routes="nats-route://127.0.0.1:${ROUTE[1]}, nats-route://127.0.0.1:${ROUTE[2]}, nats-route://127.0.0.1:${ROUTE[3]}"
for i in 1 2 3; do
  cat >"$S/n$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:${CLIENT[$i]}
jetstream { store_dir: "$S/n$i" }
cluster { name: spike, listen: 127.0.0.1:${ROUTE[$i]}, routes: [$routes] }
mqtt { listen: 127.0.0.1:${MQTT[$i]} }
EOF
done
start() { nats-server -c "$S/n$1.conf" >>"$S/n$1.log" 2>&1 & PID[$1]=$!; }
stop_all() { for i in 1 2 3; do [[ -n "${PID[$i]:-}" ]] && kill -9 "${PID[$i]}" 2>/dev/null || true; done; rm -rf "$S"; }
trap stop_all EXIT
# Ready when a node's MQTT listener accepts a session (bounded: 30 tries, 1 s apart).
ready() {
  for _ in $(seq 30); do
    local rc=0
    timeout 5 mosquitto_sub -h 127.0.0.1 -p "${MQTT[$1]}" -i "probe-$1" -t probe -W 1 >/dev/null 2>&1 || rc=$?
    ((rc == 27)) && return 0 # 27: the wait ended without a message, i.e. connected
    sleep 1
  done
  echo "node $1 did not come up: $(tail -3 "$S/n$1.log")" >&2
  return 1
}
for i in 1 2 3; do start "$i"; done
for i in 1 2 3; do ready "$i"; done
# The session, created once on node 1.
timeout 10 mosquitto_sub -c -i gw -q 1 -t 'anxin/+/event' -h 127.0.0.1 -p "${MQTT[1]}" -W 2 >/dev/null 2>&1 || true

lost=0; round=0
for signal in TERM KILL; do
  for r in $(seq "$ROUNDS"); do
    round=$((round + 1))
    victim=$(((round - 1) % 3 + 1)); pub=$((victim % 3 + 1)); sub=$((pub % 3 + 1))
    seq -f "r$round %g" "$N" | mosquitto_pub -h 127.0.0.1 -p "${MQTT[$pub]}" -q 1 -i "pub$round" -t anxin/d1/event -l
    kill "-$signal" "${PID[$victim]}"; wait "${PID[$victim]}" 2>/dev/null || true
    started=$(date +%s.%N)
    got=$(timeout 60 mosquitto_sub -c -i gw -q 1 -t 'anxin/+/event' -h 127.0.0.1 -p "${MQTT[$sub]}" -W 30 -C "$N" 2>/dev/null | grep -c "^r$round " || true)
    took=$(python3 -c "import time; print(f'{time.time() - $started:.2f}')")
    echo "round $round: SIG$signal node $victim (published on node $pub, read on node $sub): $got of $N queued messages received, ${took} s after the kill"
    ((got == N)) || lost=$((lost + N - got))
    start "$victim"; ready "$victim"
  done
done
echo "messages lost: $lost (nats-server $(nats-server --version | awk '{print $2}'))"
((lost == 0))
