#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with Schemathesis (PyPI): a real
# `anxin demo` on loopback, one run as a caseworker (scoped to her households) and one as
# the administrator. Checks: no 500, responses as documented (status, content type,
# schema), and for the caseworker no household outside her scope in any response
# (tests/api-fuzz/scope_check.py). Bounded: a fixed number of examples per operation.
#
#   scripts/api-fuzz.sh [EXAMPLES]      # default 25 examples per operation
#
# Installs schemathesis with pip when missing. The users are the demo's, logged in as the
# dashboard does (session cookie and CSRF token). ANXIN_BIN names the binary (default: the
# debug build).
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES=${1:-25}
BIN=${ANXIN_BIN:-${CARGO_TARGET_DIR:-target}/debug/anxin}
[ -x "$BIN" ] || cargo build -q -p anxin-gateway --bin anxin
command -v st >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check schemathesis

work=$(mktemp -d -t anxin-api-fuzz.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" demo --homes 6 --http "127.0.0.1:$port" --data-dir "$work/data" --speed 60 >"$work/demo.out" 2>"$work/demo.err" &
demo=$!
cleanup() { kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  grep -q "Press Ctrl-C" "$work/demo.out" 2>/dev/null && break
  kill -0 "$demo" 2>/dev/null || { cat "$work/demo.err" >&2; exit 1; }
  sleep 0.2
done
grep -q "Press Ctrl-C" "$work/demo.out" || { echo "demo did not start" >&2; exit 1; }
base="http://127.0.0.1:$port"
password=$(sed -n 's/.*password for all: \([^)]*\)).*/\1/p' "$work/demo.out")

# A browser session of USER, as the dashboard has it: prints the cookie and the CSRF
# token that every state-changing request sends back.
session_of() {
  local user=$1 jar="$work/$1.cookies" csrf
  csrf=$(curl -fsS -c "$jar" -H 'Content-Type: application/json' \
    -d "{\"user_id\":\"$user\",\"password\":\"$password\"}" "$base/api/v1/auth/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')
  printf '%s %s\n' "$(awk '$6 == "anxin_session" {print $7}' "$jar")" "$csrf"
}

caseworker=$(awk '$2 == "caseworker" {print $1; exit}' "$work/demo.out")
admin=$(awk '$2 == "admin" {print $1; exit}' "$work/demo.out")
read -r cw_cookie cw_csrf < <(session_of "$caseworker")
read -r admin_cookie admin_csrf < <(session_of "$admin")
# What the caseworker may see, by the API's own household list.
allowed=$(curl -fsS -H "Cookie: anxin_session=$cw_cookie" "$base/api/v1/households?limit=500" |
  python3 -c 'import json,sys
b = json.load(sys.stdin)
items = b.get("items", b) if isinstance(b, dict) else b
print(",".join(i["id"] for i in items))')
echo "api-fuzz: $base, caseworker $caseworker (households $allowed), admin $admin, $EXAMPLES examples per operation"

# Operations that end the fuzzing user's own credentials are left out: they would only
# test that the fuzzer locked itself out.
exclude=(--exclude-path /auth/logout --exclude-path /auth/password
  --exclude-path /users/{id}/password --exclude-path /tokens/{id})
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
failed=0
run() {
  local who=$1 cookie=$2 csrf=$3 extra=$4
  echo "==> api-fuzz as $who"
  if ANXIN_ALLOWED_HOUSEHOLDS="$extra" SCHEMATHESIS_HOOKS=scope_check PYTHONPATH=tests/api-fuzz \
    st run "$base/api/v1/openapi.json" --url "$base/api/v1" -H "Cookie: anxin_session=$cookie" -H "X-CSRF-Token: $csrf" \
      --checks "$checks${extra:+,no_foreign_household}" "${exclude[@]}" \
      --generation-with-security-parameters false --max-examples "$EXAMPLES" --seed 20261203 --request-timeout 10 --no-color \
      --report junit --report-dir "$work/report-$who" >"$work/st-$who.log" 2>&1; then
    sed -n "/SUMMARY/,\$p" "$work/st-$who.log" | head -30
  else
    sed -n '/FAILURES/,/WARNINGS/p' "$work/st-$who.log" | head -300
    sed -n '/SUMMARY/,$p' "$work/st-$who.log" | head -30
    [ -n "${API_FUZZ_OUT:-}" ] && mkdir -p "$API_FUZZ_OUT" && cp "$work/st-$who.log" "$API_FUZZ_OUT/"
    failed=$((failed + 1))
  fi
}
run caseworker "$cw_cookie" "$cw_csrf" "$allowed"
run admin "$admin_cookie" "$admin_csrf" ""
echo "api-fuzz: $((2 - failed)) passed, $failed failed"
((failed == 0))
