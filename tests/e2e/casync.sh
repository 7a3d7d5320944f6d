#!/usr/bin/env bash
# casync images: Debian's casync makes the fixture (an ext4 disk image of random
# files, text and zero runs) into stores served by nginx on 127.0.0.1. The README's casync
# block runs as written (mount + cmp, restore, verify); thaw restore equals the source and
# `casync extract`; a file copied out through fuse2fs equals the original; zero chunks are
# never requested; xz and sha256 stores work; bad input fails naming the index or the chunk.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
require_cmd casync nginx curl fusermount fuse2fs mkfs.ext4 sfdisk
[ -e /dev/fuse ] || skip "no /dev/fuse"
cd "$T" || exit 1
mkdir -p t srv/casync
ln -s "$THAW_REPO/mount-scripts" mount-scripts

"$THAW_REPO/tests/fixtures/make-disk-image" t/img.raw 64 files
note "t/img.raw: 64 MiB ext4 disk image of random and text files, free space and holes as zeros"

# --- the README's block: casync make, mount + cmp, restore, verify -------------------------
start_nginx srv
URL=http://127.0.0.1:$NGINX_PORT/casync
readme_block readme-casync | sed -e "s|http://127.0.0.1:8080/casync|$URL|g" -e "s|/srv/casync/|$T/srv/casync/|g" \
  -e "s|/mnt/casync|$T/mnt|g" -e "s|/tmp/t/|$T/t/|g" >readme-casync.sh
grep -q "thaw restore --index" readme-casync.sh || fail "no casync block in the README"
defer fusermount -u -z "$T/mnt"
timeout 240 bash -euo pipefail readme-casync.sh >readme.out 2>readme.err ||
  { cat readme.out readme.err >&2; fail "the README's casync commands failed"; }
pass "the README's casync commands work as written (casync make, mount + cmp, unmount, restore, verify)"
cmp t/img.raw t/img-restored.raw || fail "thaw restore differs from the source"
pass "thaw restore over HTTP equals the source"
grep -q "verified img: " readme.err || { cat readme.err >&2; fail "verify did not report"; }
IDX=$T/srv/casync/img.caibx
ZERO=$(python3 -c 'import hashlib; print(hashlib.new("sha512_256", bytes(262144)).hexdigest())')
python3 - "$IDX" "$ZERO" <<'PY' || fail "the fixture has no max-size zero chunk"
import sys
d = open(sys.argv[1], 'rb').read()
sys.exit(0 if bytes.fromhex(sys.argv[2]) in d else 1)
PY
if grep -qF "$ZERO" "$NGINX_DIR/access.log"; then
  fail "thaw requested the zero chunk $ZERO"
fi
pass "all-zero chunks (id $ZERO) were never requested"

# --- casync extract is the reference ---------------------------------------------------------
timeout 240 casync extract --store="$URL/img.castr" "$URL/img.caibx" t/extracted.raw 2>casync.err ||
  { cat casync.err >&2; fail "casync extract failed"; }
cmp t/extracted.raw t/img-restored.raw || fail "thaw restore differs from casync extract"
pass "thaw restore equals casync extract"

# --- mount: the file equals the source, a file copied out through fuse2fs equals the original -
M=$T/mnt2
mount_thaw m1 "$M" --index "$URL/img.caibx" --store "$URL/img.castr"
assert_eq ".thaw img img.p1" "$(ls -A "$M" | tr '\n' ' ' | sed 's/ $//')" "mount shows MOUNTPOINT/img, its partition img.p1 and .thaw"
assert_eq "$(file_size t/img.raw)" "$(file_size "$M/img")" "mounted image size"
cmp t/img.raw "$M/img" || fail "the mounted image differs from the source"
pass "the mounted image equals the source"
status_json "$M" 's["images"][0]["read_ahead_hits"] > 0' | grep -q True || fail "no read-ahead on a sequential read"
note "status: $(status_json "$M" '{k: s["images"][0][k] for k in ("chunks_total", "chunks_fetched", "read_ahead_hits", "read_ahead_issued", "errors")}')"
expect_ok u1 unmount "$M"
mount_thaw m2 "$M" --index "$URL/img.caibx" --store "$URL/img.castr"
F=$T/fs
mkdir -p "$F"
defer fusermount -u -z "$F"
fuse2fs -o ro,fakeroot,offset=1048576 "$M/img" "$F" >fuse2fs.log 2>&1 || { cat fuse2fs.log; fail "fuse2fs"; }
cp "$F/random/eight-mib.bin" copied.bin
cmp copied.bin files/random/eight-mib.bin || fail "the file copied out through fuse2fs differs"
cmp "$F/text/notes-1.txt" files/text/notes-1.txt || fail "a text file read through fuse2fs differs"
fusermount -u "$F"
expect_ok u2 unmount "$M"
pass "files copied out of the mounted casync image through fuse2fs equal the originals"

# --- xz chunks, sha256 ids; a local store and index -----------------------------------------
casync make --compression=xz --store=srv/casync/xz.castr srv/casync/xz.caibx t/img.raw >/dev/null
head -c 2 "$(find srv/casync/xz.castr -name '*.cacnk' | head -n1)" | od -An -tx1 | grep -q "fd 37" ||
  fail "casync did not write xz chunks"
expect_ok rxz restore --index "$URL/xz.caibx" --store "$URL/xz.castr" t/xz.raw
cmp t/img.raw t/xz.raw || fail "restore of the xz store differs"
pass "a store made with --compression=xz restores exactly"
casync make --digest=sha256 --store=srv/casync/sha.castr srv/casync/sha.caibx t/img.raw >/dev/null
expect_ok rsha restore --index "$URL/sha.caibx" --store "$URL/sha.castr" t/sha.raw
cmp t/img.raw t/sha.raw || fail "restore of the sha256 store differs"
expect_ok vsha verify --index srv/casync/sha.caibx --store srv/casync/sha.castr
pass "a store made with --digest=sha256 restores and verifies (over HTTP and from a directory)"

# --- bad input ------------------------------------------------------------------------------
head -c 1000 "$IDX" >srv/casync/cut.caibx
expect_fail cut restore --index "$URL/cut.caibx" --store "$URL/img.castr" t/cut.raw
err_contains cut "$URL/cut\\.caibx: .*tail marker" "a truncated index is named and refused"
expect_fail noidx restore --index srv/casync/none.caibx --store srv/casync/img.castr t/none.raw
err_contains noidx "index not found: $T/srv/casync/none\\.caibx" "a missing index is named"
RC=0
timeout 60 "$THAW" restore --index "$IDX" --store srv/casync/img.castr vm/1/2026-01-01T00:00:00Z a.img t/x.raw \
  >usage.out 2>usage.err || RC=$?
assert_eq 2 "$RC" "restore --index with a snapshot and archive is a usage error"
# a chunk whose data does not match its id; another one missing
cp -a srv/casync/img.castr srv/casync/bad.castr
cp "$IDX" srv/casync/bad.caibx
mapfile -t victims < <(find srv/casync/bad.castr -name '*.cacnk' -size +20k | grep -v "$ZERO" | sort | head -n2)
[ "${#victims[@]}" = 2 ] || fail "no chunks to damage"
bad_id=$(basename "${victims[0]}" .cacnk)
gone_id=$(basename "${victims[1]}" .cacnk)
# the same number of bytes, stored uncompressed (no magic), that do not hash to the id
python3 - "$IDX" "$bad_id" "${victims[0]}" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
want = bytes.fromhex(sys.argv[2])
prev = 0
for at in range(64, len(d) - 40, 40):
    end, cid = struct.unpack_from('<Q', d, at)[0], d[at + 8:at + 40]
    if cid == want:
        open(sys.argv[3], 'wb').write(b'x' * (end - prev))
        sys.exit(0)
    prev = end
sys.exit("chunk not in the index")
PY
rm -f "${victims[1]}"
RC=0
timeout 120 "$THAW" verify --index "$URL/bad.caibx" --store "$URL/bad.castr" >vbad.out 2>vbad.err || RC=$?
assert_eq 1 "$RC" "verify exit code with a bad and a missing chunk"
assert_file_contains vbad.out "bad chunk $bad_id .*bad\\.castr/${bad_id:0:4}/$bad_id\\.cacnk.*chunk id mismatch" \
  "verify names the chunk whose data does not match its id, and its URL"
assert_file_contains vbad.out "missing chunk $gone_id" "verify names the missing chunk"
expect_fail rbad restore --index "$URL/bad.caibx" --store "$URL/bad.castr" t/bad.raw
err_contains rbad "chunk ($bad_id|$gone_id) \\($URL/bad\\.castr/" "restore names the chunk and its URL"
echo "PASS: casync"
