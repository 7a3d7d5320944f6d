#!/usr/bin/env bash
# Restore from a datastore served by nginx (static files, JSON autoindex):
# ls over HTTP, restore + cmp (plain and encrypted), and a missing chunk that
# restore and verify must both name.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

cd "$T" || exit 1
DS=$T/ds
make_image a.img 48
note "a.img: 48 MiB (random/text/zero mix)"

expect_ok backup1 backup --store "$DS" --id vm/100 a.img:a.img
snap=$(last_line "$T/backup1.out")
export THAW_KEY_PASSWORD=http-test-pass
expect_ok keycreate key create --kdf scrypt key.json
expect_ok backup2 backup --store "$DS" --id vm/101 --keyfile key.json a.img:a.img
snapk=$(last_line "$T/backup2.out")
note "plain snapshot $snap, encrypted snapshot $snapk"

start_nginx "$DS"
URL=http://127.0.0.1:$NGINX_PORT

echo "== ls over HTTP"
expect_ok ls1 ls --store "$URL/"
grep -qF "$snap" "$T/ls1.out" || { cat "$T/ls1.out"; fail "ls over HTTP does not list $snap"; }
grep -qF "$snapk" "$T/ls1.out" || { cat "$T/ls1.out"; fail "ls over HTTP does not list $snapk"; }
pass "ls --store $URL/ lists both snapshots"
expect_ok ls2 ls --store "$URL" "$snap"
grep -qF a.img "$T/ls2.out" || { cat "$T/ls2.out"; fail "ls over HTTP $snap does not list a.img"; }
pass "ls over HTTP lists a.img in $snap"

echo "== restore over HTTP"
expect_ok restore1 restore --store "$URL/" --parallel 4 "$snap" a.img b.img
cmp a.img b.img || fail "HTTP restore differs"
pass "cmp a.img b.img (HTTP, plain)"
note "$(grep -E '^restored ' "$T/restore1.err" | tail -n1)"
# The zero chunks must not be fetched: 48 MiB = 12 chunks, 3 of them zero.
fetched=$(summary_field restore1 fetched)
zero=$(summary_field restore1 zero)
assert_eq 3 "$zero" "zero chunks reported"
assert_eq 9 "$fetched" "chunks fetched over HTTP"
zero_digest=$(head -c 4194304 /dev/zero | sha256sum | cut -d' ' -f1)
if grep -qF "$zero_digest" "$NGINX_DIR/access.log"; then
  fail "restore fetched the zero chunk $zero_digest over HTTP"
fi
pass "zero chunk not requested from the server"

echo "== encrypted restore over HTTP"
expect_ok restore2 restore --store "$URL" --keyfile key.json --parallel 3 "$snapk" a.img c.img
cmp a.img c.img || fail "encrypted HTTP restore differs"
pass "cmp a.img c.img (HTTP, encrypted)"
expect_ok verify_http verify --store "$URL" --keyfile key.json "$snapk"

echo "== missing chunk"
# The first 4 MiB of a.img are random, so that chunk's digest is its sha256.
victim=$(sha256_range a.img 0 4194304)
[ "$victim" != "$zero_digest" ] || fail "victim chunk is the zero chunk"
vpath=$(chunk_path "$DS" "$victim")
[ -f "$vpath" ] || fail "expected chunk file $vpath for the first 4 MiB"
rm -f "$vpath"
note "deleted chunk $victim"
expect_fail missing restore --store "$URL/" --parallel 4 "$snap" a.img d.img
err_contains missing "$victim" "restore error names the missing digest"
err_contains missing "http://127\\.0\\.0\\.1:$NGINX_PORT/?[^ ]*\\.chunks/${victim:0:4}/$victim" \
  "restore error names the chunk URL"
if [ -e d.img ] && [ ! -e d.img.thaw-state ]; then
  fail "failed restore left d.img without a state file (looks complete)"
fi
pass "failed restore does not leave a target that looks complete"

RC=0
timeout -k 10 "$THAW_CMD_TIMEOUT" "$THAW" verify --store "$URL" "$snap" >"$T/vmissing.out" 2>"$T/vmissing.err" || RC=$?
assert_eq 1 "$RC" "verify over HTTP exit code with a missing chunk"
cat "$T/vmissing.out" "$T/vmissing.err" >"$T/vmissing.all"
assert_file_contains "$T/vmissing.all" "$victim" "verify over HTTP lists the missing chunk"
RC=0
timeout -k 10 "$THAW_CMD_TIMEOUT" "$THAW" verify --store "$DS" "$snap" >"$T/vmissl.out" 2>"$T/vmissl.err" || RC=$?
assert_eq 1 "$RC" "verify (local) exit code with a missing chunk"
cat "$T/vmissl.out" "$T/vmissl.err" >"$T/vmissl.all"
assert_file_contains "$T/vmissl.all" "$victim" "verify (local) lists the missing chunk"

echo "== unreachable server"
dead_port=$(free_port)
expect_fail dead restore --retry-for 2s --store "http://127.0.0.1:$dead_port/" "$snap" a.img e.img
err_contains dead "127\\.0\\.0\\.1:$dead_port" "connection error names the server"

echo "PASS: core-http"
