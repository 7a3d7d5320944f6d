#!/usr/bin/env bash
# The main job on a local datastore: backup, ls, restore + cmp, verify,
# sparse restore, dedup on a second backup, `ls --output json`.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

cd "$T" || exit 1
DS=$T/ds

echo "== make a.img: 150 MiB random, truncated to 701 MiB"
head -c 150M /dev/urandom >a.img && truncate -s 701M a.img
size=$(file_size a.img)
assert_eq 735051776 "$size" "a.img apparent size"

echo "== backup"
expect_ok backup1 backup --store "$DS" --id vm/100 a.img
snap=$(last_line "$T/backup1.out")
note "snapshot: $snap"
[[ $snap =~ ^vm/100/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] ||
  fail "last line of backup stdout is not a snapshot name: '$snap'"
pass "backup printed snapshot name $snap"
[ -f "$DS/$snap/index.json.blob" ] || fail "missing $DS/$snap/index.json.blob"
[ -f "$DS/$snap/a.img.fidx" ] || fail "missing $DS/$snap/a.img.fidx"
pass "datastore layout: $snap/index.json.blob and a.img.fidx exist"
chunks1=$(count_chunks "$DS")
note "chunk files after first backup: $chunks1"
# 150 MiB random -> 38 distinct data chunks, plus at most one zero chunk and
# the short last chunk (701 MiB is not a multiple of 4 MiB).
if ((chunks1 < 38 || chunks1 > 41)); then
  fail "expected 38..41 chunk files for a 150 MiB random + zeros image, found $chunks1"
fi
pass "chunk count $chunks1 plausible (zero chunks deduplicated)"

echo "== ls"
expect_ok ls1 ls --store "$DS"
grep -qF "$snap" "$T/ls1.out" || { cat "$T/ls1.out"; fail "ls does not list $snap"; }
pass "ls lists $snap"
expect_ok ls2 ls --store "$DS" "$snap"
grep -qF "a.img" "$T/ls2.out" || { cat "$T/ls2.out"; fail "ls $snap does not list a.img"; }
pass "ls $snap lists a.img"
sed 's/^/    /' "$T/ls2.out"

echo "== restore to b.img"
expect_ok restore1 restore --store "$DS" "$snap" a.img b.img
cmp a.img b.img || fail "restored b.img differs from a.img"
pass "cmp a.img b.img"
summary=$(grep -E '^restored ' "$T/restore1.err" | tail -n1) || fail "no 'restored ' summary on stderr"
note "summary: $summary"
grep -Eq 'MiB/s' <<<"$summary" || fail "summary lacks a MiB/s figure"
fetched=$(summary_field restore1 fetched)
zero=$(summary_field restore1 zero)
note "fetched=$fetched zero=$zero"
# 701 MiB = 176 chunks (175 full + 1 short); the first 37 full chunks and the
# mixed one are data, the rest is zeros.
((zero >= 130)) || fail "expected >= 130 zero chunks in summary, got $zero"
((fetched >= 38 && fetched <= 40)) || fail "expected about 38 fetched chunks, got $fetched"
pass "summary counts fetched=$fetched zero=$zero"
[ ! -e b.img.thaw-state ] || fail "state file b.img.thaw-state left after a successful restore"
pass "no state file left after success"

apparent_k=$((size / 1024))
used_k=$(du_k b.img)
note "b.img: apparent ${apparent_k} KiB, allocated ${used_k} KiB"
((used_k < 200 * 1024)) || fail "b.img is not sparse: ${used_k} KiB allocated of ${apparent_k} KiB"
pass "b.img is sparse (${used_k} KiB allocated of ${apparent_k} KiB)"

echo "== verify"
expect_ok verify1 verify --store "$DS" "$snap"

echo "== second backup of the same file writes no new chunks"
sleep 1 # distinct snapshot time (second resolution)
expect_ok backup2 backup --store "$DS" --id vm/100 a.img
snap2=$(last_line "$T/backup2.out")
[ "$snap2" != "$snap" ] || fail "second backup reused snapshot name $snap"
chunks2=$(count_chunks "$DS")
assert_eq "$chunks1" "$chunks2" "chunk file count unchanged by second backup"
expect_ok ls3 ls --store "$DS"
grep -qF "$snap2" "$T/ls3.out" || fail "ls does not list second snapshot $snap2"
grep -qF "$snap" "$T/ls3.out" || fail "ls no longer lists first snapshot $snap"
pass "ls lists both snapshots"

echo "== ls --output json"
expect_ok lsjson ls --store "$DS" "$snap" --output json
python3 - "$T/lsjson.out" <<'EOF' || fail "ls --output json: no archive a.img with size 735051776"
import json, sys
doc = json.load(open(sys.argv[1]))
found = []
def walk(o):
    if isinstance(o, dict):
        names = [v for v in o.values() if isinstance(v, str)]
        if any(n in ("a.img", "a.img.fidx") for n in names) and o.get("size") == 735051776:
            found.append(o)
        for v in o.values():
            walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(doc)
print("    json archive entry:", found[0] if found else None)
sys.exit(0 if found else 1)
EOF
pass "ls --output json parses and lists a.img with size 735051776"
expect_ok lsjson2 ls --store "$DS" --output json
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/lsjson2.out" ||
  fail "ls --store DS --output json is not JSON"
grep -qF "$snap" "$T/lsjson2.out" || fail "ls --output json does not mention $snap"
pass "ls --output json (snapshot list) parses and lists $snap"

echo "== file:// store URL"
expect_ok restore2 restore --store "file://$DS" "$snap" a.img c.img
cmp a.img c.img || fail "restore from file:// store differs"
pass "restore from file://$DS + cmp"

echo "PASS: core-local"
