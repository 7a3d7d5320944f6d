#!/usr/bin/env bash
# Restores through tests/fault-proxy (a proxy in front of nginx that misbehaves on purpose):
# chunk requests answering 503/500/429 (30%), reset mid-body or cut short; the first copy of
# every chunk with a flipped bit; the store unreachable for 20 s mid-restore and then back
# (thaw carries on by itself); a store that stays away (a clear error within --retry-for,
# nothing wrong written, and a resume completes). Each restore equals the source or fails
# cleanly. Bounded: about a minute.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
require_cmd java javac curl python3

cd "$T" || exit 1
make_image a.img 64 # 16 chunks, 12 of them non-zero
expect_ok backup backup --store "$T/ds" --id vm/400 a.img:a.img
snap=$(last_line "$T/backup.out")
start_nginx "$T/ds"
mkdir proxy
javac -d proxy "$THAW_REPO/tests/fault-proxy/FaultProxy.java"

# start_proxy NAME ARGS...: the fault proxy in front of nginx; sets PROXY_PORT, PROXY_PID;
# its log (one line per injected fault) is $T/proxy-NAME.log.
start_proxy() {
  local name=$1 i
  shift
  java -cp proxy FaultProxy --listen 127.0.0.1:0 --target "127.0.0.1:$NGINX_PORT" "$@" \
    >"$T/proxy-$name.out" 2>"$T/proxy-$name.log" &
  PROXY_PID=$!
  defer kill_wait "$PROXY_PID"
  for ((i = 0; i < 100; i++)); do
    PROXY_PORT=$(sed -n 's/^listening on //p' "$T/proxy-$name.out" 2>/dev/null || true)
    [ -n "$PROXY_PORT" ] && return 0
    alive "$PROXY_PID" || break
    sleep 0.1
  done
  cat "$T/proxy-$name.log" >&2
  fail "fault proxy $name did not start"
}

# faults NAME ERE: how many injected faults of NAME's log match ERE
faults() {
  grep -cE "^fault-proxy: ($2) " "$T/proxy-$1.log" || true
}

# no_wrong_bytes SOURCE TARGET: every 4 MiB chunk of TARGET is SOURCE's or still all zeros
no_wrong_bytes() {
  python3 - "$1" "$2" <<'EOF'
import sys
CH = 4 << 20
with open(sys.argv[1], 'rb') as a, open(sys.argv[2], 'rb') as b:
    i = 0
    while True:
        x, y = a.read(CH), b.read(CH)
        if not x:
            break
        if y != x and y.count(0) != len(y):
            sys.exit("chunk %d of %s holds wrong bytes" % (i, sys.argv[2]))
        i += 1
EOF
}

echo "== 30% of chunk requests answer 503/500/429, 15% reset mid-body, 10% end short"
start_proxy flaky --seed 7 --error-rate 0.3 --reset-rate 0.15 --truncate-rate 0.1
expect_ok flaky restore --progress none --store "http://127.0.0.1:$PROXY_PORT/" "$snap" a.img b.img
cmp a.img b.img || fail "restore through the flaky proxy differs"
pass "cmp a.img b.img through 5xx, resets and short bodies"
errors=$(faults flaky '503|500|429')
resets=$(faults flaky reset)
short=$(faults flaky truncate)
note "faults injected: $errors 5xx/429, $resets resets, $short short bodies"
((errors > 0 && resets > 0 && short > 0)) || fail "the proxy did not inject every kind of fault"
assert_eq "$((errors + resets + short))" "$(summary_field flaky retries)" "one retry per injected fault"
kill_wait "$PROXY_PID"

echo "== the first copy of every chunk has a flipped bit"
start_proxy flip --flip-first
expect_ok flip restore --progress none --store "http://127.0.0.1:$PROXY_PORT/" "$snap" a.img c.img
cmp a.img c.img || fail "restore through bit flips differs"
pass "cmp a.img c.img: every damaged chunk was refetched"
assert_eq 12 "$(faults flip flip)" "bits flipped"
assert_eq 12 "$(summary_field flip retries)" "one refetch per damaged chunk"
kill_wait "$PROXY_PID"

echo "== the store unreachable for 20 s mid-restore, then back"
start_proxy outage --down-after 4 --down-for 20
t0=$(date +%s)
expect_ok outage restore --progress none --parallel 4 --store "http://127.0.0.1:$PROXY_PORT/" "$snap" a.img d.img
secs=$(($(date +%s) - t0))
cmp a.img d.img || fail "restore across the outage differs"
assert_file_contains "$T/proxy-outage.log" "down for 20 s" "the proxy went down mid-restore"
assert_file_contains "$T/proxy-outage.log" "up again" "and came back"
((secs >= 20 && secs < 60)) || fail "restore across a 20 s outage took ${secs}s"
pass "restore rode out the outage by itself in ${secs}s; cmp a.img d.img"
kill_wait "$PROXY_PID"

echo "== a store that stays unreachable"
start_proxy gone --down-after 2 --down-for 600
t0=$(date +%s)
expect_fail gone restore --progress none --retry-for 3s --store "http://127.0.0.1:$PROXY_PORT/" "$snap" a.img e.img
secs=$(($(date +%s) - t0))
err_contains gone "cannot connect to 127\\.0\\.0\\.1:$PROXY_PORT" "the error names the unreachable store"
err_contains gone "gave up after [0-9]+ attempts in [0-9.]+ s" "the error says how long thaw tried"
err_contains gone "\\.chunks/[0-9a-f]{4}/[0-9a-f]{64}" "the error names the chunk"
((secs < 30)) || fail "giving up with --retry-for 3s took ${secs}s"
pass "gave up in ${secs}s"
[ -f e.img.thaw-state ] || fail "no state file kept for --resume"
no_wrong_bytes a.img e.img || fail "the failed restore wrote wrong bytes"
pass "nothing wrong written; progress kept in e.img.thaw-state"
kill_wait "$PROXY_PID"
expect_ok resume restore --progress none --resume --store "http://127.0.0.1:$NGINX_PORT/" "$snap" a.img e.img
cmp a.img e.img || fail "resumed restore differs"
pass "the resumed restore completes: cmp a.img e.img"

echo "PASS: store-faults"
