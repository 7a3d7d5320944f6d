#!/usr/bin/env bash
# Damaged or hostile input: a corrupted chunk, a truncated or altered .fidx,
# path-traversal snapshot names, a tampered manifest blob, unknown names.
# Each case runs on its own copy of a pristine datastore.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

cd "$T" || exit 1
PRISTINE=$T/pristine
make_image a.img 32
note "a.img: 32 MiB (random/text/zero mix)"
expect_ok backup1 backup --store "$PRISTINE" --id vm/200 a.img:a.img
snap=$(last_line "$T/backup1.out")
export THAW_KEY_PASSWORD=bad-input-pass
expect_ok keycreate key create --kdf scrypt key.json
expect_ok backup2 backup --store "$PRISTINE" --id vm/201 --keyfile key.json a.img:a.img
snapk=$(last_line "$T/backup2.out")
note "plain snapshot $snap, encrypted snapshot $snapk"

# fresh_ds NAME: a private copy of the pristine datastore at $T/NAME.
fresh_ds() {
  rm -rf "${T:?}/$1"
  cp -a "$PRISTINE" "$T/$1"
  echo "$T/$1"
}

# no_target FILE: a failed restore must not leave FILE looking complete.
no_target() {
  if [ -e "$1" ] && [ ! -e "$1.thaw-state" ]; then
    fail "failed restore left $1 behind without a state file"
  fi
}

echo "== corrupted chunk (one byte flipped in the middle)"
DS=$(fresh_ds corrupt)
victim=$(sha256_range a.img 0 4194304)
vpath=$(chunk_path "$DS" "$victim")
[ -f "$vpath" ] || fail "expected chunk file $vpath"
vsize=$(file_size "$vpath")
flip_byte "$vpath" $((vsize / 2))
note "flipped byte $((vsize / 2)) of $vsize in chunk $victim"
expect_fail corrupt restore --store "$DS" "$snap" a.img corrupt.img
err_contains corrupt "$victim" "restore names the corrupt chunk's digest"
no_target corrupt.img
RC=0
timeout -k 10 "$THAW_CMD_TIMEOUT" "$THAW" verify --store "$DS" "$snap" >"$T/vcorrupt.out" 2>"$T/vcorrupt.err" || RC=$?
assert_eq 1 "$RC" "verify exit code with a corrupt chunk"
cat "$T/vcorrupt.out" "$T/vcorrupt.err" >"$T/vcorrupt.all"
assert_file_contains "$T/vcorrupt.all" "$victim" "verify lists the corrupt chunk"

echo "== chunk file swapped for another chunk's content"
DS=$(fresh_ds swapped)
other=$(sha256_range a.img 4194304 4194304)
cp "$(chunk_path "$DS" "$other")" "$(chunk_path "$DS" "$victim")"
expect_fail swapped restore --store "$DS" "$snap" a.img swapped.img
err_contains swapped "$victim" "restore names the chunk whose content does not match its digest"
no_target swapped.img

echo "== truncated .fidx (inside the header)"
DS=$(fresh_ds fidx1)
truncate -s 100 "$DS/$snap/a.img.fidx"
expect_fail fidx1 restore --store "$DS" "$snap" a.img fidx1.img
err_contains fidx1 'fidx|index|a\.img' "error names the index"
no_target fidx1.img

echo "== truncated .fidx (inside the digest table)"
DS=$(fresh_ds fidx2)
truncate -s $((4096 + 32 * 3 + 7)) "$DS/$snap/a.img.fidx"
expect_fail fidx2 restore --store "$DS" "$snap" a.img fidx2.img
err_contains fidx2 'fidx|index|a\.img' "error names the index"
no_target fidx2.img

echo "== .fidx digest table altered (one byte flipped)"
DS=$(fresh_ds fidx3)
flip_byte "$DS/$snap/a.img.fidx" $((4096 + 32 + 5))
expect_fail fidx3 restore --store "$DS" "$snap" a.img fidx3.img
err_contains fidx3 'fidx|index|a\.img|checksum|csum|digest' "error names the index / checksum"
no_target fidx3.img

echo "== path traversal in snapshot names"
DS=$(fresh_ds traversal)
i=0
for bad in ../../etc /etc/x "vm/200/../../../etc" "vm/../../x/2020-01-01T00:00:00Z"; do
  i=$((i + 1))
  tag=trav$i
  note "snapshot name: $bad"
  expect_fail "$tag" restore --store "$DS" "$bad" a.img "$tag.img"
  no_target "$tag.img"
  expect_fail "${tag}ls" ls --store "$DS" "$bad"
done
pass "traversal snapshot names refused"
expect_fail travarch restore --store "$DS" "$snap" ../../../etc/passwd travarch.img
no_target travarch.img
pass "traversal archive name refused"

echo "== tampered manifest (index.json.blob), encrypted snapshot"
DS=$(fresh_ds manifestk)
blob=$DS/$snapk/index.json.blob
flip_byte "$blob" $(($(file_size "$blob") - 3))
expect_fail manifestk restore --store "$DS" --keyfile key.json "$snapk" a.img manifestk.img
err_contains manifestk 'index\.json|manifest' "error names the manifest"
no_target manifestk.img
RC=0
timeout -k 10 "$THAW_CMD_TIMEOUT" "$THAW" verify --store "$DS" --keyfile key.json "$snapk" >"$T/vmanifestk.out" 2>"$T/vmanifestk.err" || RC=$?
[ "$RC" != 0 ] || fail "verify succeeded on a tampered manifest"
pass "verify fails on a tampered manifest (exit $RC)"

echo "== tampered manifest (index.json.blob), plain snapshot"
DS=$(fresh_ds manifest)
blob=$DS/$snap/index.json.blob
flip_byte "$blob" $(($(file_size "$blob") - 3))
expect_fail manifest restore --store "$DS" "$snap" a.img manifest.img
err_contains manifest 'index\.json|manifest' "error names the manifest"
no_target manifest.img

echo "== unknown snapshot / archive"
DS=$(fresh_ds unknown)
expect_fail nosnap restore --store "$DS" vm/200/2001-01-01T00:00:00Z a.img nosnap.img
err_contains nosnap '2001-01-01T00:00:00Z' "error names the unknown snapshot"
no_target nosnap.img
expect_fail noarch restore --store "$DS" "$snap" nope.img noarch.img
err_contains noarch 'nope\.img' "error names the unknown archive"
no_target noarch.img
expect_fail nostore restore --store "$T/does-not-exist" "$snap" a.img nostore.img
err_contains nostore 'does-not-exist' "error names the missing datastore"

echo "== pristine datastore still restores"
expect_ok pristine restore --store "$PRISTINE" "$snap" a.img ok.img
cmp a.img ok.img || fail "pristine restore differs"
pass "cmp after all negative cases"

echo "PASS: core-bad-input"
