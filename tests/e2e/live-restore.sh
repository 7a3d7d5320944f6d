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

cat >writer.py <<'PY'
# writer.py IMAGE LOG SEED: random pwrite + fsync until killed or an I/O error; each write is
# logged as "intent" before and "ack" after its fsync returned (the log itself is fsynced).
import os, random, sys
img, log, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = os.path.getsize(img)
rnd = random.Random(seed)
fd = os.open(img, os.O_RDWR)
lf = open(log, "a")
n = 0
while True:
    length = rnd.choice([1, 512, 4096, 65536, rnd.randint(1, 200000)])
    off = rnd.randrange(0, size - length)
    data = rnd.randbytes(length)
    tag = "%d-%d" % (seed, n)
    lf.write("intent %s %d %d %s\n" % (tag, off, length, data.hex() if length <= 4096 else "seed"))
    lf.flush(); os.fsync(lf.fileno())
    with open(log + ".data", "ab") as df:
        df.write(data)
    try:
        os.pwrite(fd, data, off)
        os.fsync(fd)
    except OSError:
        sys.exit(0)
    lf.write("ack %s\n" % tag)
    lf.flush(); os.fsync(lf.fileno())
    n += 1
PY

# state_done STATE FIDX: the digests of the chunks a state file records as restored
cat >state_done.py <<'PY'
import struct, sys
st = open(sys.argv[1], "rb").read()
fidx = open(sys.argv[2], "rb").read()
digests = [fidx[4096 + 32 * i: 4096 + 32 * (i + 1)].hex() for i in range((len(fidx) - 4096) // 32)]
n = struct.unpack_from("<i", st, 48)[0]
nb = (n + 7) // 8
best = None
for slot in range(2):
    off = 56 + slot * (12 + nb)
    if len(st) >= off + 12 + nb:
        seq = struct.unpack_from("<q", st, off)[0]
        if seq % 2 == slot and (best is None or seq > best[0]):
            best = (seq, st[off + 12: off + 12 + nb])
bits = best[1]
for i in range(n):
    if bits[i // 8] >> (i % 8) & 1:
        print(digests[i])
PY
FIDX=$(find "$T/ds" -name 'src.img.fidx' | head -n1)

: >writes.log
rounds=20
for r in $(seq 1 $rounds); do
  before=$(wc -l <"$NGINX_DIR/access.log")
  done_before=$( [ -f target/src.img.thaw-state ] && python3 state_done.py target/src.img.thaw-state "$FIDX" | sort -u || true)
  # --foreground in the background: one JVM per round instead of two (same code path)
  "$THAW" mount --foreground --store "$URL" --restore-to target --restore-rate 6M "$S" "$T/mnt" >"mount$r.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    grep -q " $T/mnt fuse.thaw " /proc/mounts && break
    alive "$pid" || { cat "mount$r.log"; fail "round $r: the mount ended"; }
    sleep 0.1
  done
  grep -q " $T/mnt fuse.thaw " /proc/mounts || fail "round $r: not mounted after 30 s"
  python3 writer.py "$T/mnt/src.img" writes.log "$r" &
  wpid=$!
  sleep "$(python3 -c "import random; print(round(random.uniform(0.3, 1.8), 2))")"
  kill -9 "$pid"
  wait "$wpid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do grep -q " $T/mnt fuse" /proc/mounts || break; sleep 0.1; done
  fusermount -u -z "$T/mnt" 2>/dev/null || true
  # chunks recorded as restored before this round must not have been fetched in it
  if [ -n "$done_before" ]; then
    { tail -n +"$((before + 1))" "$NGINX_DIR/access.log" | grep -o '/\.chunks/..../[0-9a-f]*' || true; } |
      sed 's|.*/||' | sort -u >fetched$r.txt
    again=$(comm -12 <(echo "$done_before") fetched$r.txt | wc -l)
    [ "$again" = 0 ] || fail "round $r: $again chunk(s) recorded as restored were fetched again"
  fi
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
python3 - src.img target/src.img writes.log <<'PY' || fail "the target does not hold the backup plus the acknowledged writes"
import sys
src, tgt, log = sys.argv[1:4]
exp = bytearray(open(src, "rb").read())
got = open(tgt, "rb").read()
data = open(log + ".data", "rb").read()
pos = 0
intents = {}
order = []
for line in open(log):
    f = line.split()
    if f[0] == "intent":
        off, ln = int(f[2]), int(f[3])
        intents[f[1]] = (off, ln, data[pos:pos + ln])
        order.append(f[1])
        pos += ln
    else:
        intents[f[1]] = intents[f[1]] + ("ack",)
unsure = bytearray(len(exp))  # bytes an unacknowledged write may or may not have changed
for t in order:
    w = intents[t]
    off, ln, d = w[0], w[1], w[2]
    if len(w) == 4:
        exp[off:off + ln] = d
        unsure[off:off + ln] = b"\0" * ln
    else:
        unsure[off:off + ln] = b"\1" * ln
bad = [i for i in range(len(exp)) if exp[i] != got[i] and not unsure[i]]
if bad:
    print("%d bytes differ, first at %d" % (len(bad), bad[0]))
    sys.exit(1)
print("target == backup + %d acknowledged writes" % sum(1 for t in order if len(intents[t]) == 4))
PY
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
