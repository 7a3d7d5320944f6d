# shellcheck shell=bash
# Helpers for tests that mount thaw with FUSE. Source after lib.sh.

# mount_thaw TAG MOUNTPOINT ARGS...: `thaw mount ARGS... MOUNTPOINT` in the background; the
# mount is unmounted at exit whatever happens (thaw unmount, then a lazy fusermount).
mount_thaw() {
  local tag=$1 mnt=$2
  shift 2
  mkdir -p "$mnt"
  defer fusermount -u -z "$mnt"
  defer timeout 30 "$THAW" unmount "$mnt"
  expect_ok "$tag" mount --log "$T/$tag.mount.log" "$@" "$mnt"
  grep -q " $mnt fuse.thaw " /proc/mounts || fail "$tag: $mnt is not mounted"
}

# mount_pid MOUNTPOINT: pid of the process serving a thaw mount (started by the launcher, or
# with --foreground).
mount_pid() {
  pgrep -f -- "-jar .* mount .*$1\$" | head -n1
}

# mount_processes MOUNTPOINT: how many processes serve (or help serve) a thaw mount
mount_processes() {
  pgrep -fc -- "-jar .* mount .*$1\$" || true
}

# status_json MOUNTPOINT PYEXPR: evaluates PYEXPR with `s` = the parsed .thaw/status.
status_json() {
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1/.thaw/status" "$2"
}

# chunk_digests IMAGE: the SHA-256 of each 4 MiB chunk, one per line (plain datastore digests).
chunk_digests() {
  python3 - "$1" <<'PY'
import hashlib, sys
with open(sys.argv[1], 'rb') as f:
    while True:
        b = f.read(4 << 20)
        if not b:
            break
        print(hashlib.sha256(b).hexdigest())
PY
}

# zero_digests IMAGE: digests of all-zero chunks of the image's chunk lengths (never fetched).
zero_digests() {
  python3 - "$1" <<'PY'
import hashlib, os, sys
size = os.path.getsize(sys.argv[1])
print(hashlib.sha256(bytes(4 << 20)).hexdigest())
if size % (4 << 20):
    print(hashlib.sha256(bytes(size % (4 << 20))).hexdigest())
PY
}

# loop_part1 LOOPDEV: prints a block device node for partition 1 of LOOPDEV (made with
# losetup -P). Where no udev creates ${L}p1, asks the kernel for the partitions (partx) and
# makes the node inside $T.
loop_part1() {
  local l=$1 n sysdev part
  part=${l}p1
  for _ in $(seq 1 30); do [ -b "$part" ] && { echo "$part"; return 0; }; sleep 0.1; done
  partx -a "$l" 2>/dev/null || true
  n=$(basename "$l")
  sysdev=/sys/block/$n/${n}p1/dev
  [ -r "$sysdev" ] || fail "the kernel found no partition on $l"
  part=$T/${n}p1
  mknod "$part" b "$(cut -d: -f1 "$sysdev")" "$(cut -d: -f2 "$sysdev")"
  note "no udev: made $part for the partition the kernel found" >&2
  echo "$part"
}

# wait_restore_complete MOUNTPOINT SECONDS MESSAGE: waits up to SECONDS for the live restore of
# the mount's first image to complete, then asserts that it did.
wait_restore_complete() {
  local end=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$end" ]; do
    [ "$(status_json "$1" 's["images"][0]["restore"]["state"]')" = complete ] && break
    sleep 0.2
  done
  assert_eq complete "$(status_json "$1" 's["images"][0]["restore"]["state"]')" "$3"
}
