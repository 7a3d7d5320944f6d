#!/usr/bin/env bash
# Instant boot, for real: a small disk (MBR + ext4 holding check.txt) is backed up, mounted with
# --restore-to, and booted under qemu-system-x86_64 (software emulation) with mount-scripts/boot-vm:
# Debian's kernel and a busybox initramfs that mounts the disk, checks the file, writes a marker
# and powers off. After the background restore completes, the marker is in the restored target.
# Then the same again with the disk served by `thaw serve --restore-to` over a unix socket and
# booted from nbd+unix:// (qemu's own NBD client, no FUSE).
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

# boot_and_check WHAT DISK TARGET: boots the guest from DISK (a file or an NBD URI); it must find
# check.txt and write its marker
boot_and_check() {
  "$THAW_REPO/mount-scripts/boot-vm" --no-kvm --memory 256M --cpus 1 --timeout 240 \
    --kernel "$kit/vmlinuz" --initrd initrd.gz --append "console=ttyS0 panic=-1 quiet" \
    --serial-log "console-$1.log" "$2" >"qemu-$1.out" 2>&1 || { tail -n 20 "console-$1.log" "qemu-$1.out" >&2; fail "$1: the VM did not run to its end"; }
  grep -q "THAW-VM: check ok, marker written" "console-$1.log" || { tail -n 30 "console-$1.log" >&2; fail "$1: the VM did not find check.txt or could not write"; }
  pass "$1: the VM booted, read check.txt and wrote its marker"
}

# target_has_marker TARGET: the restored target holds the VM's marker and the untouched files
target_has_marker() {
  mkdir -p fs
  defer fusermount -u -z "$T/fs"
  fuse2fs -o ro,fakeroot,offset=1048576 "$1" fs >fuse2fs.log 2>&1 || { cat fuse2fs.log; fail "fuse2fs on $1"; }
  grep -q "booted from thaw" fs/marker.txt || fail "the marker is not in $1"
  cmp fs/check.txt files/check.txt || fail "check.txt differs in $1"
  cmp fs/random/eight-mib.bin files/random/eight-mib.bin || fail "a file the VM did not touch differs in $1"
  fusermount -u "$T/fs"
  pass "after the restore completes, $1 holds the VM's marker and the untouched files"
}

# --- boot from the live-restore mount (software emulation; a minute at most)
boot_and_check mount "$T/mnt/disk.img"
wait_restore_complete "$T/mnt" 120 "the background restore completes"
"$THAW" unmount "$T/mnt" >/dev/null 2>&1
target_has_marker target/disk.img

# --- boot from NBD: thaw serve --restore-to, qemu's NBD client on the unix socket
mkdir -p target-nbd
"$THAW" serve --store "http://127.0.0.1:$NGINX_PORT/" --restore-to target-nbd --restore-rate 20M \
  --socket "$T/nbd.sock" "$S" >serve.log 2>&1 &
SERVE=$!
defer kill_wait "$SERVE"
for _ in $(seq 1 300); do grep -q '^thaw: status:' serve.log && break; alive "$SERVE" || break; sleep 0.1; done
grep -q '^thaw: status:' serve.log || { cat serve.log; fail "thaw serve did not come up"; }
boot_and_check nbd "nbd+unix:///disk.img?socket=$T/nbd.sock"
state() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["images"][0]["restore"]["state"])' "$T/nbd.sock.status" 2>/dev/null || true; }
for _ in $(seq 1 600); do [ "$(state)" = complete ] && break; sleep 0.2; done
assert_eq complete "$(state)" "nbd: the background restore completes"
kill -TERM "$SERVE"
wait "$SERVE" 2>/dev/null || true
[ ! -e "$T/nbd.sock" ] || fail "thaw serve left its socket behind"
target_has_marker target-nbd/disk.img
