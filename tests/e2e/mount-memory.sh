#!/usr/bin/env bash
# The mount's memory bound: reading an image ten times the cache size keeps the peak
# RSS of the mount process under cache size + 160 MiB, and the bytes stay right.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
require_cmd fusermount
[ -e /dev/fuse ] || skip "no /dev/fuse"

CACHE_MIB=64
make_image "$T/big.img" $((CACHE_MIB * 10))
DS=$T/ds
expect_ok b backup --store "$DS" --id vm/7 "$T/big.img"
S=$(last_line "$T/b.out")
M=$T/mnt
mount_thaw m "$M" --store "$DS" --cache-size ${CACHE_MIB}M "$S"
P=$(mount_pid "$M")
[ -n "$P" ] || fail "no mount process"
( while kill -0 "$P" 2>/dev/null; do awk '/VmRSS/ {print $2}' "/proc/$P/status"; sleep 0.1; done >"$T/rss.log" ) &
SAMPLER=$!
defer kill "$SAMPLER"
cmp "$T/big.img" "$M/big.img" || fail "image read through the mount differs"
# and a second pass with a random-ish access pattern over the whole image
for off in 600 13 400 77 250 520 5 333; do
  cmp <(dd if="$M/big.img" bs=1M skip="$off" count=32 iflag=direct status=none) \
      <(dd if="$T/big.img" bs=1M skip="$off" count=32 status=none) || fail "read at $off MiB differs"
done
kill "$SAMPLER" 2>/dev/null || true
peak_kib=$(sort -n "$T/rss.log" | tail -n1)
limit_kib=$(((CACHE_MIB + 160) * 1024))
note "peak RSS $((peak_kib / 1024)) MiB with --cache-size ${CACHE_MIB}M (limit $((limit_kib / 1024)) MiB), $(wc -l <"$T/rss.log") samples"
[ "$peak_kib" -lt "$limit_kib" ] || fail "peak RSS $((peak_kib / 1024)) MiB exceeds cache + 160 MiB"
pass "peak RSS $((peak_kib / 1024)) MiB < cache ${CACHE_MIB} MiB + 160 MiB while reading an image 10x the cache"
