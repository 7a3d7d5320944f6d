#!/usr/bin/env bash
# thaw mount: byte-exact image, files copied out via fuse2fs and a read-only loop
# mount, concurrent readers, EIO on exactly the reads that touch a corrupt chunk (and no
# poisoning), clean unmount (returning once the serving process has ended) also after
# SIGKILL, the whole-datastore tree with a chunk shared by two snapshots fetched once.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
require_cmd fusermount mkfs.ext4 sfdisk fuse2fs
[ -e /dev/fuse ] || skip "no /dev/fuse"

MIB=$((1 << 20))
"$THAW_REPO/tests/fixtures/make-disk-image" "$T/disk.img" 320 "$T/files"
DS=$T/ds
expect_ok b1 backup --store "$DS" --id vm/100 "$T/disk.img"
S1=$(last_line "$T/b1.out")

# --- the exposed file equals the source ------------------------------------------------
M=$T/mnt
mount_thaw m1 "$M" --store "$DS" "$S1"
assert_eq "$(file_size "$T/disk.img")" "$(file_size "$M/disk.img")" "exposed size"
[ "$(stat -c %a "$M/disk.img")" = 444 ] || fail "image mode is not 0444"
cmp "$T/disk.img" "$M/disk.img" || fail "mounted image differs from the source"
pass "mounted image equals the source byte for byte"
status_json "$M" 's["images"][0]["read_ahead_hits"] > 0' | grep -q True || fail "no read-ahead hits on a sequential read"
pass "sequential read used read-ahead ($(status_json "$M" 's["images"][0]["read_ahead_hits"]') hits)"

# --- four concurrent readers at different offsets ------------------------------------
pids=()
for off in 0 72 150 230; do
  dd if="$M/disk.img" of="$T/part-$off" bs=1M skip="$off" count=64 status=none &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent dd failed"; done
for off in 0 72 150 230; do
  cmp "$T/part-$off" <(dd if="$T/disk.img" bs=1M skip="$off" count=64 status=none) ||
    fail "concurrent reader at ${off} MiB got wrong bytes"
done
pass "four concurrent dd readers got the right bytes"

# --- copy a file out with fuse2fs (no root needed) -------------------------------------
F=$T/fs
mkdir -p "$F"
defer fusermount -u -z "$F"
fuse2fs -o ro,fakeroot,offset=$MIB "$M/disk.img" "$F" >"$T/fuse2fs.log" 2>&1 || { cat "$T/fuse2fs.log"; fail "fuse2fs"; }
cp "$F/random/eight-mib.bin" "$T/copied.bin"
cmp "$T/copied.bin" "$T/files/random/eight-mib.bin" || fail "file copied via fuse2fs differs"
cmp "$F/sparse/holes.bin" "$T/files/sparse/holes.bin" || fail "sparse file via fuse2fs differs"
fusermount -u "$F"
pass "files copied out through fuse2fs equal the originals"

# --- read-only loop device with partitions --------------------------------------------
if [ "$(id -u)" = 0 ] && losetup -f >/dev/null 2>&1; then
  L=$(losetup -r -P -f --show "$M/disk.img")
  defer losetup -d "$L"
  PART=$(loop_part1 "$L")
  LM=$T/loopfs
  mkdir -p "$LM"
  defer umount -l "$LM"
  mount -o ro "$PART" "$LM"
  cmp "$LM/text/notes-1.txt" "$T/files/text/notes-1.txt" || fail "file copied via loop mount differs"
  cmp "$LM/hello.txt" "$T/files/hello.txt" || fail "hello.txt via loop mount differs"
  umount "$LM"
  losetup -d "$L"
  pass "files copied out through a read-only loop mount (losetup -r -P) equal the originals"
else
  note "SKIP loop mount part: needs root and a free loop device"
fi

# --- a busy mount point: thaw unmount tries for a while, then says what holds it ------------
exec 3<"$M/disk.img"
expect_fail busy unmount "$M" 3<&-
grep -q "busy" "$T/busy.err" || fail "unmount of a busy mount point does not say it is busy"
grep -q " $M fuse" /proc/mounts || fail "a busy mount point was unmounted anyway"
"$THAW" unmount "$M" 3<&- >"$T/busy2.out" 2>&1 &
UNMOUNT=$!
sleep 0.5
exec 3<&-
wait "$UNMOUNT" || { cat "$T/busy2.out"; fail "unmount failed although the file was closed within its tries"; }
pass "a busy mount point: unmount says so, and succeeds once the file is closed within 2 s"
mount_thaw m1b "$M" --store "$DS" "$S1"

# --- one JVM serves a mount, and unmount leaves nothing behind -------------------------
P=$(mount_pid "$M")
[ -n "$P" ] || fail "no mount process found"
assert_eq 1 "$(mount_processes "$M")" "exactly one java process serves the mount"
[ "$(ps -o sid= -p "$P" | tr -d ' ')" = "$P" ] || fail "the mount process is not in a session of its own"
pass "the mount process leads its own session (a closed terminal does not end it)"
expect_ok u1 unmount "$M"
grep -q " $M fuse" /proc/mounts && fail "still mounted after thaw unmount"
alive "$P" && fail "mount process $P still running after unmount"
pass "thaw unmount leaves no mount and no process"

# --- unmount returns only once the serving process has ended ---------------------------
# The serving process is stopped while unmount runs: unmount must still be waiting for it.
mount_thaw m1c "$M" --store "$DS" "$S1"
P=$(mount_pid "$M")
[ -n "$P" ] || fail "no mount process found"
defer kill -CONT "$P"
kill -STOP "$P"
"$THAW" unmount "$M" >"$T/u1c.out" 2>&1 &
UNMOUNT=$!
# once the kernel has let go of the mount, unmount has only the process left to wait for
for _ in $(seq 1 300); do grep -q " $M fuse" /proc/mounts || break; sleep 0.1; done
grep -q " $M fuse" /proc/mounts && { kill -CONT "$P"; fail "the kernel still holds the mount 30 s after unmount began"; }
sleep 1
if ! alive "$UNMOUNT" || grep -q "unmounted" "$T/u1c.out"; then
  kill -CONT "$P"; cat "$T/u1c.out"; fail "unmount returned while the mount process was still there"
fi
kill -CONT "$P"
wait "$UNMOUNT" || { cat "$T/u1c.out"; fail "unmount failed"; }
alive "$P" && fail "mount process $P still running after unmount returned"
pass "unmount waits for the serving process to end"

# --- a corrupt chunk gives EIO on exactly the reads that touch it --------------------------
mapfile -t DIG < <(chunk_digests "$T/disk.img")
ZERO=$(zero_digests "$T/disk.img")
K=""
for ((k = 20; k < ${#DIG[@]} - 1; k++)); do
  if ! grep -q "${DIG[k]}" <<<"$ZERO" && ! grep -q "${DIG[k-1]}" <<<"$ZERO" && ! grep -q "${DIG[k+1]}" <<<"$ZERO"; then
    # only a chunk whose digest appears once, so that no other offset shares it
    [ "$(printf '%s\n' "${DIG[@]}" | grep -c "${DIG[k]}")" = 1 ] && { K=$k; break; }
  fi
done
[ -n "$K" ] || fail "no suitable chunk to corrupt"
CF=$(chunk_path "$DS" "${DIG[K]}")
cp "$CF" "$T/chunk.orig"
flip_byte "$CF" $(( $(file_size "$CF") / 2 ))
mount_thaw m2 "$M" --store "$DS" "$S1"
if dd if="$M/disk.img" of=/dev/null bs=4M skip="$K" count=1 2>"$T/dd-bad.err"; then
  fail "reading the corrupt chunk $K succeeded"
fi
grep -qi "input/output error" "$T/dd-bad.err" || { cat "$T/dd-bad.err"; fail "reading the corrupt chunk did not give EIO"; }
if dd if="$M/disk.img" of=/dev/null bs=1M skip=$((K * 4 - 1)) count=2 iflag=direct 2>/dev/null; then
  fail "a read spanning into the corrupt chunk succeeded"
fi
cmp <(dd if="$M/disk.img" bs=4M skip=$((K - 1)) count=1 status=none) <(dd if="$T/disk.img" bs=4M skip=$((K - 1)) count=1 status=none) ||
  fail "the chunk before the corrupt one reads wrong"
cmp <(dd if="$M/disk.img" bs=4M skip=$((K + 1)) count=1 status=none) <(dd if="$T/disk.img" bs=4M skip=$((K + 1)) count=1 status=none) ||
  fail "the chunk after the corrupt one reads wrong"
grep -q "${DIG[K]}" "$T/m2.mount.log" || fail "the log does not name the corrupt chunk's digest"
grep -q "$DS" "$T/m2.mount.log" || fail "the log does not name the store"
pass "a corrupt chunk gives EIO on the reads that touch it, the rest reads right, the log names digest and store"
cp "$T/chunk.orig" "$CF"
cmp <(dd if="$M/disk.img" bs=4M skip="$K" count=1 status=none) <(dd if="$T/disk.img" bs=4M skip="$K" count=1 status=none) ||
  fail "after repairing the chunk, the read still fails (failure was remembered)"
pass "a failed chunk is not poisoned: once repaired, the next read succeeds"

# --- SIGTERM unmounts cleanly -------------------------------------------------------------
P=$(mount_pid "$M")
kill -TERM "$P"
for _ in $(seq 1 100); do alive "$P" || break; sleep 0.1; done
alive "$P" && fail "mount process still running 10 s after SIGTERM"
grep -q " $M fuse" /proc/mounts && fail "still mounted after SIGTERM"
pass "SIGTERM unmounts and ends the mount process"
mount_thaw m2b "$M" --store "$DS" "$S1"

# --- SIGKILL leaves no dead mount point ---------------------------------------------------
P=$(mount_pid "$M")
kill -9 "$P"
for _ in $(seq 1 100); do grep -q " $M fuse" /proc/mounts || break; sleep 0.1; done
grep -q " $M fuse" /proc/mounts && fail "mount point left behind after SIGKILL"
alive "$P" && fail "killed process still there"
ls "$M" >/dev/null || fail "mount point unusable after SIGKILL"
pass "after SIGKILL the mount point is released (auto_unmount)"

# --- whole-datastore tree; a chunk common to two snapshots is fetched once ---------------------
cp "$T/disk.img" "$T/disk2.img"
head -c 8M /dev/urandom | dd of="$T/disk2.img" bs=1M seek=100 conv=notrunc status=none
sleep 1
expect_ok b2 backup --store "$DS" --id vm/100 "disk.img:$T/disk2.img"
S2=$(last_line "$T/b2.out")
W=$T/all
mount_thaw m3 "$W" --store "$DS" --cache-size 1G
[ "$(ls "$W/vm/100" | wc -l)" = 2 ] || { ls -R "$W"; fail "the tree does not list two snapshots"; }
[ -d "$W/.thaw" ] || fail "no .thaw in the tree root"
cmp "$W/$S1/disk.img" "$T/disk.img" || fail "snapshot 1 via the tree differs"
cmp "$W/$S2/disk.img" "$T/disk2.img" || fail "snapshot 2 via the tree differs"
expected=$( { chunk_digests "$T/disk.img"; chunk_digests "$T/disk2.img"; } | grep -vxF -f <(zero_digests "$T/disk.img") | sort -u | wc -l)
fetched=$(status_json "$W" 's["pipeline"]["chunks_fetched"]')
assert_eq "$expected" "$fetched" "chunks fetched for both snapshots (distinct non-zero chunks)"
second=$(status_json "$W" '[i["chunks_fetched"] for i in s["images"] if i["path"].startswith("'"$S2"'")][0]')
[ "$second" -le 2 ] || fail "snapshot 2 fetched $second chunks; only the 2 changed chunks should be new"
pass "two snapshots listed; chunks common to both fetched once ($fetched fetched, snapshot 2 needed $second)"

# --- direct I/O by default, the page cache with --page-cache ---------------------------------
# reads_after_reread MOUNTPOINT: reads thaw served for a second buffered read of the same MiB
reads_after_reread() {
  local before
  dd if="$1/disk.img" of=/dev/null bs=1M skip=20 count=1 status=none
  before=$(status_json "$1" 's["images"][0]["reads"]')
  dd if="$1/disk.img" of=/dev/null bs=1M skip=20 count=1 status=none
  echo $(($(status_json "$1" 's["images"][0]["reads"]') - before))
}
DIO=$T/dio
mount_thaw m5 "$DIO" --store "$DS" "$S1"
again=$(reads_after_reread "$DIO")
[ "$again" -gt 0 ] || fail "a re-read did not reach thaw: the image is not read with direct I/O"
expect_ok u5 unmount "$DIO"
PC=$T/pc
mount_thaw m4 "$PC" --store "$DS" --page-cache "$S1"
again=$(reads_after_reread "$PC")
assert_eq 0 "$again" "under --page-cache a re-read is served by the kernel's page cache"
pass "direct I/O by default (a re-read reaches thaw); --page-cache keeps the kernel's pages"
python3 - "$PC/disk.img" "$T/disk.img" <<'PY' || fail "shared mmap of the image under --page-cache"
import mmap, sys
with open(sys.argv[1], 'rb') as f, open(sys.argv[2], 'rb') as src:
    m = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    for off in (0, 5 << 20, len(m) - (1 << 20)):
        src.seek(off)
        if m[off:off + (1 << 20)] != src.read(1 << 20):
            sys.exit("mmap bytes differ at %d" % off)
PY
cmp "$PC/disk.img" "$T/disk.img" || fail "image under --page-cache differs from the source"
expect_ok u4 unmount "$PC"
pass "--page-cache: the image reads right and maps with shared mmap"
