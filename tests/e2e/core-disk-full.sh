#!/usr/bin/env bash
# Restore into a filesystem that is too small (a tmpfs and a loop-mounted ext4,
# both mounted under the test's temp dir): a clear out-of-space error, the state
# file kept; on the tmpfs, growing it and --resume then completes the restore. A guest
# writing through an overlay mount whose directory fills up gets ENOSPC, not EIO.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"

require_root "core-disk-full (mount)"

cd "$T" || exit 1
DS=$T/ds
head -c 96M /dev/urandom >a.img
note "a.img: 96 MiB random"
expect_ok backup backup --store "$DS" --id vm/600 a.img:a.img
snap=$(last_line "$T/backup.out")

# mount_here MOUNTPOINT ARGS...: mount under $T, unmounted at exit.
mount_here() {
  local mnt=$1
  shift
  mkdir -p "$mnt"
  mount "$@" "$mnt" || skip "cannot mount $* on $mnt"
  defer umount -l "$mnt"
  defer umount "$mnt"
}

echo "== tmpfs of 40 MiB"
mount_here "$T/tmpfs" -t tmpfs -o size=40m,mode=0700 tmpfs
expect_fail fulltmpfs restore --store "$DS" "$snap" a.img "$T/tmpfs/b.img"
err_contains fulltmpfs 'space|full|ENOSPC' "error mentions the lack of space"
err_contains fulltmpfs 'b\.img|tmpfs' "error names the target"
[ -e "$T/tmpfs/b.img.thaw-state" ] || fail "state file $T/tmpfs/b.img.thaw-state not kept"
pass "state file kept after running out of space"

echo "== loop-mounted ext4 of 48 MiB"
if command -v mkfs.ext4 >/dev/null 2>&1 && losetup -f >/dev/null 2>&1; then
  truncate -s 48M ext4.raw
  mkfs.ext4 -q -F ext4.raw
  mount_here "$T/ext4" -o loop ext4.raw
  expect_fail fullext4 restore --store "$DS" "$snap" a.img "$T/ext4/b.img"
  err_contains fullext4 'space|full|ENOSPC' "error mentions the lack of space"
  [ -e "$T/ext4/b.img.thaw-state" ] || fail "state file $T/ext4/b.img.thaw-state not kept"
  pass "state file kept on ext4 after running out of space"
else
  note "no mkfs.ext4 or loop device: ext4 case skipped"
fi

echo "== grow the tmpfs to 200 MiB and --resume"
mount -o remount,size=200m "$T/tmpfs" || fail "remount of tmpfs failed"
expect_ok resume restore --store "$DS" --resume "$snap" a.img "$T/tmpfs/b.img"
cmp a.img "$T/tmpfs/b.img" || fail "resumed restore differs"
pass "cmp after --resume on the grown tmpfs"
note "$(grep -E '^restored ' "$T/resume.err" | tail -n1)"
already=$(summary_field resume 'already done')
((already > 0)) || fail "resume after ENOSPC reports 0 chunks already done"
pass "resume after ENOSPC skipped $already finished chunks"
[ ! -e "$T/tmpfs/b.img.thaw-state" ] || fail "state file left after completed resume"

echo "== a guest write into a full overlay directory gets ENOSPC"
if [ -e /dev/fuse ] && command -v fusermount >/dev/null 2>&1; then
  mount_here "$T/small" -t tmpfs -o size=12m,mode=0700 tmpfs
  mount_thaw overlay "$T/mnt" --store "$DS" --overlay "$T/small" "$snap"
  set +e
  dd if=/dev/urandom of="$T/mnt/a.img" bs=1M count=32 conv=notrunc,fsync status=none 2>dd.err
  rc=$?
  set -e
  [ "$rc" != 0 ] || fail "32 MiB of writes into a 12 MiB overlay directory succeeded"
  assert_file_contains dd.err "No space left on device" "the writer sees a full disk (ENOSPC)"
  expect_ok unmount-overlay unmount "$T/mnt"
else
  note "no FUSE: overlay case skipped"
fi

echo "PASS: core-disk-full"
