#!/usr/bin/env bash
# Encrypted backups: key create (scrypt and none), backup/restore/verify with a
# key file; restore without the key, with another key, or with a wrong
# passphrase fails cleanly and writes no target.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

cd "$T" || exit 1
DS=$T/ds
make_image a.img 40
note "a.img: 40 MiB (random/text/zero mix)"

echo "== key create --kdf scrypt"
export THAW_KEY_PASSWORD=correct-horse-battery
expect_ok keycreate key create --kdf scrypt key1.json
[ -s key1.json ] || fail "key create wrote no key1.json"
pass "key1.json created"
if grep -q '"none"' key1.json; then
  fail "scrypt key file says kdf none: $(cat key1.json)"
fi

echo "== encrypted backup / restore / verify"
expect_ok backup1 backup --store "$DS" --id vm/300 --keyfile key1.json a.img:a.img
snap=$(last_line "$T/backup1.out")
note "snapshot: $snap"
[[ $snap == vm/300/* ]] || fail "unexpected snapshot name '$snap'"
expect_ok restore1 restore --store "$DS" --keyfile key1.json "$snap" a.img b.img
cmp a.img b.img || fail "encrypted restore differs"
pass "cmp a.img b.img (encrypted)"
expect_ok verify1 verify --store "$DS" --keyfile key1.json "$snap"

echo "== OpenSSL's AES-GCM and the JDK's read each other's blobs"
THAW_DEBUG=1 expect_ok gcm-native restore --store "$DS" --keyfile key1.json "$snap" a.img gcm1.img
err_contains gcm-native 'AES-GCM by OpenSSL [0-9]' "the restore names libcrypto's AES-GCM"
THAW_GCM=jdk THAW_DEBUG=1 expect_ok gcm-jdk restore --store "$DS" --keyfile key1.json "$snap" a.img gcm2.img
err_contains gcm-jdk "AES-GCM by the JDK's .*THAW_GCM=jdk" "THAW_GCM=jdk names the JDK's AES-GCM"
cmp a.img gcm2.img || fail "the JDK's AES-GCM restores another image from libcrypto's blobs"
THAW_GCM=jdk expect_ok gcm-jdk-backup backup --store "$T/ds-jdk" --id vm/300 --keyfile key1.json a.img:a.img
expect_ok gcm-cross restore --store "$T/ds-jdk" --keyfile key1.json "$(last_line "$T/gcm-jdk-backup.out")" a.img gcm3.img
cmp a.img gcm3.img || fail "libcrypto's AES-GCM restores another image from the JDK's blobs"
pass "cmp: blobs sealed by either AES-GCM restore through the other"
rm -f gcm1.img gcm2.img gcm3.img

# Encrypted chunks must not be stored in plain text: the digest of the first
# (random) 4 MiB of the image must not be a chunk name.
plain_digest=$(sha256_range a.img 0 4194304)
[ ! -e "$(chunk_path "$DS" "$plain_digest")" ] ||
  fail "encrypted backup stored a chunk under its plaintext sha256"
pass "chunk digests are keyed (no plaintext-sha256 chunk names)"
if grep -rqa "the quick brown fox" "$DS/.chunks"; then
  fail "plaintext image text found in encrypted chunk files"
fi
pass "no plaintext image content in chunk files"

echo "== restore without the key"
expect_fail nokey restore --store "$DS" "$snap" a.img nokey.img
err_contains nokey 'key' "error without key mentions the key"
[ ! -e nokey.img ] || fail "restore without key created nokey.img"
[ ! -e nokey.img.thaw-state ] || fail "restore without key created a state file"
pass "no target written without key"

echo "== restore with a different key"
expect_ok keycreate2 key create --kdf scrypt key2.json
expect_fail wrongkey restore --store "$DS" --keyfile key2.json "$snap" a.img wrongkey.img
err_contains wrongkey 'key' "error with the wrong key mentions the key"
[ ! -e wrongkey.img ] || fail "restore with wrong key created wrongkey.img"
pass "no target written with a different key"

echo "== restore with the right key but a wrong passphrase"
THAW_KEY_PASSWORD=wrong-passphrase expect_fail wrongpw restore --store "$DS" --keyfile key1.json "$snap" a.img wrongpw.img
err_contains wrongpw 'pass(word|phrase)|key' "wrong passphrase error mentions the passphrase/key"
[ ! -e wrongpw.img ] || fail "restore with wrong passphrase created wrongpw.img"
pass "no target written with a wrong passphrase"

echo "== --password-file"
printf '%s\n' "$THAW_KEY_PASSWORD" >pw.txt
RC=0
env -u THAW_KEY_PASSWORD timeout -k 10 "$THAW_CMD_TIMEOUT" "$THAW" restore --store "$DS" --keyfile key1.json \
  --password-file pw.txt "$snap" a.img pwfile.img >"$T/pwfile.out" 2>"$T/pwfile.err" || RC=$?
if [ "$RC" != 0 ]; then
  cat "$T/pwfile.err" >&2
  fail "restore with --password-file exited $RC"
fi
cmp a.img pwfile.img || fail "restore with --password-file differs"
pass "restore with --password-file + cmp"

echo "== the PBS client's PBS_ENCRYPTION_PASSWORD (here from a descriptor, as the PBS client reads it)"
RC=0
env -u THAW_KEY_PASSWORD PBS_ENCRYPTION_PASSWORD_FD=7 timeout -k 10 "$THAW_CMD_TIMEOUT" "$THAW" restore \
  --store "$DS" --keyfile key1.json "$snap" a.img pbspw.img 7<pw.txt >"$T/pbspw.out" 2>"$T/pbspw.err" </dev/null || RC=$?
if [ "$RC" != 0 ]; then
  cat "$T/pbspw.err" >&2
  fail "restore with PBS_ENCRYPTION_PASSWORD_FD exited $RC"
fi
cmp a.img pbspw.img || fail "restore with PBS_ENCRYPTION_PASSWORD_FD differs"
pass "restore with the key's passphrase from PBS_ENCRYPTION_PASSWORD_FD + cmp"

echo "== key create --kdf none"
unset THAW_KEY_PASSWORD
expect_ok keycreate3 key create --kdf none key3.json
expect_ok backup3 backup --store "$DS" --id vm/301 --keyfile key3.json a.img:a.img
snap3=$(last_line "$T/backup3.out")
expect_ok restore3 restore --store "$DS" --keyfile key3.json "$snap3" a.img c.img
cmp a.img c.img || fail "restore with --kdf none key differs"
pass "cmp a.img c.img (kdf none)"
expect_ok verify3 verify --store "$DS" --keyfile key3.json "$snap3"
THAW_KEY_PASSWORD=correct-horse-battery expect_fail wrongkey3 restore --store "$DS" --keyfile key1.json "$snap3" a.img wrongkey3.img
[ ! -e wrongkey3.img ] || fail "restore of kdf-none snapshot with key1 created a target"
pass "kdf-none snapshot refuses key1"

echo "PASS: core-keyfile"
