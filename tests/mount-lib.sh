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

# mount_pid MOUNTPOINT: pid of the process serving a thaw mount.
mount_pid() {
  pgrep -f -- "mount --foreground .* $1\$" | head -n1
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
