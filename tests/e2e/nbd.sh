#!/usr/bin/env bash
# thaw serve with the standard NBD clients: libnbd's nbdinfo and nbdcopy, qemu-img and qemu-io,
# and nbdkit as the reference server. The export list and the allocation map (zero chunks are
# holes); nbdcopy over 4 connections, qemu-img convert and a casync image equal their source;
# qemu-img compare finds thaw's export and nbdkit's identical; TCP on request. Through a
# --restore-to export: qemu-io writes, flushes, write-zeroes and discards, then SIGKILL at random
# moments during acknowledged writes (libnbd), 10 rounds; at the end the target is the backup plus
# every acknowledged write, no chunk recorded as restored was fetched again, and SIGTERM leaves
# no socket or status file.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
require_cmd nbdinfo nbdcopy nbdkit qemu-img qemu-io python3 curl casync
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "needs Debian's python3-libnbd"
ACKED=$THAW_REPO/tests/tools/acked-writes
cd "$T" || exit 1

make_image src.img 64
expect_ok b backup --store "$T/ds" --id vm/100 src.img
S=$(last_line "$T/b.out")
start_nginx "$T/ds"
URL=http://127.0.0.1:$NGINX_PORT/

# serve_thaw TAG ARGS...: `thaw serve ARGS...` in the background until it answers; sets SERVE_PID.
serve_thaw() {
  local tag=$1
  shift
  "$THAW" serve "$@" >"$T/$tag.log" 2>&1 &
  SERVE_PID=$!
  defer kill_wait "$SERVE_PID"
  for _ in $(seq 1 300); do
    grep -q '^thaw: status:' "$T/$tag.log" && return 0
    alive "$SERVE_PID" || { cat "$T/$tag.log" >&2; fail "$tag: thaw serve ended"; }
    sleep 0.1
  done
  fail "$tag: thaw serve did not answer within 30 s"
}

# stop_thaw TAG SOCKET: SIGTERM; the server must end cleanly and leave no socket or status file.
stop_thaw() {
  kill -TERM "$SERVE_PID"
  local rc=0
  timeout 60 tail --pid="$SERVE_PID" -f /dev/null || fail "$1: thaw serve did not stop within 60 s of SIGTERM"
  wait "$SERVE_PID" 2>/dev/null || rc=$?
  [ "$rc" = 143 ] || { cat "$T/$1.log" >&2; fail "$1: thaw serve exited $rc after SIGTERM"; }
  grep -q '^thaw: stopped serving' "$T/$1.log" || fail "$1: no clean stop in the log"
  [ ! -e "$2" ] && [ ! -e "$2.status" ] || fail "$1: SIGTERM left $2 or its status file behind"
}

# merged_map: "offset length type" from nbdinfo --map on stdin, runs of one type merged
merged_map() {
  awk '$1 ~ /^[0-9]+$/ { if (n && $3 == t && $1 == o + l) { l += $2 } else { if (n) print o, l, t; o = $1; l = $2; t = $3; n = 1 } }
    END { if (n) print o, l, t }'
}

# --- read-only export --------------------------------------------------------------------------
serve_thaw ro --store "$URL" --socket "$T/ro.sock" "$S"
U="nbd+unix:///src.img?socket=$T/ro.sock"
nbdinfo --list "nbd+unix:///?socket=$T/ro.sock" >list.out || fail "nbdinfo --list"
assert_file_contains list.out 'export="src.img"' "nbdinfo --list names the archive"
assert_file_contains list.out 'can_multi_conn: true' "a read-only export allows several connections"
assert_file_contains list.out 'base:allocation' "the export offers base:allocation"

nbdinfo --map "$U" | merged_map >map.out || fail "nbdinfo --map"
python3 - src.img <<'PY' | merged_map >map.expected
import sys
z = bytes(4 << 20)
with open(sys.argv[1], "rb") as f:
    off = 0
    while True:
        b = f.read(4 << 20)
        if not b:
            break
        print(off, len(b), 3 if b == z[:len(b)] else 0)  # 3 = hole,zero
        off += len(b)
PY
diff map.expected map.out || fail "the allocation map is not the image's zero-chunk map"
pass "nbdinfo --map equals the zero-chunk map ($(grep -c ' 3$' map.out) hole runs)"

nbdcopy --connections 4 "$U" copy.img || fail "nbdcopy"
cmp src.img copy.img || fail "nbdcopy --connections 4 from thaw differs from the source"
pass "nbdcopy --connections 4 from thaw equals the source"
qemu-img convert -f raw -O raw "$U" converted.img || fail "qemu-img convert"
cmp src.img converted.img || fail "qemu-img convert from thaw differs from the source"
pass "qemu-img convert from thaw equals the source"

nbdkit -f -r -U "$T/kit.sock" file "$T/src.img" >nbdkit.log 2>&1 &
KIT=$!
defer kill_wait "$KIT"
for _ in $(seq 1 100); do [ -S "$T/kit.sock" ] && break; sleep 0.1; done
qemu-img compare -f raw -F raw "nbd+unix:///?socket=$T/kit.sock" "$U" >compare.out || { cat compare.out; fail "qemu-img compare"; }
assert_file_contains compare.out "identical" "qemu-img compare: nbdkit's raw image and thaw's export are identical"

# the server rewrites its status document every second: the clients above can finish before the
# first rewrite that counts them, so wait for one (a few seconds at most)
for _ in $(seq 1 30); do
  run_thaw st status "$T/ro.sock"
  [ "$RC" = 0 ] && grep -Eq '^nbd: .*[1-9][0-9]* requests' "$T/st.out" && break
  sleep 0.2
done
expect_ok st status "$T/ro.sock"
assert_file_contains "$T/st.out" '^nbd: .*[1-9][0-9]* requests' "thaw status reports the server"
stop_thaw ro "$T/ro.sock"

# --- TCP on request; a casync image ------------------------------------------------------------
casync make --store="$T/img.castr" "$T/img.caibx" src.img >/dev/null || fail "casync make"
PORT=$(free_port)
serve_thaw ca --index "$T/img.caibx" --store "$T/img.castr" --listen "127.0.0.1:$PORT" --status-file "$T/ca.status"
nbdcopy "nbd://127.0.0.1:$PORT/img" ca.img || fail "nbdcopy over TCP"
cmp src.img ca.img || fail "the casync export differs from the source"
nbdinfo --map "nbd://127.0.0.1:$PORT/img" | merged_map >ca.map
python3 - src.img ca.map <<'PY' || fail "a hole of the casync export holds data"
import sys
img = open(sys.argv[1], "rb").read()
holes = [l.split() for l in open(sys.argv[2]) if l.split()[2] == "3"]
assert holes, "no holes"
for o, n, _ in holes:
    assert img[int(o):int(o) + int(n)].count(0) == int(n), "hole at %s" % o
PY
pass "a casync image over TCP: nbdcopy equals the source, its zero chunks are holes"
expect_ok st3 status "$T/ca.status"
assert_file_contains "$T/st3.out" "nbd://127.0.0.1:$PORT/img" "thaw status reads the status file of a TCP server"
kill_wait "$SERVE_PID"

# --- a writable export: qemu-io ---------------------------------------------------------------
mkdir -p target
: >writes.log
# log_write OFF LEN BYTE|discard: a write qemu-io made (acknowledged), or a discard (bytes unsure)
log_write() {
  python3 - "$@" <<'PY'
import sys
off, n, what = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open("writes.log.data", "ab") as d:
    d.write(bytes([0 if what == "discard" else int(what, 0)]) * n)
with open("writes.log", "a") as log:
    log.write("intent q%d %d %d\n" % (off, off, n))
    if what != "discard":
        log.write("ack q%d\n" % off)
PY
}
serve_thaw rw0 --store "$URL" --restore-to target --restore-rate 8M --socket "$T/rw.sock" "$S"
RW="nbd+unix:///src.img?socket=$T/rw.sock"
nbdinfo "$RW" >rw.info
assert_file_contains rw.info 'can_multi_conn: true' "a writable export allows several connections (a flush covers all)"
qemu-io -f raw -c "write -P 0x5a 1000 70000" -c "write -P 0xa5 4193000 3000" -c flush \
  -c "write -z 16M 8M" -c "write -z 30000000 100000" -c "discard 40M 8M" -c flush "$RW" >qio.out 2>&1
! grep -qiE 'error|failed' qio.out || { cat qio.out; fail "qemu-io writes"; }
log_write 1000 70000 0x5a
log_write 4193000 3000 0xa5
log_write $((16 << 20)) $((8 << 20)) 0
log_write 30000000 100000 0
log_write $((40 << 20)) $((8 << 20)) discard
qemu-io -r -f raw -c "read -P 0x5a 1000 70000" -c "read -P 0xa5 4193000 3000" -c "read -P 0 16M 8M" \
  -c "read -P 0 30000000 100000" "$RW" >qio-read.out 2>&1
! grep -qiE 'error|failed' qio-read.out || { cat qio-read.out; fail "qemu-io reads back"; }
pass "qemu-io: writes, flushes, write-zeroes and a discard through the export read back"
kill_wait "$SERVE_PID"

# --- SIGKILL during acknowledged writes ------------------------------------------------------
FIDX=$(find "$T/ds" -name 'src.img.fidx' | head -n1)
rounds=10
for r in $(seq 1 $rounds); do
  before=$(wc -l <"$NGINX_DIR/access.log")
  done_before=$(restored_chunks target/src.img.thaw-state "$FIDX")
  # the socket file of the killed server is still there: the next one replaces it
  serve_thaw "rw$r" --store "$URL" --restore-to target --restore-rate 6M --socket "$T/rw.sock" "$S"
  /usr/bin/python3 "$ACKED" write "$RW" writes.log "$r" &
  wpid=$!
  sleep "$(python3 -c "import random; print(round(random.uniform(0.3, 1.8), 2))")"
  kill -9 "$SERVE_PID"
  wait "$wpid" 2>/dev/null || true
  wait "$SERVE_PID" 2>/dev/null || true
  no_refetch "round $r" "$before" "$done_before"
done
acks=$(grep -c '^ack [0-9]' writes.log || true)
((acks > 0)) || fail "the writer never got a write acknowledged"
pass "$rounds rounds of SIGKILL during writes with flush ($acks acknowledged); no restored chunk fetched again"

expect_fail stale status "$T/rw.sock"
err_contains stale "not running" "thaw status says a killed server's status file is stale"

# --- the restore completes; SIGTERM; the target is the backup plus every acknowledged write ----
serve_thaw final --store "$URL" --restore-to target --socket "$T/rw.sock" "$S"
state() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["images"][0]["restore"]["state"])' "$T/rw.sock.status" 2>/dev/null || true; }
for _ in $(seq 1 600); do [ "$(state)" = complete ] && break; sleep 0.2; done
assert_eq complete "$(state)" "the background restore completes"
expect_ok st2 status "$T/rw.sock"
assert_file_contains "$T/st2.out" "live-restore: complete, 100.0%" "thaw status shows the restore complete"
stop_thaw final "$T/rw.sock"
python3 "$ACKED" check src.img target/src.img writes.log || fail "the target is not the backup plus the acknowledged writes"
pass "the target holds the backup, qemu-io's writes and every acknowledged write"
