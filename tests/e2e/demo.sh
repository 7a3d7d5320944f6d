#!/usr/bin/env bash
# The README's first command ends in mount-scripts/demo: it must keep working (backup, ls,
# verify, restore + compare, mount + copy a file out + unmount), inside this test's temp dir.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
export THAW_DEMO_DIR=$T/demo
defer fusermount -u -z "$THAW_DEMO_DIR/fs"
defer fusermount -u -z "$THAW_DEMO_DIR/mnt"
timeout 300 "$THAW_REPO/mount-scripts/demo" >"$T/demo.log" 2>&1 || { tail -n 30 "$T/demo.log"; fail "mount-scripts/demo failed"; }
grep -q "^demo OK" "$T/demo.log" || fail "demo did not finish"
grep -q "restored image is identical" "$T/demo.log" || fail "demo did not compare the restore"
if [ -e /dev/fuse ] && command -v fusermount >/dev/null; then
  grep -q "copied out of the mounted backup: hello from inside the backup" "$T/demo.log" ||
    { tail -n 30 "$T/demo.log"; fail "demo did not copy the file out of the mount"; }
fi
grep -q " $THAW_DEMO_DIR/mnt fuse" /proc/mounts && fail "demo left its mount behind"
pass "mount-scripts/demo runs end to end and cleans up its mount"
