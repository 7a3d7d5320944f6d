#!/usr/bin/env bash
# Proxmox Backup Server fidelity and safety: a sign-only backup (plain chunks, signed manifest)
# restored with its key, without a key and refused with a wrong one; a manifest stripped of its
# signature and pointed at someone else's chunks refused with the key; group owner files; the
# layout of a new datastore (and --pbs-layout); a datastore a PBS manages refused for writing
# (local: owned by PBS's user; S3: PBS 4's .in-use object), --as-datastore-owner; an empty
# source refused; unfinished snapshot directories listed nowhere (local, HTTP, S3, mount);
# verify naming a .didx archive it did not check.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
require_cmd python3 curl java

PBS_SNAPSHOT=$THAW_REPO/tests/fixtures/pbs-snapshot
cd "$T" || exit 1
DS=$T/ds
make_image disk.img 24
export THAW_KEY_PASSWORD=fidelity-test-passphrase
expect_ok key1 key create --kdf scrypt k1.json
expect_ok key2 key create --kdf scrypt k2.json

echo "== a sign-only backup: plain chunks under plain SHA-256 digests, a signed manifest"
expect_ok so backup --store "$DS" --id vm/100 --keyfile k1.json --crypt-mode sign-only drive-scsi0.img:disk.img
SO=$(last_line "$T/so.out")
[ -f "$(chunk_path "$DS" "$(sha256_range disk.img 0 4194304)")" ] ||
  fail "the first chunk is not stored under the plain SHA-256 of its data"
pass "chunks are stored under their plain SHA-256"
expect_ok so_ls ls --output json --store "$DS" --keyfile k1.json "$SO"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1]))
assert o["signed"] and o["signature-checked"] and not o["encrypted"], o
assert o["archives"][0]["crypt-mode"] == "sign-only", o' "$T/so_ls.out" ||
  fail "ls does not show a signed, checked, unencrypted sign-only snapshot: $(cat "$T/so_ls.out")"
pass "ls: signed, signature checked, crypt-mode sign-only"

expect_ok so_key restore --progress none --store "$DS" --keyfile k1.json "$SO" drive-scsi0.img so-key.img
cmp disk.img so-key.img || fail "the sign-only restore with the key differs"
grep -q "not checked" "$T/so_key.err" && fail "a restore with the key says the signature was not checked"
pass "restore with the key equals the source"
expect_ok so_nokey restore --progress none --store "$DS" "$SO" drive-scsi0.img so-nokey.img
cmp disk.img so-nokey.img || fail "the sign-only restore without a key differs"
[ "$(grep -c "signature was not checked" "$T/so_nokey.err")" = 1 ] ||
  fail "restore without the key must say once that the signature was not checked: $(cat "$T/so_nokey.err")"
pass "restore without a key equals the source and says once that the signature was not checked"
expect_fail so_wrong restore --progress none --store "$DS" --keyfile k2.json "$SO" drive-scsi0.img so-wrong.img
err_contains so_wrong "wrong key" "a wrong key is named as such"
[ ! -e so-wrong.img ] || fail "a refused restore wrote its target"
expect_ok so_verify verify --store "$DS" --keyfile k1.json "$SO"
err_contains so_verify "0 problem" "verify of the sign-only snapshot with its key: 0 problems"

echo "== a manifest stripped of its signature and pointed at other chunks is refused with the key"
expect_ok enc backup --store "$DS" --id vm/200 --keyfile k1.json drive-scsi0.img:disk.img
ENC=$(last_line "$T/enc.out")
make_image evil.img 24
expect_ok evil backup --store "$DS" --id vm/666 drive-scsi0.img:evil.img
EVIL=$(last_line "$T/evil.out")
cp "$DS/$EVIL/drive-scsi0.img.fidx" "$DS/$ENC/drive-scsi0.img.fidx"
"$PBS_SNAPSHOT" manifest "$DS/$ENC" # unsigned, no fingerprint, crypt-mode none
expect_fail forged restore --progress none --store "$DS" --keyfile k1.json "$ENC" drive-scsi0.img forged.img
err_contains forged "$ENC.*not signed" "the forged snapshot is refused, named, as not signed"
[ ! -e forged.img ] || fail "the refused restore wrote its target"
expect_fail forged_verify verify --store "$DS" --keyfile k1.json "$ENC"
err_contains forged_verify "not signed" "verify refuses it too"
expect_ok forced restore --progress none --store "$DS" --keyfile k1.json --allow-unsigned "$ENC" drive-scsi0.img forced.img
err_contains forced "WARNING.*not signed" "--allow-unsigned opens it with a warning"
cmp evil.img forced.img || fail "--allow-unsigned restored something else"

echo "== group owner files"
assert_eq "root@pam" "$(cat "$DS/vm/100/owner")" "a new group's owner is root@pam"
expect_ok own backup --store "$DS" --id ct/300 --owner 'backup@pbs!thaw' a.img:disk.img
assert_eq 'backup@pbs!thaw' "$(cat "$DS/ct/300/owner")" "--owner names a new group's owner"
expect_ok own2 backup --store "$DS" --id ct/300 --owner other@pbs a.img:disk.img
assert_eq 'backup@pbs!thaw' "$(cat "$DS/ct/300/owner")" "an existing owner is kept"
assert_eq "644 750 755" "$(stat -c %a "$DS/.lock" "$DS/.chunks" "$DS" | tr '\n' ' ' | sed 's/ $//')" \
  "a new datastore has .lock (644) and .chunks (750) as PBS makes them"

echo "== an empty source is refused"
: >empty.img
before=$(find "$DS" -name index.json.blob | wc -l)
expect_fail empty backup --store "$DS" --id vm/400 empty.img
err_contains empty "empty.img.*empty" "the empty source is named"
assert_eq "$before" "$(find "$DS" -name index.json.blob | wc -l)" "no snapshot was written"

echo "== an unfinished snapshot directory is no snapshot (local, HTTP, mount)"
UNFIN=vm/100/2030-01-01T00:00:00Z
mkdir -p "$DS/$UNFIN"
cp "$DS/$SO/drive-scsi0.img.fidx" "$DS/$UNFIN/"
expect_ok ls_local ls --store "$DS"
grep -q "$UNFIN" "$T/ls_local.out" && fail "local ls lists the unfinished $UNFIN"
grep -q "$SO" "$T/ls_local.out" || fail "local ls lost $SO"
pass "local ls hides the unfinished snapshot"
expect_fail unfin restore --progress none --store "$DS" "$UNFIN" drive-scsi0.img unfin.img
err_contains unfin "in progress or an aborted" "naming it says why it is not a snapshot"
start_nginx "$DS"
expect_ok ls_http ls --store "http://127.0.0.1:$NGINX_PORT/"
grep -q "$UNFIN" "$T/ls_http.out" && fail "HTTP ls lists the unfinished $UNFIN"
grep -q "$SO" "$T/ls_http.out" || fail "HTTP ls lost $SO"
pass "HTTP ls hides the unfinished snapshot"
if [ -e /dev/fuse ] && command -v fusermount >/dev/null 2>&1; then
  mount_thaw m1 "$T/mnt" --store "$DS"
  [ -d "$T/mnt/$SO" ] || fail "the mount of the datastore lacks $SO"
  [ -e "$T/mnt/$UNFIN" ] && fail "the mount of the datastore shows the unfinished $UNFIN"
  pass "a mount of the whole datastore hides the unfinished snapshot"
  "$THAW" unmount "$T/mnt" >/dev/null
else
  note "no FUSE here: mount not checked"
fi

echo "== verify names the archives it does not check"
expect_ok ct backup --store "$DS" --id ct/500 root.img:disk.img
CT=$(last_line "$T/ct.out")
digest=$(sha256_range disk.img 0 4194304)
"$PBS_SNAPSHOT" didx "$DS/$CT/root.pxar.didx" "$digest" 4194304
"$PBS_SNAPSHOT" manifest "$DS/$CT"
expect_ok didx verify --store "$DS" "$CT"
err_contains didx "not checked: root\.pxar\.didx: a dynamic index" "the .didx archive is named as not checked"
err_contains didx "0 problem\(s\); 1 archive\(s\) NOT checked: root\.pxar\.didx" "the summary says so"

echo "== a datastore a PBS manages is refused for writing; reading stays allowed"
if [ "$(id -u)" = 0 ]; then
  PDS=$T/pbs-ds
  expect_ok p0 backup --store "$PDS" --id vm/100 drive-scsi0.img:disk.img
  P0=$(last_line "$T/p0.out")
  chown -R 34:34 "$PDS" # as PBS's backup user keeps it
  chunks_before=$(count_chunks "$PDS")
  expect_fail managed backup --store "$PDS" --id vm/100 drive-scsi0.img:evil.img
  err_contains managed "Proxmox Backup Server manages it.*garbage collection.*--as-datastore-owner" \
    "the refusal says why and what to do"
  assert_eq "$chunks_before" "$(count_chunks "$PDS")" "nothing was written"
  expect_ok managed_read restore --progress none --store "$PDS" "$P0" drive-scsi0.img managed.img
  cmp disk.img managed.img || fail "restore from the PBS datastore differs"
  expect_ok as_owner backup --store "$PDS" --id vm/101 --as-datastore-owner drive-scsi0.img:evil.img
  owners=$(find "$PDS" ! -user 34 -o ! -group 34 | head -n3)
  [ -z "$owners" ] || fail "files written as the datastore's owner belong to someone else: $owners"
  pass "--as-datastore-owner writes every file as the datastore's owner"
else
  note "not root: PBS-managed datastore (owned by another user) not checked"
fi

echo "== --pbs-layout: every .chunks prefix directory, as PBS makes them"
# 65536 directories: as root on a tmpfs of this test's own (seconds and 256 MiB less than ext4)
LDS=$T/full-ds
if [ "$(id -u)" = 0 ] && mkdir -p "$T/tmpfs" && mount -t tmpfs -o size=64m,mode=0700 tmpfs "$T/tmpfs"; then
  defer umount -l "$T/tmpfs"
  LDS=$T/tmpfs/ds
fi
expect_ok layout backup --store "$LDS" --id vm/100 --pbs-layout drive-scsi0.img:disk.img
assert_eq "65536 750 750" "$(find "$LDS/.chunks" -mindepth 1 -maxdepth 1 -type d | wc -l) \
$(stat -c %a "$LDS/.chunks/0000") $(stat -c %a "$LDS/.chunks/ffff")" "65536 prefix directories of mode 750"
rm -rf "$LDS"

echo "== S3: owner objects; an unfinished snapshot is not listed; a datastore PBS 4 uses is refused"
start_s3proxy
E=$S3_ENDPOINT
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK
S3=(--store s3://backups/ds1 --s3-endpoint "$E")
expect_ok s3b backup "${S3[@]}" --id vm/100 drive-scsi0.img:disk.img
S3SNAP=$(last_line "$T/s3b.out")
assert_eq "root@pam" "$(cat s3data/backups/ds1/.cnt/vm/100/owner)" "the group's owner object is ds1/.cnt/vm/100/owner"
s3_put "backups/ds1/.cnt/${UNFIN//:/%3A}/drive-scsi0.img.fidx" "$DS/$SO/drive-scsi0.img.fidx" || fail "upload failed"
expect_ok s3ls ls "${S3[@]}"
grep -q "$UNFIN" "$T/s3ls.out" && fail "S3 ls lists the unfinished $UNFIN"
grep -q "$S3SNAP" "$T/s3ls.out" || fail "S3 ls lost $S3SNAP"
pass "S3 ls hides the unfinished snapshot"
printf '{"hostname":"pbs-test"}' >in-use.json
s3_put backups/ds1/.in-use in-use.json || fail "upload failed"
expect_fail s3managed backup "${S3[@]}" --id vm/100 drive-scsi0.img:evil.img
err_contains s3managed "pbs-test.*garbage collection.*proxmox-backup-client" "the refusal names the PBS host and what to do"
expect_fail s3owner backup "${S3[@]}" --id vm/100 --as-datastore-owner drive-scsi0.img:evil.img
err_contains s3owner "local datastores only" "no override for S3"
expect_ok s3read restore --progress none "${S3[@]}" "$S3SNAP" drive-scsi0.img s3.img
cmp disk.img s3.img || fail "restore from the S3 datastore a PBS uses differs"
pass "reading an S3 datastore a PBS uses stays allowed"
