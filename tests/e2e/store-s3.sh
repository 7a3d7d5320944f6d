#!/usr/bin/env bash
# S3 store against a real S3 server (s3proxy from Maven Central, filesystem backend, SigV4 checked)
# on 127.0.0.1: backup into a bucket (only missing chunks uploaded), ls, restore + cmp, mount + cmp;
# the README's S3 commands as written; wrong credentials; mirrors; --rate-limit.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
require_cmd curl java

cd "$T" || exit 1

# --- an S3 server on 127.0.0.1 with credentials made up for this test, and a bucket
start_s3proxy
ENDPOINT=$S3_ENDPOINT

make_image disk.img 40
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK

# --- README: "Backups in S3" (the commands as written there, with this test's endpoint)
expect_ok b1 backup --store s3://backups/pbs --s3-endpoint "$ENDPOINT" --id vm/100 drive-scsi0.img:disk.img
snap1=$(last_line "$T/b1.out")
[ -n "$(find s3data/backups/pbs/.chunks -type f | head -n1)" ] || fail "no chunk objects under pbs/.chunks/"
[ -f "s3data/backups/pbs/.cnt/$snap1/index.json.blob" ] || fail "the manifest is not at pbs/.cnt/$snap1/"
pass "backup wrote the PBS 4 layout: pbs/.chunks/XXXX/<digest> and pbs/.cnt/$snap1/"
sleep 1 # snapshot times have one-second resolution
expect_ok b2 backup --store s3://backups/pbs --s3-endpoint "$ENDPOINT" --id vm/100 drive-scsi0.img:disk.img
snap2=$(last_line "$T/b2.out")
err_contains b2 "0 new chunks written" "a second backup of the same image uploads no chunk"

expect_ok ls ls --store s3://backups/pbs --s3-endpoint "$ENDPOINT"
grep -q "$snap1" ls.out && grep -q "$snap2" ls.out || fail "ls does not list both snapshots"
pass "ls lists both snapshots (ListObjectsV2)"

expect_ok r1 restore --progress none --store s3://backups/pbs --s3-endpoint "$ENDPOINT" "$snap2" drive-scsi0.img restored.img
cmp disk.img restored.img || fail "the image restored from S3 differs"
pass "restore from S3 equals the source"

mount_thaw m1 "$T/mnt" --store s3://backups/pbs --s3-endpoint "$ENDPOINT" "$snap2"
cmp disk.img "$T/mnt/drive-scsi0.img" || fail "the image mounted from S3 differs"
pass "the image mounted from S3 equals the source"
"$THAW" unmount "$T/mnt" >/dev/null

# --- credentials: wrong ones fail at once, and no secret is ever printed
AWS_SECRET_ACCESS_KEY=wrong-$SK expect_fail bad ls --store s3://backups/pbs --s3-endpoint "$ENDPOINT"
err_contains bad "access denied.*SignatureDoesNotMatch" "a wrong secret key is reported as access denied"
grep -qF "$SK" bad.err bad.out && fail "the secret key appears in the output"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$THAW" ls --store s3://backups/pbs \
  --s3-endpoint "$ENDPOINT" >nocreds.out 2>nocreds.err && fail "ls without credentials succeeded"
grep -q "no S3 credentials" nocreds.err || fail "missing credentials are not explained: $(cat nocreds.err)"
pass "missing credentials are explained"
# the shared credentials file works as well (profile from AWS_PROFILE)
mkdir -p "$HOME/.aws"
printf '[restore]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$AK" "$SK" >"$HOME/.aws/credentials"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=restore "$THAW" ls --store s3://backups/pbs \
  --s3-endpoint "$ENDPOINT" >profile.out 2>profile.err || fail "ls with a credentials-file profile failed: $(cat profile.err)"
grep -q "$snap1" profile.out || fail "ls with a profile lists nothing"
pass "credentials from ~/.aws/credentials (AWS_PROFILE) work"
expect_fail nobucket ls --store s3://no-such-bucket/pbs --s3-endpoint "$ENDPOINT"
err_contains nobucket "bucket 'no-such-bucket' does not exist" "a missing bucket is named"

# --- mirrors: a store that is down is skipped, the next serves
DEAD=$(free_port)
expect_ok mirror restore --progress none --store "http://127.0.0.1:$DEAD/pbs/" --store s3://backups/pbs \
  --s3-endpoint "$ENDPOINT" "$snap1" drive-scsi0.img mirrored.img
cmp disk.img mirrored.img || fail "the restore through mirrors differs"
pass "with --store DOWN --store S3 the restore reads the second store"

# --- --rate-limit: the image's random chunks alone are 24 MiB of blobs: at 8 MiB/s, at least
# 3 s less a quarter second of burst (a lower bound only: a slow machine cannot fail it)
start=$(date +%s%N)
expect_ok slow restore --progress none --rate-limit 8M --store s3://backups/pbs --s3-endpoint "$ENDPOINT" \
  "$snap1" drive-scsi0.img slow.img
ms=$((($(date +%s%N) - start) / 1000000))
cmp disk.img slow.img || fail "the rate-limited restore differs"
((ms >= 2700)) || fail "--rate-limit 8M fetched over 24 MiB in $ms ms"
pass "--rate-limit 8M holds ($(grep -o "[0-9.]* MiB read from the store" slow.err) in $ms ms)"
