#!/usr/bin/env bash
# Runs every test of Anxin. Installs what the tests need when it is missing (Debian
# packages, Rust targets), so that it works on a fresh machine and in CI (CI=true, no
# stdin). Usage: scripts/test-all.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# --- what the tests need -----------------------------------------------------------
APT_PACKAGES=(mosquitto mosquitto-clients qemu-system-arm victoria-metrics chromium chromium-driver fonts-noto-cjk curl postgresql-15 libfaketime)
# Microcontroller targets: the firmware library cross-builds for the first two; the
# pendant image (firmware/pendant, QEMU lm3s6965evb) is Cortex-M3.
RUST_TARGETS=(thumbv7em-none-eabihf riscv32imc-unknown-none-elf thumbv7m-none-eabi)
LIB_TARGETS=(thumbv7em-none-eabihf riscv32imc-unknown-none-elf)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packaged mosquitto service must not hold port 1883 or run on its own: tests start
# their own brokers on free ports.
command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null && systemctl stop mosquitto || true

installed_targets=$(rustup target list --installed)
for t in "${RUST_TARGETS[@]}"; do
  grep -qx "$t" <<<"$installed_targets" || { step "adding Rust target $t"; rustup target add "$t"; }
done

# A clean clone gains nothing from incremental compilation, and its cache roughly
# doubles the target directory (CI once ran out of disk while building the pendant
# image). Say how much room there is, so that a full disk is seen before a build fails.
if [[ "${CI:-}" == true ]]; then export CARGO_INCREMENTAL=0; fi
# (On a clean clone the target directory does not exist yet: ask about the checkout.)
build_dir=${CARGO_TARGET_DIR:-target}
[[ -d "$build_dir" ]] || build_dir=.
free_kib=$(df -Pk "$build_dir" 2>/dev/null | awk 'NR == 2 { print $4 }' || true)
if [[ -n "$free_kib" ]] && ((free_kib < 20 * 1024 * 1024)); then
  echo "warning: only $((free_kib / 1024)) MiB free for the build; a full test run needs about 20 GiB" >&2
fi

# --- checks --------------------------------------------------------------------------
step "format"
cargo fmt --all -- --check
cargo fmt --manifest-path firmware/pendant/Cargo.toml -- --check
cargo fmt --manifest-path tests/fuzz/Cargo.toml -- --check

step "firmware: no_std cross-builds"
for t in "${LIB_TARGETS[@]}"; do
  cargo build -q -p anxin-firmware --target "$t"
done
(cd firmware/pendant && cargo clippy -q --release -- -D warnings)

step "tests (unit, golden, integration, end-to-end): SQLite, and PostgreSQL 15 beside it"
# Most integration tests wait on real servers and timers rather than on the CPU, so the
# second pass (every gateway test again, its stores on PostgreSQL) runs beside the first
# instead of after it, one test at a time so that the two passes together load the two
# cores about as much as one pass with its default two test threads. `common::loopback_config` and the library's store tests put each
# store in a fresh database of this server when ANXIN_TEST_POSTGRES is set; tests of the
# SQLite file itself (the disk-full fault) keep SQLite.
cargo test --workspace --all-features --no-run -q
eval "$(scripts/pg-test-server.sh start)"
PG_LOG=$(mktemp -t anxin-pg-pass.XXXXXX.log)
PG_JOB=""
cleanup() {
  [ -n "$PG_JOB" ] && kill -- "$PG_JOB" 2>/dev/null || true
  scripts/pg-test-server.sh stop "$PG_TEST_DIR"
}
trap cleanup EXIT
echo "PostgreSQL test server: $ANXIN_TEST_POSTGRES (pid $PG_TEST_PID); its pass logs to $PG_LOG"
# The test binaries of the build above, run directly: `cargo test -p anxin-gateway` would
# resolve features differently from the workspace build and compile everything anew.
mapfile -t GATEWAY_TESTS < <(cargo test --workspace --all-features --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"] \
            and "anxin-gateway" in m["package_id"]:
        print(m["executable"])')
# The library's unit tests and the integration tests (one binary, tests/integration.rs).
((${#GATEWAY_TESTS[@]} >= 2)) || { echo "gateway test binaries not found" >&2; exit 1; }
(
  failed=0
  for t in "${GATEWAY_TESTS[@]}"; do
    (cd gateway && "$t" -q --test-threads=1) || { echo "FAILED on PostgreSQL: $t"; failed=1; }
  done
  exit "$failed"
) >"$PG_LOG" 2>&1 &
PG_JOB=$!
env -u ANXIN_TEST_POSTGRES cargo test --workspace --all-features
step "tests on PostgreSQL 15 (ran beside the SQLite pass)"
pg_rc=0
wait "$PG_JOB" || pg_rc=$?
PG_JOB=""
cat "$PG_LOG"
((pg_rc == 0)) || { echo "the PostgreSQL pass failed (rc $pg_rc)" >&2; exit 1; }
cleanup
trap - EXIT
unset ANXIN_TEST_POSTGRES PG_TEST_PID PG_TEST_DIR

step "fuzzing: wire decoders and provisioning blob (cargo-fuzz, bounded)"
scripts/fuzz.sh "${FUZZ_SECONDS:-30}"

step "fuzzing: the HTTP API from its OpenAPI document (Schemathesis, bounded)"
ANXIN_BIN="${CARGO_TARGET_DIR:-target}/debug/anxin" scripts/api-fuzz.sh "${API_FUZZ_EXAMPLES:-10}"

step "clippy"
cargo clippy -q --workspace --all-targets --all-features -- -D warnings

step "benchmarks: smoke pass (bench/run.sh --quick smoke; no timing checks)"
bench/run.sh --quick --no-build --bin "${CARGO_TARGET_DIR:-target}/debug/anxin" \
  --out "$(mktemp -d -t anxin-bench-smoke.XXXXXX)" smoke

step "all tests passed"
