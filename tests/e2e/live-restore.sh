#!/usr/bin/env bash
# Live restore under fire: a writer does random writes with fsync through a --restore-to mount
# and logs each acknowledged one; the mount is killed with SIGKILL at random moments, 20 rounds,
# and mounted again each time with the same command. At the end every acknowledged write is in
# the target, every other byte equals the backup, and no chunk recorded as restored was ever
# fetched again (nginx's access log against the state file). Also: --overlay keeps the backup
# unchanged and the changes in DIR; a state file of another image is refused.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
require_cmd fusermount python3 curl
[ -e /dev/fuse ] || skip "no /dev/fuse"
cd "$T" || exit 1

make_image src.img 64
expect_ok b backup --store "$T/ds" --id vm/100 src.img
S=$(last_line "$T/b.out")
start_nginx "$T/ds"
URL=http://127.0.0.1:$NGINX_PORT/
mkdir -p target mnt
defer fusermount -u -z "$T/mnt"

ACKED=$THAW_REPO/tests/tools/acked-writes
FIDX=$(find "$T/ds" -name 'src.img.fidx' | head -n1)

: >writes.log
rounds=20
for r in $(seq 1 $rounds); do
  before=$(wc -l <"$NGINX_DIR/access.log")
  done_before=$(restored_chunks target/src.img.thaw-state "$FIDX")
  # --foreground in the background: one JVM per round instead of two (same code path)
  "$THAW" mount --foreground --store "$URL" --restore-to target --restore-rate 6M "$S" "$T/mnt" >"mount$r.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    grep -q " $T/mnt fuse.thaw " /proc/mounts && break
    alive "$pid" || { cat "mount$r.log"; fail "round $r: the mount ended"; }
    sleep 0.1
  done
  grep -q " $T/mnt fuse.thaw " /proc/mounts || fail "round $r: not mounted after 30 s"
  python3 "$ACKED" write "$T/mnt/src.img" writes.log "$r" &
  wpid=$!
  sleep "$(python3 -c "import random; print(round(random.uniform(0.3, 1.8), 2))")"
  kill -9 "$pid"
  wait "$wpid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do grep -q " $T/mnt fuse" /proc/mounts || break; sleep 0.1; done
  fusermount -u -z "$T/mnt" 2>/dev/null || true
  # chunks recorded as restored before this round must not have been fetched in it
  no_refetch "round $r" "$before" "$done_before"
done
acks=$(grep -c '^ack ' writes.log || true)
((acks > 0)) || fail "the writer never got a write acknowledged"
pass "$rounds rounds of SIGKILL during writes with fsync ($acks acknowledged writes); no restored chunk fetched again"

# the last run: let the restore finish, then compare
expect_ok final mount --log "$T/final.log" --store "$URL" --restore-to target "$S" "$T/mnt"
wait_restore_complete "$T/mnt" 120 "the background restore completes"
expect_ok status status "$T/mnt"
assert_file_contains "$T/status.out" "live-restore: complete, 100.0%" "thaw status shows the restore complete"
"$THAW" unmount "$T/mnt" >/dev/null 2>&1
python3 "$ACKED" check src.img target/src.img writes.log || fail "the target does not hold the backup plus the acknowledged writes"
pass "after the restore completes the target is the backup plus every acknowledged write"

# --- a state file of another image is refused
make_image other.img 32
expect_ok b2 backup --store "$T/ds" --id vm/200 other.img
S2=$(last_line "$T/b2.out")
mkdir -p wrong
cp target/src.img wrong/other.img
cp target/src.img.thaw-state wrong/other.img.thaw-state
mkdir -p mnt2
expect_fail wrongstate mount --store "$URL" --restore-to wrong "$S2" "$T/mnt2"
err_contains wrongstate "different image" "a state file of another image is refused"

# --- overlay: writes land in DIR, the backup stays as it was
mkdir -p ovl
mount_thaw ovl "$T/mnt2" --store "$URL" --overlay ovl "$S2"
printf 'overlay-bytes' | dd of="$T/mnt2/other.img" bs=1 seek=12345 conv=notrunc,fsync status=none
[ "$(dd if="$T/mnt2/other.img" bs=1 skip=12345 count=13 status=none)" = overlay-bytes ] || fail "overlay does not read back its write"
"$THAW" unmount "$T/mnt2" >/dev/null 2>&1
expect_ok r2 restore --progress none --store "$URL" "$S2" other.img restored-other.img
cmp other.img restored-other.img || fail "the backup changed under an overlay"
[ "$(dd if=ovl/other.img bs=1 skip=12345 count=13 status=none)" = overlay-bytes ] || fail "the overlay file lacks the write"
used=$(du -k ovl/other.img | cut -f1)
((used <= 8 * 1024)) || fail "the overlay file is not sparse ($used KiB for one changed chunk)"
pass "--overlay: writes kept in a sparse file in DIR ($used KiB), the backup unchanged"
