#!/usr/bin/env bash
# Coverage-guided fuzzing with cargo-fuzz (libFuzzer) of what parses untrusted bytes:
# the wire protocol decoders and the provisioning blob (firmware), and the Zigbee2MQTT
# adapter (gateway). The seed corpus is made here from the protocol's golden files, the
# committed blob seeds and the real Zigbee2MQTT payloads in ../shared/data (not copied
# into the repository). A crash, a panic or a failed round-trip fails the run and leaves
# the input under tests/fuzz/artifacts/.
#
#   scripts/fuzz.sh                 # the test command's bounded pass: firmware targets, 30 s each
#   scripts/fuzz.sh --all 600       # every target (builds the gateway instrumented), 600 s each
#
# Installs cargo-fuzz from crates.io when missing. Runs on the stable toolchain: no
# sanitizer (`-s none`); libFuzzer's coverage instrumentation needs none.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=0
if [ "${1:-}" = "--all" ]; then ALL=1; shift; fi
SECONDS_EACH=${1:-30}
FUZZ_DIR=tests/fuzz
SHARED=${ANXIN_SHARED_DIR:-../shared}

command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz

targets=(wire_decode provision_blob)
features=()
if ((ALL)); then targets+=(zigbee2mqtt); features=(--features gateway); fi

# --- seed corpora (rebuilt every run; libFuzzer adds what it finds beside them) ---
corpus() { echo "$FUZZ_DIR/corpus/$1"; }
mkdir -p "$(corpus wire_decode)" "$(corpus provision_blob)" "$(corpus zigbee2mqtt)"
cp firmware/tests/golden/*.json "$(corpus wire_decode)/"
cp "$FUZZ_DIR"/seeds/provision_blob/* "$(corpus provision_blob)/"
if [ -f "$SHARED/data/zigbee2mqtt-payloads/payloads.jsonl" ]; then
  # One file per real payload; the first byte picks the target's topic (see its TOPICS).
  python3 - "$SHARED/data/zigbee2mqtt-payloads/payloads.jsonl" "$(corpus zigbee2mqtt)" <<'PY'
import json, sys, os
src, out = sys.argv[1], sys.argv[2]
kinds = {"contact": 0, "door": 0, "motion": 1, "occupancy": 1, "sos": 2, "help": 2, "gas": 3}
for i, line in enumerate(open(src, encoding="utf-8")):
    line = line.strip()
    if not line:
        continue
    v = json.loads(line)
    payload = v.get("payload")
    body = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    sel = next((n for k, n in kinds.items() if k in str(v.get("kind", ""))), 6)
    with open(os.path.join(out, f"seed-{i:03}"), "wb") as f:
        f.write(bytes([sel]) + body.encode("utf-8"))
PY
fi

echo "==> fuzz: building"
cargo fuzz build --fuzz-dir "$FUZZ_DIR" -s none "${features[@]}"
failed=0
passed=0
for t in "${targets[@]}"; do
  echo "==> fuzz: $t for ${SECONDS_EACH}s"
  if cargo fuzz run --fuzz-dir "$FUZZ_DIR" -s none "${features[@]}" "$t" "$(corpus "$t")" -- \
      -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 2>"$FUZZ_DIR/$t.log"; then
    grep -E "^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ *DONE)" "$FUZZ_DIR/$t.log" | tr '\n' ' '
    echo
    passed=$((passed + 1))
  else
    tail -40 "$FUZZ_DIR/$t.log"
    echo "fuzz target $t FAILED (input in $FUZZ_DIR/artifacts/$t/)"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
((failed == 0))
