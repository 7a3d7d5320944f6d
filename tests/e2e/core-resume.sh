#!/usr/bin/env bash
# Interrupted restore: kill -9 a restore over HTTP half-way, check that a plain
# restore refuses to clobber the state, then --resume finishes without
# refetching finished chunks and the result is byte-identical.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

cd "$T" || exit 1
DS=$T/ds
DATA_MIB=560
SIZE_MIB=600
echo "== a.img: ${DATA_MIB} MiB random + zeros up to ${SIZE_MIB} MiB"
head -c "${DATA_MIB}M" /dev/urandom >a.img
truncate -s "${SIZE_MIB}M" a.img
data_chunks=$((DATA_MIB / 4))
total_chunks=$((SIZE_MIB / 4))

expect_ok backup backup --store "$DS" --id vm/400 a.img:a.img
snap=$(last_line "$T/backup.out")
note "snapshot $snap"

# Rate-limit chunk downloads so the restore takes ~20 s at --parallel 2.
RATE=${RESUME_RATE:-14m}
start_nginx "$DS" "    location /.chunks/ { limit_rate $RATE; }"
URL=http://127.0.0.1:$NGINX_PORT/

chunk_gets() { # completed chunk downloads so far
  grep -c 'GET /*\.chunks/[0-9a-f]\{4\}/[0-9a-f]\{64\} HTTP/[0-9.]*" 200 ' "$NGINX_DIR/access.log" || true
}

echo "== start restore (--parallel 2, nginx limit_rate $RATE) and kill -9 it mid-way"
"$THAW" restore --store "$URL" --parallel 2 --progress none "$snap" a.img b.img \
  >"$T/first.out" 2>"$T/first.err" &
pid=$!
defer kill -9 "$pid"
want=$((data_chunks / 5)) # kill after ~20% of the data chunks
killed=0
for ((i = 0; i < 1800; i++)); do # <= 180 s
  if ! alive "$pid"; then
    break
  fi
  if (($(chunk_gets) >= want)); then
    kill -9 "$pid"
    killed=1
    break
  fi
  sleep 0.1
done
rc=0
wait "$pid" 2>/dev/null || rc=$?
done_before=$(chunk_gets)
note "chunk GETs completed before the kill: $done_before of $data_chunks; b.img allocated $(du_k b.img 2>/dev/null || echo 0) KiB"
if [ "$killed" != 1 ]; then
  cat "$T/first.err" >&2
  fail "restore ended (exit $rc) before it could be killed mid-way; raise the image size or lower RESUME_RATE"
fi
((done_before < data_chunks)) || fail "all chunks had already been fetched when the kill happened"
assert_eq 137 "$rc" "first restore was killed by SIGKILL"
[ -e b.img ] || fail "killed restore left no target b.img"
[ -e b.img.thaw-state ] || fail "killed restore left no state file b.img.thaw-state"
pass "target and state file b.img.thaw-state exist after kill -9"
state_before=$(md5sum <b.img.thaw-state)

echo "== restore without --resume must refuse"
expect_fail noresume restore --store "$URL" --parallel 2 "$snap" a.img b.img
err_contains noresume '--resume' "refusal mentions --resume"
[ -e b.img.thaw-state ] || fail "refused restore removed the state file"
assert_eq "$state_before" "$(md5sum <b.img.thaw-state)" "refused restore left the state file unchanged"

echo "== restore --resume"
gets_before_resume=$(chunk_gets)
expect_ok resume restore --store "$URL" --parallel 2 --resume --progress plain "$snap" a.img b.img
cmp a.img b.img || fail "resumed restore differs from a.img"
pass "cmp a.img b.img after --resume"
[ ! -e b.img.thaw-state ] || fail "state file left after a completed resume"
pass "state file removed after completion"
note "$(grep -E '^restored ' "$T/resume.err" | tail -n1)"
fetched=$(summary_field resume fetched)
already=$(summary_field resume 'already done')
zero=$(summary_field resume zero)
note "resume: fetched=$fetched already_done=$already zero=$zero (data chunks $data_chunks, total $total_chunks)"
((already > 0)) || fail "resume reports 0 chunks already done"
pass "resume reports $already chunks already done"
((fetched < data_chunks)) || fail "resume fetched $fetched chunks, not fewer than the $data_chunks data chunks"
pass "resume fetched $fetched < $data_chunks data chunks"
((fetched + already >= data_chunks)) ||
  fail "fetched ($fetched) + already done ($already) < data chunks ($data_chunks)"
gets_resume=$(($(chunk_gets) - gets_before_resume))
assert_eq "$fetched" "$gets_resume" "chunk GETs seen by nginx during resume match 'fetched'"

echo "PASS: core-resume"
