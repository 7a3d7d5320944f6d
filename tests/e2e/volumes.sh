#!/usr/bin/env bash
# Partitions and LVM volumes: images built with sfdisk, mkfs (ext4, FAT, NTFS, XFS, exFAT) and
# LVM (tests/fixtures/make-volume-images) are backed up; `thaw partitions` must list what
# sfdisk --json and lvs say (offsets, sizes, types, GPT names, LV segments). Each volume file is
# then cut out of the image by the listed extents, as a mount will show it; as a non-root user,
# `thaw files ls/cp` lists and copies known files out of ext4 (primary, logical, an LV of two
# segments), FAT and NTFS, compared by SHA-256 with the originals, and names the root recipe for
# XFS and exFAT; as root, a partition file loop-mounts without any offset.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
require_cmd sfdisk mkfs.ext4 mkfs.vfat mcopy mkntfs ntfs-3g mkfs.xfs pvcreate vgcfgrestore debugfs 7zz runuser python3
[ "$(id -u)" = 0 ] || skip "needs root (loop devices for LVM and XFS)"
losetup -f >/dev/null 2>&1 || skip "no free loop device"
id nobody >/dev/null 2>&1 || skip "no user nobody"

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
             "gpt.img.p3": "xfs", "lvm.img.p1": "LVM2_member", "lvm.img.vg0-root": "ext4"}.items():
    if fs.get(n) != f:
        bad.append(f"{n}: filesystem {fs.get(n)!r}, expected {f}")
print("\n".join(bad) or "listing matches sfdisk --json, lvs --segments and pvs")
sys.exit(1 if bad else 0)
PY
pass "thaw partitions matches sfdisk --json, lvs --segments and pvs"

# ---- volume files, cut out of the images by the listed extents (what a mount will show)
mkdir -p "$T/vol"
python3 - "$T/json.out" "$FX" "$T/vol" <<'PY'
import json, sys
for d in json.load(open(sys.argv[1])):
    src = open(f"{sys.argv[2]}/{d['image']}", "rb")
    for v in d["volumes"]:
        if not v["exposed"]:
            continue
        with open(f"{sys.argv[3]}/{v['name']}", "wb") as out:
            for e in v["extents"]:
                src.seek(e["offset"])
                left = e["length"]
                while left:
                    b = src.read(min(left, 1 << 20))
                    out.write(b)
                    left -= len(b)
PY
cmp "$T/vol/lvm.img.vg0-root" "$FX/lvm-root.fs" || fail "LV root (two segments) differs from the filesystem placed in it"
cmp "$T/vol/lvm.img.vg0-data" "$FX/lvm-data.bin" || fail "LV data differs from its contents"
pass "LVs read by their extents equal what was written into them"

# ---- as a non-root user: list and copy files out of each filesystem
mkdir -p "$T/bin" "$T/out"
cp "$THAW_REPO/mount-scripts/thaw" "${THAW_JAR:-$THAW_REPO/target/thaw.jar}" "$T/bin/"
chmod 755 "$T" "$T/bin" "$T/vol" "$FX" && chmod -R a+rX "$FX/files" "$FX/files-fat" && chmod a+r "$T/bin/"* "$T/vol/"*
chown nobody "$T/out"
as_user() { # as_user TAG ARGS...: thaw as nobody; stdout/stderr in $T/TAG.out/.err; sets RC
  local tag=$1
  shift
  RC=0
  (cd "$T/out" && timeout -k 10 120 runuser -u nobody -- env HOME="$T/out" THAW_JAR="$T/bin/thaw.jar" \
    "$T/bin/thaw" "$@") >"$T/$tag.out" 2>"$T/$tag.err" || RC=$?
}
user_ok() {
  as_user "$@"
  [ "$RC" = 0 ] || { cat "$T/$1.err" >&2; fail "$1: thaw ${2:-} ${3:-} as nobody exited $RC"; }
}
user_fails() { # user_fails TAG ERE ARGS...
  local tag=$1 ere=$2
  shift 2
  as_user "$tag" "$@"
  [ "$RC" != 0 ] || fail "$tag: thaw $* as nobody succeeded"
  grep -Eq "^thaw: error: .*$ere" "$T/$tag.err" || { cat "$T/$tag.err" >&2; fail "$tag: no 'thaw: error: ...$ere'"; }
  pass "$tag: $(head -c 200 "$T/$tag.err")"
}
sha() { sha256sum <"$1" | cut -d' ' -f1; }

for v in mbr.img.p1 mbr.img.p6 lvm.img.vg0-root mbr.img.p5 gpt.img.p2; do
  ref=$FX/files
  case $v in mbr.img.p5 | gpt.img.p2) ref=$FX/files-fat ;; esac
  sub=sub
  [ "$v" = mbr.img.p6 ] && sub=. # the logical ext4 holds files/sub at its root
  user_ok "ls-$v" files ls "$T/vol/$v" "/$sub/dir"
  grep -q ' random.bin$' "$T/ls-$v.out" && grep -q ' deeper$' "$T/ls-$v.out" ||
    { cat "$T/ls-$v.out"; fail "$v: listing of $sub/dir lacks random.bin or deeper"; }
  user_ok "cp-$v" files cp "$T/vol/$v" "/$sub" "$T/out/$v"
  for f in dir/random.bin numbers.txt dir/deeper/deep.txt dated.txt; do
    [ "$(sha "$T/out/$v/$f")" = "$(sha "$ref/sub/$f")" ] || fail "$v: $sub/$f differs from the original"
  done
  [ "$(stat -c %Y "$T/out/$v/dated.txt")" = "$(stat -c %Y "$ref/sub/dated.txt")" ] || fail "$v: mtime of dated.txt not kept"
  [ "$(stat -c %U "$T/out/$v/numbers.txt")" = nobody ] || fail "$v: copy not owned by the user"
  pass "$v: listed and copied as nobody, SHA-256 and mtime equal to the originals"
done
for v in mbr.img.p1 lvm.img.vg0-root; do
  user_ok "cpx-$v" files cp "$T/vol/$v" /bin/run.sh "$T/out/run-$v.sh"
  [ "$(stat -c %a "$T/out/run-$v.sh")" = 750 ] || fail "$v: mode of run.sh not kept"
  user_ok "cpl-$v" files cp "$T/vol/$v" /link-to-deep "$T/out/link-$v"
  [ "$(readlink "$T/out/link-$v")" = sub/dir/deeper/deep.txt ] || fail "$v: symlink not copied as a symlink"
  pass "$v: mode 0750 kept; symlink copied as a symlink"
done
v=mbr.img.p1
user_fails missing "no such file or directory in .*: /sub/nope.txt" files cp "$T/vol/$v" /sub/nope.txt "$T/out"
user_fails escape "path escapes the filesystem's root: ../../etc/shadow" files cp "$T/vol/$v" ../../etc/shadow "$T/out"
user_fails fifo "not a regular file, directory or symlink: /fifo" files cp "$T/vol/$v" /fifo "$T/out"
user_fails exists "already exists, not overwritten: $T/out/mbr.img.p1/numbers.txt" \
  files cp "$T/vol/$v" /sub/numbers.txt "$T/out/$v"
user_fails xfs "holds xfs, which thaw cannot read without root; as root: .*mount -o ro,loop,norecovery" \
  files ls "$T/vol/gpt.img.p3" /
if grep -q '"gpt.img.p4".*' "$T/json.out" && [ "$(python3 -c 'import json,sys; print([v["filesystem"] for d in json.load(open(sys.argv[1])) for v in d["volumes"] if v["name"]=="gpt.img.p4"][0])' "$T/json.out")" = exfat ]; then
  user_fails exfat "holds exfat, which thaw cannot read without root; as root: .*mount.exfat-fuse" files ls "$T/vol/gpt.img.p4" /
fi

# ---- as root: a partition file loop-mounts as it is, no offset
MNT=$T/mnt
mkdir -p "$MNT"
L=$(losetup -r -f --show "$T/vol/gpt.img.p3")
defer losetup -d "$L"
defer umount -l "$MNT"
mount -o ro,norecovery "$L" "$MNT"
[ "$(sha "$MNT/sub/dir/random.bin")" = "$(sha "$FX/files/sub/dir/random.bin")" ] || fail "file in the loop-mounted XFS differs"
umount "$MNT"
losetup -d "$L"
pass "XFS partition file loop-mounted without an offset (root recipe), file equal"
