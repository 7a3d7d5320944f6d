#!/usr/bin/env bash
# thaw under a hostile store and an impatient operator: two restores (or live restores) into one
# target never both run (the second is refused naming the first one's pid, and a write
# acknowledged through the first mount survives); Ctrl-C and SIGTERM stop a restore within 2 s,
# also while a chunk trickles in byte by byte; a chunk file of 1 GiB, a link to /dev/zero, a FIFO
# or an endless HTTP body is a named bad chunk (no OutOfMemoryError, no hang); the mount log is
# never written through a planted symbolic link; secrets are not in a mount's environment; a
# snapshot whose index is broken mounts without that image and says so; a read of a stalled chunk
# fails within one --read-timeout; an unreadable datastore fails at once.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
require_cmd fusermount python3 curl setpriv
[ -e /dev/fuse ] || skip "no /dev/fuse"
cd "$T" || exit 1

make_image a.img 48
make_image b.img 16
expect_ok backup backup --store "$T/ds" --id vm/100 a.img b.img
S=$(last_line "$T/backup.out")
A_FIDX=$(find "$T/ds" -name a.img.fidx)
# the second (non-zero) chunk of a.img, and its file
C1=$(sha256_range a.img 4194304 4194304)
C1_FILE=$(chunk_path "$T/ds" "$C1")
[ -f "$C1_FILE" ] || fail "no chunk file $C1_FILE"
start_nginx "$T/ds" 'location /.chunks/ { limit_rate 2m; }'
SLOW=http://127.0.0.1:$NGINX_PORT/

# seconds_since START_NS: elapsed seconds, one decimal
now_ns() { date +%s%N; }
seconds_since() { python3 -c "import sys; print('%.1f' % ((int(sys.argv[2]) - int(sys.argv[1])) / 1e9))" "$1" "$(now_ns)"; }
# under SECONDS_LIMIT ELAPSED MSG
under() { python3 -c "import sys; sys.exit(0 if float(sys.argv[2]) < float(sys.argv[1]) else 1)" "$1" "$2" || fail "$3: took $2 s (limit $1 s)"; pass "$3: $2 s"; }

echo "== two live restores into one target: the second is refused, an acknowledged write survives"
mkdir -p target
mount_thaw live1 "$T/mnt1" --store "$SLOW" --restore-to target --restore-rate 4M "$S"
P1=$(mount_pid "$T/mnt1")
[ -n "$P1" ] || fail "no mount process for mnt1"
mkdir -p "$T/mnt2"
defer fusermount -u -z "$T/mnt2"
expect_fail live2 mount --log "$T/live2.log" --store "$SLOW" --restore-to target --restore-rate 4M "$S" "$T/mnt2"
err_contains live2 "target $T/target/a.img is in use by pid $P1" "the second live restore names the first one's pid"
grep -q " $T/mnt2 fuse.thaw " /proc/mounts && fail "the second live restore mounted"
expect_fail restore-busy restore --progress none --store "$T/ds" "$S" a.img "$T/target/a.img"
err_contains restore-busy "in use by pid $P1" "a restore into a live restore's target is refused"
head -c 65536 /dev/urandom >w.bin
dd if=w.bin of="$T/mnt1/a.img" bs=64k seek=100 conv=notrunc,fsync status=none
wait_restore_complete "$T/mnt1" 120 "the first live restore completes"
expect_ok unmount1 unmount "$T/mnt1"
python3 - a.img w.bin target/a.img <<'PY' || fail "the restored target is not the image plus the acknowledged write"
import sys
img = bytearray(open(sys.argv[1], "rb").read())
w = open(sys.argv[2], "rb").read()
img[100 * 65536:101 * 65536] = w
assert open(sys.argv[3], "rb").read() == bytes(img)
PY
pass "the target holds the backup and the acknowledged write"

# run with SIGINT at its default (a background job of a script ignores it); exec keeps the pid
SIGINT_DFL='import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])'

echo "== two restores into one target; Ctrl-C stops the first within 2 s, --resume finishes it"
python3 -c "$SIGINT_DFL" "$THAW" restore --progress plain --rate-limit 2M --store "$T/ds" "$S" a.img "$T/r.img" >r1.out 2>r1.err &
R1=$!
defer kill_wait "$R1"
for _ in $(seq 1 100); do [ -f r.img.thaw-state ] && break; sleep 0.1; done
sleep 1
expect_fail r2 restore --progress none --store "$T/ds" "$S" a.img "$T/r.img"
err_contains r2 "target $T/r.img is in use by pid $R1" "the second restore names the first one's pid"
JPID=$R1
t0=$(now_ns)
kill -INT "$JPID"
wait "$R1" || true
under 2 "$(seconds_since "$t0")" "Ctrl-C ends a restore throttled by a slow store"
assert_file_contains r1.err "stopping" "it says it is stopping"
[ -f r.img.thaw-state ] || fail "no state file kept after Ctrl-C"
expect_ok r3 restore --progress none --resume --store "$T/ds" "$S" a.img "$T/r.img"
cmp a.img r.img || fail "resumed restore differs"
pass "resumed restore equals the image"

# A server that misbehaves for named chunks: trickle (one byte every 50 ms), huge (an endless
# body), html (a web page); everything else served from the datastore.
cat >server.py <<'PY'
import http.server, os, sys, time
root, port, specs = sys.argv[1], int(sys.argv[2]), dict(s.split("=") for s in sys.argv[3:])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        path = os.path.join(root, self.path.lstrip("/"))
        mode = specs.get(os.path.basename(self.path))
        try:
            if mode == "huge":
                self.send_response(200); self.send_header("Transfer-Encoding", "chunked"); self.end_headers()
                block = b"\0" * 65536
                try:
                    for _ in range(16384):  # 1 GiB, unless the client hangs up first
                        self.wfile.write(b"%x\r\n" % len(block) + block + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            if mode == "html":
                body = b"<html><body>Welcome</body></html>"
                self.send_response(200); self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
                return
            data = open(path, "rb").read()
        except (FileNotFoundError, IsADirectoryError):
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        except (BrokenPipeError, ConnectionResetError):
            return
        self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
        try:
            if mode == "trickle":
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1]); self.wfile.flush(); time.sleep(0.05)
            else:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
# serve MODE: starts server.py with chunk C1 misbehaving; sets URL
serve() {
  local port
  port=$(free_port)
  python3 server.py "$T/ds" "$port" "$C1=$1" &
  SERVER_PID=$!
  defer kill_wait "$SERVER_PID"
  wait_http "http://127.0.0.1:$port/" 15 || fail "test server did not start"
  URL=http://127.0.0.1:$port/
}

echo "== SIGTERM while a chunk trickles in byte by byte"
serve trickle
"$THAW" restore --progress none --store "$URL" "$S" a.img "$T/t.img" >t.out 2>t.err &
TP=$!
defer kill_wait "$TP"
sleep 3
t0=$(now_ns)
kill -TERM "$TP"
wait "$TP" || true
under 2 "$(seconds_since "$t0")" "SIGTERM ends a restore waiting for a trickling chunk"
echo "== a read of a trickling chunk through a mount fails within one --read-timeout"
mount_thaw trickle "$T/mnt3" --store "$URL" --page-cache --read-timeout 3 "$S"
t0=$(now_ns)
if dd if="$T/mnt3/a.img" of=/dev/null bs=4k count=1 skip=1024 status=none 2>dd.err; then
  fail "a read of a stalled chunk succeeded"
fi
under 4.5 "$(seconds_since "$t0")" "a 4 KiB read of a stalled chunk failed within the 3 s timeout (kernel retry included)"
expect_ok unmount3 unmount "$T/mnt3"
kill_wait "$SERVER_PID"

echo "== an endless HTTP body and a web page are named bad chunks"
serve huge
expect_fail huge restore --progress none --retry-for 0 --store "$URL" "$S" a.img "$T/h.img"
err_contains huge "$C1.*(exceeds|more than)" "the endless body names the chunk and the size bound"
mount_thaw huge "$T/mnt4" --store "$URL" "$S"
if dd if="$T/mnt4/a.img" of=/dev/null bs=4k count=1 skip=1024 status=none 2>/dev/null; then
  fail "a read of an oversized chunk succeeded"
fi
pass "a read of the oversized chunk fails with EIO"
cmp <(head -c 4096 a.img) <(head -c 4096 "$T/mnt4/a.img") || fail "the mount died with the oversized chunk"
pass "the mount lives on and serves other chunks"
expect_ok unmount4 unmount "$T/mnt4"
kill_wait "$SERVER_PID"
serve html
expect_fail html restore --progress none --retry-for 0 --store "$URL" "$S" a.img "$T/h2.img"
err_contains html "web page \(text/html\)" "a web page in place of a chunk is named"
kill_wait "$SERVER_PID"

echo "== a chunk file of 1 GiB, a link to /dev/zero, a FIFO: named bad chunks, at once"
cp "$C1_FILE" c1.saved
for kind in huge zero fifo; do
  rm -f "$C1_FILE"
  case $kind in
    huge) truncate -s 1G "$C1_FILE" ;;
    zero) ln -s /dev/zero "$C1_FILE" ;;
    fifo) mkfifo "$C1_FILE" ;;
  esac
  t0=$(now_ns)
  expect_fail "local-$kind" restore --progress none --store "$T/ds" "$S" a.img "$T/l-$kind.img"
  err_contains "local-$kind" "$C1" "restore names the $kind chunk"
  run_thaw "verify-$kind" verify --store "$T/ds" "$S"
  assert_eq 1 "$RC" "verify exits 1 for the $kind chunk"
  assert_file_contains "$T/verify-$kind.out" "bad chunk $C1" "verify lists the $kind chunk as bad"
  under 30 "$(seconds_since "$t0")" "restore and verify with the $kind chunk end promptly"
done
rm -f "$C1_FILE"
cp c1.saved "$C1_FILE"

echo "== the mount log: in the user's state directory, never through a planted link"
mkdir -p "$T/mnt5"
defer fusermount -u -z "$T/mnt5"
LOGDIR=$XDG_STATE_HOME/thaw
mkdir -p "$LOGDIR" && chmod 700 "$LOGDIR"
echo "precious" >victim
ln -s "$T/victim" "$LOGDIR/mount${T//\//-}-mnt5.log"
expect_fail logsym mount --store "$T/ds" "$S" "$T/mnt5"
err_contains logsym "refusing to write the mount log through the symbolic link" "a symbolic link at the log's name is refused"
assert_eq precious "$(cat victim)" "the link's target is untouched"
rm "$LOGDIR/mount${T//\//-}-mnt5.log"

echo "== secrets stay out of a mount's environment"
export THAW_KEY_PASSWORD='reliability test passphrase'
expect_ok keycreate key create --kdf scrypt key.json
expect_ok backupk backup --store "$T/ds" --id vm/101 --keyfile key.json b.img
SK=$(last_line "$T/backupk.out")
export THAW_STORE_PASSWORD=store-secret-xyz THAW_STORE_USER=u
defer timeout 30 "$THAW" unmount "$T/mnt5"
expect_ok envmount mount --store "$T/ds" --keyfile key.json "$SK" "$T/mnt5"
unset THAW_STORE_PASSWORD THAW_STORE_USER
P5=$(mount_pid "$T/mnt5")
[ -n "$P5" ] || fail "no mount process for mnt5"
[ -f "$LOGDIR/mount${T//\//-}-mnt5.log" ] || fail "the default log is not in $LOGDIR"
pass "the default log is in the user's state directory"
if tr '\0' '\n' <"/proc/$P5/environ" | grep -E '^(THAW_KEY_PASSWORD|THAW_STORE_PASSWORD)='; then
  fail "a secret is in the mount process's environment"
fi
pass "neither THAW_KEY_PASSWORD nor THAW_STORE_PASSWORD is in /proc/$P5/environ"
cmp b.img "$T/mnt5/b.img" || fail "the encrypted image reads wrong through the mount"
pass "the mount got the passphrase all the same"
expect_ok unmount5 unmount "$T/mnt5"
unset THAW_KEY_PASSWORD

echo "== a snapshot with a broken index mounts without that image and says which"
cp -a "$T/ds" "$T/ds-broken"
B_FIDX=$(find "$T/ds-broken" -name b.img.fidx -path "*${S##*/}*")
flip_byte "$B_FIDX" 4200
mount_thaw broken "$T/mnt6" --store "$T/ds-broken" "$S"
err_contains broken "warning: b.img .*left out.*checksum" "the mount names the broken index"
assert_eq "a.img" "$(ls "$T/mnt6")" "only the intact image is shown"
expect_ok unmount6 unmount "$T/mnt6"

echo "== an unreadable datastore fails at once, saying why"
chmod 711 "$T"
mkdir -p "$T/pub" && chmod 755 "$T/pub"
cp "${THAW_JAR:-$THAW_REPO/target/thaw.jar}" "$T/pub/thaw.jar"
chmod 644 "$T/pub/thaw.jar"
cp -a "$T/ds" "$T/pub/ds" && chmod -R a+rX "$T/pub/ds" && chmod 700 "$T/pub/ds/vm"
t0=$(now_ns)
set +e
HOME=$T/pub THAW_JAR=$T/pub/thaw.jar timeout 60 setpriv --reuid=65534 --regid=65534 --clear-groups \
  "$THAW" ls --store "$T/pub/ds" >unreadable.out 2>unreadable.err
rc=$?
set -e
assert_eq 1 "$rc" "ls of an unreadable datastore exits 1"
assert_file_contains unreadable.err "permission denied: $T/pub/ds/vm" "it names the directory and the reason"
under 10 "$(seconds_since "$t0")" "without retrying a permission"
chmod 700 "$T"
