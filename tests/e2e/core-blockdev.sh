#!/usr/bin/env bash
# Restore onto block devices (loop devices over files in the temp dir): a device
# full of garbage gets the exact image (zeros written explicitly), a zeroed one
# with --target-is-zero, and a too-small device is refused up front. A live restore
# (mount --restore-to ARCHIVE=DEVICE) fills a device while a write goes through the mount.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=SCRIPTDIR/../mount-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"

require_root "core-blockdev (loop devices)"
require_cmd losetup
losetup -f >/dev/null 2>&1 || skip "no free loop device (losetup -f failed)"

cd "$T" || exit 1
DS=$T/ds
make_image a.img 40
size=$(file_size a.img)
note "a.img: 40 MiB (random/text/zero mix)"
expect_ok backup backup --store "$DS" --id vm/500 a.img:a.img
snap=$(last_line "$T/backup.out")

dev="" zdev="" sdev=""
# attach FILE VAR: set VAR to a new loop device over FILE; detached at exit.
# (Runs in this shell, not in $(...), so the defer sticks.)
attach() {
  local d
  d=$(losetup -f --show "$1") || skip "losetup -f --show $1 failed"
  defer losetup -d "$d"
  printf -v "$2" '%s' "$d"
}

# Device restores get --state-file under $T (the default is ~/.local/state/thaw).
# A thaw state file beside a device would land in /dev: make sure none is left.
no_dev_state() {
  if [ -e "$1.thaw-state" ]; then
    rm -f "$1.thaw-state"
    fail "thaw left a state file $1.thaw-state in /dev"
  fi
}

echo "== restore onto a 64 MiB loop device full of random data"
head -c 64M /dev/urandom >big.raw
attach big.raw dev
note "device $dev ($(blockdev --getsize64 "$dev") bytes)"
tail_before=$(tail -c +$((size + 1)) "$dev" | md5sum)
expect_ok restore1 restore --store "$DS" --state-file "$T/dev1.thaw-state" "$snap" a.img "$dev"
no_dev_state "$dev"
cmp -n "$size" a.img "$dev" || fail "device content differs from a.img (first $size bytes)"
pass "cmp -n $size a.img $dev (zero chunks overwrote the garbage)"
assert_eq "$tail_before" "$(tail -c +$((size + 1)) "$dev" | md5sum)" "bytes past the image size untouched"

echo "== restore onto a zeroed loop device with --target-is-zero"
truncate -s 48M zero.raw
attach zero.raw zdev
expect_ok restore2 restore --store "$DS" --state-file "$T/dev2.thaw-state" --target-is-zero "$snap" a.img "$zdev"
no_dev_state "$zdev"
cmp -n "$size" a.img "$zdev" || fail "--target-is-zero device content differs"
pass "cmp -n $size a.img $zdev (--target-is-zero)"

echo "== loop device smaller than the image"
head -c 32M /dev/urandom >small.raw
attach small.raw sdev
small_before=$(md5sum <"$sdev")
expect_fail small restore --store "$DS" --state-file "$T/dev3.thaw-state" "$snap" a.img "$sdev"
err_contains small 'size|small|bytes|MiB|space' "error mentions the size"
err_contains small "$sdev|$size|40 ?MiB" "error names the device or the image size"
no_dev_state "$sdev"
assert_eq "$small_before" "$(md5sum <"$sdev")" "too-small device left untouched"

echo "== live restore onto a loop device: thaw mount --restore-to a.img=DEVICE"
if [ -e /dev/fuse ] && command -v fusermount >/dev/null 2>&1; then
  head -c 48M /dev/urandom >live.raw
  attach live.raw ldev
  mount_thaw live "$T/mnt" --store "$DS" --restore-to "a.img=$ldev" "$snap"
  # a write into a chunk the background restore may not have reached, made durable
  python3 - "$T/mnt/a.img" <<'PY' || fail "write through the live-restore mount"
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"\xab" * 4096, (9 << 20) + 512)
os.fsync(fd)
os.close(fd)
PY
  wait_restore_complete "$T/mnt" 30 "the live restore onto $ldev completes"
  expect_ok liveu unmount "$T/mnt"
  cp a.img expected.img
  python3 -c "import sys; f = open('expected.img', 'r+b'); f.seek((9 << 20) + 512); f.write(b'\xab' * 4096)"
  cmp -n "$size" expected.img "$ldev" || fail "the device holds something else than the image plus the write"
  no_dev_state "$ldev"
  state=$XDG_STATE_HOME/thaw/$(echo "${ldev#/}" | tr / _).thaw-state
  [ -f "$state" ] || fail "no live-restore state file at $state"
  pass "live restore onto $ldev: the image plus a write made through the mount; state in \$XDG_STATE_HOME/thaw"
else
  note "SKIP live restore onto a device: no /dev/fuse or fusermount"
fi

echo "PASS: core-blockdev"
