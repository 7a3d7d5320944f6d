#!/usr/bin/env bash
# The README's three uses of a mounted backup, run as written there (paths under $T instead of
# /mnt and /var/tmp; a file instead of /dev/sdX): qcow2 overlay written and read with qemu-io,
# files copied out with thaw files cp, fuse2fs on the partition file, fuse2fs with an offset and a loop
# device, a dd restore.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
require_cmd fusermount qemu-img qemu-io fuse2fs sfdisk mkfs.ext4
[ -e /dev/fuse ] || skip "no /dev/fuse"

mkdir -p "$T/src" "$T/files/etc"
echo "UUID=1234 / ext4 defaults 0 1" >"$T/files/etc/fstab" # the README copies /etc/fstab out
"$THAW_REPO/tests/fixtures/make-disk-image" "$T/src/a.img" 256 "$T/files"
expect_ok b backup --store "$T/ds" --id vm/100 "$T/src/a.img"
S=$(last_line "$T/b.out")
MNT=$T/mnt/thaw
mount_thaw m "$MNT" --store "$T/ds" "$S"
ls -l "$MNT" | grep -q ' a.img$' || fail "a.img not listed"
status_json "$MNT" 's["snapshot"]' | grep -q "$S" || fail ".thaw/status does not name the snapshot"

# 1. qcow2 overlay backed by the read-only image
OVL=$T/var/tmp/vm100-overlay.qcow2
mkdir -p "$(dirname "$OVL")"
qemu-img create -f qcow2 -F raw -b "$MNT/a.img" "$OVL" >"$T/qemu-img.log"
qemu-img compare -f qcow2 -F raw "$OVL" "$T/src/a.img" >"$T/compare.log" || { cat "$T/compare.log"; fail "overlay does not read like the source"; }
qemu-io -f qcow2 -c 'write -P 0xab 100M 64k' "$OVL" >"$T/qemu-io-w.log" || fail "qemu-io write to the overlay"
qemu-io -f qcow2 -c 'read -P 0xab 100M 64k' "$OVL" >"$T/qemu-io-r.log" || fail "qemu-io read-back from the overlay"
qemu-io -f qcow2 -r -c 'read -v 1M 512' "$OVL" >"$T/qemu-io-base.log" || fail "qemu-io read of the base"
cmp "$MNT/a.img" "$T/src/a.img" || fail "the mounted image changed"
pass "qcow2 overlay on the read-only image: reads like the source, takes writes, the backup stays unchanged"

# 2. thaw files, no mount at all; and the mount's partition file with fuse2fs, without an offset
expect_ok files-cp files cp --store "$T/ds" "$S" a.img.p1 /etc/fstab "$T/recovered-fstab-0"
cmp "$T/recovered-fstab-0" "$T/files/etc/fstab" || fail "fstab via thaw files cp differs"
pass "README recipe: file copied out with thaw files cp"
VMFS=$T/mnt/vmfs
mkdir -p "$VMFS"
defer fusermount -u -z "$VMFS"
fuse2fs -o ro,fakeroot "$MNT/a.img.p1" "$VMFS" >"$T/fuse2fs.log" 2>&1 || { cat "$T/fuse2fs.log"; fail fuse2fs; }
cp "$VMFS/etc/fstab" "$T/recovered-fstab-p1"
fusermount -u "$VMFS"
cmp "$T/recovered-fstab-p1" "$T/files/etc/fstab" || fail "fstab via fuse2fs on the partition file differs"
pass "README recipe: file copied out with fuse2fs from the partition file, no offset"
# a partition file keeps the kernel's pages (its readers read a few KiB at a time): the first read
# of its last MiB (nothing above read it) reaches thaw, a second read of it does not
last=$(($(stat -c %s "$MNT/a.img.p1") / 65536 - 16))
reads() { status_json "$MNT" 's["images"][0]["reads"]'; }
r0=$(reads)
dd if="$MNT/a.img.p1" of=/dev/null bs=64k skip="$last" count=16 status=none
r1=$(reads)
[ "$r1" -gt "$r0" ] || fail "the first read of the partition file's last MiB did not reach thaw"
dd if="$MNT/a.img.p1" of=/dev/null bs=64k skip="$last" count=16 status=none
assert_eq "$r1" "$(reads)" "a re-read of the partition file is served by the kernel's page cache"

# 2a. fuse2fs with an offset, no root
fuse2fs -o ro,fakeroot,offset=1048576 "$MNT/a.img" "$VMFS" >"$T/fuse2fs.log" 2>&1 || { cat "$T/fuse2fs.log"; fail fuse2fs; }
cp "$VMFS/etc/fstab" "$T/recovered-fstab"
fusermount -u "$VMFS"
cmp "$T/recovered-fstab" "$T/files/etc/fstab" || fail "fstab via fuse2fs differs"
pass "README recipe: file copied out with fuse2fs"

# 2b. loop device with partitions (root)
if [ "$(id -u)" = 0 ] && losetup -f >/dev/null 2>&1; then
  L=$(losetup -r -P -f --show "$MNT/a.img")
  defer losetup -d "$L"
  P1=$(loop_part1 "$L")
  defer umount -l "$VMFS"
  mount -o ro "$P1" "$VMFS"
  cp "$VMFS/etc/fstab" "$T/recovered-fstab-2"
  umount "$VMFS" && losetup -d "$L"
  cmp "$T/recovered-fstab-2" "$T/files/etc/fstab" || fail "fstab via loop mount differs"
  pass "README recipe: file copied out through losetup -r -P"
else
  note "SKIP loop recipe: needs root and a free loop device"
fi

# 3. dd restore
dd if="$MNT/a.img" of="$T/sdX.img" bs=4M conv=sparse status=none
cmp "$T/sdX.img" "$T/src/a.img" || fail "dd restore differs"
pass "README recipe: dd restore from the mounted file equals the source"
expect_ok u unmount "$MNT"
