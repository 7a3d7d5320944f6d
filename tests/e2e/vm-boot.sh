#!/usr/bin/env bash
# Instant boot, for real: a small disk (MBR + ext4 holding check.txt) is backed up, mounted with
# --restore-to, and booted under qemu-system-x86_64 (software emulation) with mount-scripts/boot-vm:
# Debian's kernel and a busybox initramfs that mounts the disk, checks the file, writes a marker
# and powers off. After the background restore completes, the marker is in the restored target.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
require_cmd qemu-system-x86_64 cpio gzip fusermount fuse2fs sfdisk mkfs.ext4 strings
[ -e /dev/fuse ] || skip "no /dev/fuse"
kit=$("$THAW_REPO/tests/tools/vm-kit") || fail "could not assemble the VM kit (kernel, busybox)"
cd "$T" || exit 1

# --- the disk: check.txt in an ext4 partition (plus the fixture's random and text files)
mkdir -p files
echo "thaw boot check" >files/check.txt
"$THAW_REPO/tests/fixtures/make-disk-image" disk.img 64 files

# --- the initramfs: busybox, the modules for virtio disks and ext4, and an init that does the job
mkdir -p initrd/bin initrd/dev initrd/proc initrd/sys initrd/mnt initrd/lib/modules
cp "$kit/busybox" initrd/bin/busybox
cp "$kit"/modules/*.ko initrd/lib/modules/
cp "$kit/modules.order" initrd/lib/modules/
cat >initrd/init <<'SH'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/modules.order); do insmod /lib/modules/$m 2>/dev/null; done
for i in $(seq 1 100); do [ -b /dev/vda1 ] && break; sleep 0.1; done
if mount -t ext4 /dev/vda1 /mnt; then
  if [ "$(cat /mnt/check.txt)" = "thaw boot check" ]; then
    echo "booted from thaw at $(date)" >/mnt/marker.txt
    echo "THAW-VM: check ok, marker written"
  else
    echo "THAW-VM: check.txt is wrong"
  fi
  umount /mnt
else
  echo "THAW-VM: cannot mount /dev/vda1"
fi
sync
echo "THAW-VM: done"
poweroff -f
SH
chmod +x initrd/init
(cd initrd && find . | cpio -o -H newc --quiet | gzip -1) >initrd.gz

expect_ok b backup --store "$T/ds" --id vm/300 disk.img
S=$(last_line "$T/b.out")
start_nginx "$T/ds"
mkdir -p target
mount_thaw m "$T/mnt" --store "http://127.0.0.1:$NGINX_PORT/" --restore-to target --restore-rate 20M "$S"
[ -w "$T/mnt/disk.img" ] || fail "the live-restore image is not writable"

# --- boot (software emulation; a minute at most)
"$THAW_REPO/mount-scripts/boot-vm" --no-kvm --memory 256M --cpus 1 --timeout 240 \
  --kernel "$kit/vmlinuz" --initrd initrd.gz --append "console=ttyS0 panic=-1 quiet" \
  --serial-log console.log "$T/mnt/disk.img" >qemu.out 2>&1 || { tail -n 20 console.log qemu.out >&2; fail "the VM did not run to its end"; }
grep -q "THAW-VM: check ok, marker written" console.log || { tail -n 30 console.log >&2; fail "the VM did not find check.txt or could not write"; }
pass "the VM booted from the live-restore mount, read check.txt and wrote its marker"

wait_restore_complete "$T/mnt" 120 "the background restore completes"
"$THAW" unmount "$T/mnt" >/dev/null 2>&1

# --- the marker is in the restored target; everything else the VM did not touch is intact
mkdir -p fs
defer fusermount -u -z "$T/fs"
fuse2fs -o ro,fakeroot,offset=1048576 target/disk.img fs >fuse2fs.log 2>&1 || { cat fuse2fs.log; fail "fuse2fs on the target"; }
grep -q "booted from thaw" fs/marker.txt || fail "the marker is not in the restored target"
cmp fs/check.txt files/check.txt || fail "check.txt differs in the target"
cmp fs/random/eight-mib.bin files/random/eight-mib.bin || fail "a file the VM did not touch differs in the target"
fusermount -u "$T/fs"
pass "after the restore completes, the target holds the VM's marker and the untouched files"
