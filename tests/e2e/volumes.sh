#!/usr/bin/env bash
# Partitions and LVM volumes: images built with sfdisk, mkfs (ext4, FAT, NTFS, XFS, exFAT) and
# LVM (tests/fixtures/make-volume-images) are backed up; `thaw partitions` must list what
# sfdisk --json and lvs say (offsets, sizes, types, GPT names, LV segments). A mount shows each
# volume as a file beside its image (the two-segment LV reads as the filesystem placed in it) and
# its table in .thaw/status. As a non-root user (uid 65534, no FUSE), `thaw files ls/cp` lists and
# copies known files straight out of the datastore from ext4 (primary, logical, the LV), FAT and
# exFAT (made by mkfs.exfat, filled through exfat-fuse), compared by SHA-256 with the originals,
# with clear errors and the root recipe for XFS;
# as root, NTFS through 7zz on the mount's partition file, and an XFS partition file of the mount
# loop-mounts without any offset.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
require_cmd sfdisk mkfs.ext4 mkfs.vfat mcopy mkntfs ntfs-3g mkfs.xfs mkfs.exfat mount.exfat-fuse pvcreate vgcfgrestore 7zz setpriv fusermount python3
[ "$(id -u)" = 0 ] || skip "needs root (loop devices for LVM and XFS)"
losetup -f >/dev/null 2>&1 || skip "no free loop device"

FX=$T/fx
mkdir -p "$FX"
"$THAW_REPO/tests/fixtures/make-volume-images" "$FX" >"$T/fixtures.log" 2>&1 || { cat "$T/fixtures.log"; fail "make-volume-images"; }
expect_ok b backup --store "$T/ds" --id vm/300 "$FX/mbr.img" "$FX/gpt.img" "$FX/lvm.img"
S=$(last_line "$T/b.out")
expect_ok parts partitions --store "$T/ds" "$S"
cat "$T/parts.out"
expect_ok json partitions --store "$T/ds" --output json "$S"

# ---- the listing against sfdisk --json and lvs
python3 - "$T/json.out" "$FX" <<'PY' || fail "thaw partitions differs from sfdisk/lvs"
import json, re, sys
listing = {d["image"]: d for d in json.load(open(sys.argv[1]))}
fx = sys.argv[2]
bad = []
def vols(img):
    return {v["name"]: v for v in listing[img]["volumes"]}
for img in ("mbr.img", "gpt.img", "lvm.img"):
    d = listing[img]
    sf = json.load(open(f"{fx}/{img.split('.')[0]}.sfdisk.json"))["partitiontable"]
    if d["table"] != ("gpt" if sf["label"] == "gpt" else "mbr"):
        bad.append(f"{img}: table {d['table']} vs {sf['label']}")
    if d["warnings"]:
        bad.append(f"{img}: warnings {d['warnings']}")
    v = vols(img)
    parts = [x for x in d["volumes"] if x["kind"] == "partition"]
    if len(parts) != len(sf["partitions"]):
        bad.append(f"{img}: {len(parts)} partitions listed, sfdisk has {len(sf['partitions'])}")
    for p in sf["partitions"]:
        n = re.search(r"(\d+)$", p["node"]).group(1)
        x = v.get(f"{img}.p{n}")
        if x is None:
            bad.append(f"{img}: p{n} missing"); continue
        extended = sf["label"] == "dos" and p["type"] in ("5", "f", "85")
        if extended:
            if x["exposed"]:
                bad.append(f"{img}.p{n}: an extended partition is exposed")
            continue
        want_type = p["type"].upper() if sf["label"] == "gpt" else "0x%02x" % int(p["type"], 16)
        got = (x["offset"], x["size"], x["type_id"], x["label"])
        want = (p["start"] * 512, p["size"] * 512, want_type, p.get("name", ""))
        if got != want:
            bad.append(f"{img}.p{n}: thaw {got} vs sfdisk {want}")
# LVs: lvs --segments gives the PE ranges of each segment; pvs the PE start
pe_start = int(open(f"{fx}/lvm.pe_start").read())
pv_offset = vols("lvm.img")["lvm.img.p1"]["offset"]
want = {}
for line in open(f"{fx}/lvm.lvs"):
    lv, rng, size, segtype = line.split()
    a, b = map(int, rng.split(":")[1].split("-"))
    ext = want.setdefault(f"lvm.img.vg0-{lv}", [])
    off, length = pv_offset + pe_start + a * (4 << 20), (b - a + 1) * (4 << 20)
    if ext and ext[-1][0] + ext[-1][1] == off:
        ext[-1][1] += length
    else:
        ext.append([off, length])
for name, ext in want.items():
    x = vols("lvm.img").get(name)
    got = [[e["offset"], e["length"]] for e in x["extents"]] if x else None
    if got != ext or not x["exposed"]:
        bad.append(f"{name}: thaw {got} vs lvs {ext}")
if sorted(want) != sorted(n for n, x in vols("lvm.img").items() if x["kind"] == "logical-volume"):
    bad.append(f"LVs: thaw {sorted(vols('lvm.img'))} vs lvs {sorted(want)}")
fs = {n: x["filesystem"] for d in listing.values() for n, x in vols(d["image"]).items()}
for n, f in {"mbr.img.p1": "ext4", "mbr.img.p5": "vfat", "mbr.img.p6": "ext4", "gpt.img.p2": "ntfs",
             "gpt.img.p3": "xfs", "gpt.img.p4": "exfat", "lvm.img.p1": "LVM2_member", "lvm.img.vg0-root": "ext4"}.items():
    if fs.get(n) != f:
        bad.append(f"{n}: filesystem {fs.get(n)!r}, expected {f}")
print("\n".join(bad) or "listing matches sfdisk --json, lvs --segments and pvs")
sys.exit(1 if bad else 0)
PY
pass "thaw partitions matches sfdisk --json, lvs --segments and pvs"

# ---- a mount shows each volume as a file beside its image; LVs read as the bytes placed in them
M=$T/mnt
mount_thaw m "$M" --store "$T/ds" "$S"
want="gpt.img gpt.img.p1 gpt.img.p2 gpt.img.p3 gpt.img.p4 gpt.img.p5 lvm.img lvm.img.p1 lvm.img.vg0-data lvm.img.vg0-root mbr.img mbr.img.p1 mbr.img.p5 mbr.img.p6"
assert_eq "$want" "$(ls "$M" | sort | tr '\n' ' ' | sed 's/ $//')" "the mount lists each image and its volumes"
cmp "$M/lvm.img.vg0-root" "$FX/lvm-root.fs" || fail "LV root (two segments) read through the mount differs from the filesystem placed in it"
cmp "$M/lvm.img.vg0-data" "$FX/lvm-data.bin" || fail "LV data read through the mount differs from its contents"
assert_eq "$(stat -c %s "$FX/lvm-root.fs") 444" "$(stat -c '%s %a' "$M/lvm.img.vg0-root")" "an LV file has the LV's size, read-only"
pass "LVs read through the mount equal what was written into them"
assert_eq "gpt ntfs data" "$(status_json "$M" '" ".join([[i["volumes"]["table"]] + [(v["filesystem"] + " " + v["label"]) for v in i["volumes"]["volumes"] if v["name"] == "gpt.img.p2"] for i in s["images"] if i["path"] == "gpt.img"][0])')" \
  ".thaw/status has each image's table and volumes"
expect_ok st status "$M"
grep -q "gpt.img.p2: 16.0 MiB, Microsoft basic data, ntfs, \"data\"" "$T/st.out" || { cat "$T/st.out"; fail "thaw status does not show gpt.img.p2"; }
pass ".thaw/status and thaw status show the partition tables"

# ---- as a non-root user: list and copy files out of each filesystem straight from the datastore
mkdir -p "$T/pub" "$T/out"
cp "${THAW_JAR:-$THAW_REPO/target/thaw.jar}" "$T/pub/thaw.jar"
chmod 711 "$T" && chmod 755 "$T/pub" "$FX" && chmod 644 "$T/pub/thaw.jar" && chmod -R a+rX "$T/ds" "$FX/files" "$FX/files-fat"
chown 65534:65534 "$T/out"
as_user() { # as_user TAG ARGS...: thaw as uid/gid 65534; stdout/stderr in $T/TAG.out/.err; sets RC
  local tag=$1
  shift
  RC=0
  (cd "$T/out" && HOME=$T/out THAW_JAR=$T/pub/thaw.jar timeout -k 10 120 \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$THAW" "$@") >"$T/$tag.out" 2>"$T/$tag.err" || RC=$?
}
user_ok() {
  as_user "$@"
  [ "$RC" = 0 ] || { cat "$T/$1.err" >&2; fail "$1: thaw ${2:-} ${3:-} as uid 65534 exited $RC"; }
}
user_fails() { # user_fails TAG ERE ARGS...
  local tag=$1 ere=$2
  shift 2
  as_user "$tag" "$@"
  [ "$RC" != 0 ] || fail "$tag: thaw $* as uid 65534 succeeded"
  grep -Eq "^thaw: error: .*$ere" "$T/$tag.err" || { cat "$T/$tag.err" >&2; fail "$tag: no 'thaw: error: ...$ere'"; }
  pass "$tag: $(head -c 200 "$T/$tag.err")"
}
sha() { sha256sum <"$1" | cut -d' ' -f1; }
DS=(--store "$T/ds" "$S")

for v in mbr.img.p1 mbr.img.p6 lvm.img.vg0-root mbr.img.p5 gpt.img.p4; do
  ref=$FX/files
  case $v in mbr.img.p5 | gpt.img.p4) ref=$FX/files-fat ;; esac
  sub=sub
  [ "$v" = mbr.img.p6 ] && sub=. # the logical ext4 holds files/sub at its root
  user_ok "ls-$v" files ls "${DS[@]}" "$v" "/$sub/dir"
  grep -q ' random.bin$' "$T/ls-$v.out" && grep -q ' deeper$' "$T/ls-$v.out" ||
    { cat "$T/ls-$v.out"; fail "$v: listing of $sub/dir lacks random.bin or deeper"; }
  user_ok "cp-$v" files cp "${DS[@]}" "$v" "/$sub" "$T/out/$v"
  for f in dir/random.bin numbers.txt dir/deeper/deep.txt dated.txt; do
    [ "$(sha "$T/out/$v/$f")" = "$(sha "$ref/sub/$f")" ] || fail "$v: $sub/$f differs from the original"
  done
  [ "$(stat -c %Y "$T/out/$v/dated.txt")" = "$(stat -c %Y "$ref/sub/dated.txt")" ] || fail "$v: mtime of dated.txt not kept"
  [ "$(stat -c %u "$T/out/$v/numbers.txt")" = 65534 ] || fail "$v: copy not owned by the user"
  grep -Eq "^thaw: fetched [0-9]+ of the [0-9]+ non-zero chunks" "$T/cp-$v.err" || { cat "$T/cp-$v.err"; fail "$v: no fetch count"; }
  pass "$v: listed and copied as uid 65534 from the datastore, SHA-256 and mtime equal to the originals"
done
for v in mbr.img.p1 lvm.img.vg0-root; do
  user_ok "cpx-$v" files cp "${DS[@]}" "$v" /bin/run.sh "$T/out/run-$v.sh"
  [ "$(stat -c %a "$T/out/run-$v.sh")" = 750 ] || fail "$v: mode of run.sh not kept"
  user_ok "cpl-$v" files cp "${DS[@]}" "$v" /link-to-deep "$T/out/link-$v"
  [ "$(readlink "$T/out/link-$v")" = sub/dir/deeper/deep.txt ] || fail "$v: symlink not copied as a symlink"
  pass "$v: mode 0750 kept; symlink copied as a symlink"
done
v=mbr.img.p1
user_fails missing "no such file or directory in mbr.img.p1: /sub/nope.txt" files cp "${DS[@]}" "$v" /sub/nope.txt "$T/out"
user_fails escape "path escapes the filesystem's root: ../../etc/shadow" files cp "${DS[@]}" "$v" ../../etc/shadow "$T/out"
user_fails fifo "not a regular file, directory or symlink: /fifo" files cp "${DS[@]}" "$v" /fifo "$T/out"
user_fails exists "already exists, not overwritten: $T/out/mbr.img.p1/numbers.txt" \
  files cp "${DS[@]}" "$v" /sub/numbers.txt "$T/out/$v"
user_fails novol "mbr.img has no volume mbr.img.p9; it has: mbr.img.p1, mbr.img.p5, mbr.img.p6" \
  files ls "${DS[@]}" mbr.img.p9 /
user_fails xfs "holds xfs, which thaw cannot read without root; as root: .*mount -o ro,loop,norecovery MOUNT/gpt.img.p3" \
  files ls "${DS[@]}" gpt.img.p3 /
if setpriv --reuid=65534 --regid=65534 --clear-groups test -r /dev/fuse -a -w /dev/fuse; then
  note "uid 65534 may use FUSE here: the NTFS refusal is not checked"
else
  user_fails ntfs "gpt.img.p2 holds ntfs, which thaw reads with 7zz from a volume file, and this user cannot use FUSE" \
    files ls "${DS[@]}" gpt.img.p2 /
fi
chmod 700 "$T"

# ---- as root: NTFS through 7zz, on the partition file of the mount and from the datastore (a
# private mount of thaw files' own, gone afterwards)
expect_ok ls-ntfs files ls "$M/gpt.img.p2" /sub/dir
grep -q ' random.bin$' "$T/ls-ntfs.out" || { cat "$T/ls-ntfs.out"; fail "NTFS listing lacks random.bin"; }
expect_ok cp-ntfs files cp "$M/gpt.img.p2" /sub "$T/out/ntfs"
expect_ok cp-ntfs-ds files cp --store "$T/ds" "$S" gpt.img.p2 /sub "$T/out/ntfs-ds"
for f in dir/random.bin numbers.txt dir/deeper/deep.txt; do
  [ "$(sha "$T/out/ntfs/$f")" = "$(sha "$FX/files-fat/sub/$f")" ] || fail "ntfs: sub/$f differs from the original"
  [ "$(sha "$T/out/ntfs-ds/$f")" = "$(sha "$FX/files-fat/sub/$f")" ] || fail "ntfs from the datastore: sub/$f differs"
done
! grep -q "files-mount-" /proc/mounts || fail "thaw files left its private mount behind"
pass "NTFS: copied with 7zz from the mount's partition file and from the datastore (private mount, removed), SHA-256 equal"

# ---- as root: a partition file of the mount loop-mounts as it is, no offset
XM=$T/xfs
mkdir -p "$XM"
L=$(losetup -r -f --show "$M/gpt.img.p3")
defer losetup -d "$L"
defer umount -l "$XM"
mount -o ro,norecovery "$L" "$XM"
[ "$(sha "$XM/sub/dir/random.bin")" = "$(sha "$FX/files/sub/dir/random.bin")" ] || fail "file in the loop-mounted XFS differs"
umount "$XM"
losetup -d "$L"
pass "XFS partition file of a thaw mount loop-mounted without an offset, file equal"
