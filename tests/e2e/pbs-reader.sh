#!/usr/bin/env bash
# Reading straight from a Proxmox Backup Server over its reader protocol (TLS, HTTP/1.1 upgrade,
# HTTP/2, API token): ls, verify, restore + cmp (also of an encrypted snapshot), mount + cmp, a live
# restore and single files out of an ext4 image (partitions, files ls, files cp) through a test
# double of the PBS reader serving a datastore thaw backup made; the server's self-signed
# certificate pinned by PBS_FINGERPRINT. A wrong token fails once after PBS's 3 s delay without
# printing the secret; a wrong fingerprint fails and shows the server's; without one, the server's
# certificate given as --ca-file is trusted. The PBS client's other sources of the same settings work
# too (PBS_SERVER and its siblings, PBS_PASSWORD_CMD and _FD, a systemd credential). The double is
# src/test/java/dev/thaw/testing/PbsReaderDouble.java (Netty), or with PBS_DOUBLE=node the
# independent tests/tools/pbs-reader-node/reader.mjs (pbs-reader-node.sh runs that).
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../pbs-lib.sh"
require_cmd java python3 mkfs.ext4
cd "$T" || exit 1

make_image a.img 40
expect_ok backup backup --store "$T/ds" --id vm/100 a.img:a.img
snap=$(last_line "$T/backup.out")
# a PBS keeps each group's owner beside its snapshots and lists no group without one
echo 'root@pam' >"$T/ds/vm/100/owner"

secret='t0ken secret?#%{}'
printf 'thaw@pbs!restore %s Datastore.Read,Datastore.Audit\nthaw@pbs!none nothing -\n' \
  "$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$secret")" >tokens
start_pbs "$T/ds" tokens --auth-delay-ms 3000 --cert-out "$T/pbs.pem"
note "the reader: ${PBS_DOUBLE:-java}"
REPO="thaw@pbs!restore@127.0.0.1:$PBS_PORT:store1"
printf '%s\n' "$secret" >secret.txt
export PBS_PASSWORD_FILE=$T/secret.txt PBS_FINGERPRINT=$PBS_FP

expect_ok ls ls --repository "$REPO"
assert_eq "$snap" "$(last_line "$T/ls.out")" "ls lists the snapshot through the API"
expect_ok lsa ls --repository "$REPO" "$snap"
assert_file_contains "$T/lsa.out" '^a\.img ' "ls SNAPSHOT lists the archive (manifest read over the reader)"
expect_ok verify verify --repository "$REPO" "$snap"
assert_file_contains "$T/verify.err" "0 problem" "verify over the reader finds no problem"

expect_ok r1 restore --progress none --repository "$REPO" "$snap" a.img b.img
cmp a.img b.img || fail "the restore through the reader differs from the source"
pass "restore through the reader equals the source"

# PBS_REPOSITORY and PBS_PASSWORD work as with the PBS client; --store pbs://REPO is the same store
PBS_REPOSITORY=$REPO PBS_PASSWORD=$secret PBS_PASSWORD_FILE='' expect_ok r2 restore --progress none "$snap" a.img c.img
cmp a.img c.img || fail "restore with PBS_REPOSITORY differs"
pass "PBS_REPOSITORY + PBS_PASSWORD name the store and the secret"

# the PBS client's other sources for the same settings: the repository made of PBS_SERVER,
# PBS_PORT, PBS_AUTH_ID and PBS_DATASTORE, or of --server, --port, --auth-id and --datastore; the
# secret from PBS_PASSWORD_CMD or from a descriptor (PBS_PASSWORD_FD, read by thaw itself without
# the launcher); the fingerprint as a systemd credential
mkdir -p creds && printf '%s' "$PBS_FP" >creds/proxmox-backup-client.fingerprint
unset PBS_PASSWORD_FILE PBS_FINGERPRINT
export CREDENTIALS_DIRECTORY=$T/creds
PBS_SERVER=127.0.0.1 PBS_PORT=$PBS_PORT PBS_AUTH_ID='thaw@pbs!restore' PBS_DATASTORE=store1 \
  PBS_PASSWORD_CMD="cat '$T/secret.txt'" expect_ok envls ls
assert_eq "$snap" "$(last_line "$T/envls.out")" "ls finds the PBS through PBS_SERVER/PORT/AUTH_ID/DATASTORE"
PBS_PASSWORD=$secret expect_ok partsls ls --server 127.0.0.1 --port "$PBS_PORT" --auth-id 'thaw@pbs!restore' --datastore store1
assert_eq "$snap" "$(last_line "$T/partsls.out")" "ls finds the PBS through --server, --port, --auth-id and --datastore"
RC=0
PBS_PASSWORD_FD=5 timeout -k 10 "$THAW_CMD_TIMEOUT" java -jar "${THAW_JAR:-$THAW_REPO/target/thaw.jar}" ls --repository "$REPO" 5<secret.txt >fd.out 2>fd.err || RC=$?
[ "$RC" = 0 ] || { cat fd.err >&2; fail "ls with PBS_PASSWORD_FD (no launcher) exited $RC"; }
assert_eq "$snap" "$(last_line "$T/fd.out")" "thaw reads the secret from PBS_PASSWORD_FD itself"
PBS_PASSWORD_CMD="sh -c 'exit 4'" expect_fail cmdfails ls --repository "$REPO"
assert_file_contains "$T/cmdfails.err" "PBS_PASSWORD_CMD: sh failed \(exit status 4\)" "a failing PBS_PASSWORD_CMD is named"
export PBS_PASSWORD_FILE=$T/secret.txt PBS_FINGERPRINT=$PBS_FP
unset CREDENTIALS_DIRECTORY

# a namespace, as the PBS client names it: listed and read with --ns (the ns= parameter of the
# listing and of the reader session), invisible from the root
make_image n.img 8
expect_ok nsbackup backup --store "$T/ds" --id ct/200 n.img:n.img
nsnap=$(last_line "$T/nsbackup.out")
echo 'root@pam' >"$T/ds/ct/200/owner"
# moved into namespace team/a as PBS lays one out (ns/team/ns/a/TYPE/ID/TIME; chunks shared)
mkdir -p "$T/ds/ns/team/ns/a" && mv "$T/ds/ct" "$T/ds/ns/team/ns/a/ct"
expect_ok nsls ls --repository "$REPO" --ns team/a
assert_eq "$nsnap" "$(last_line "$T/nsls.out")" "ls --ns lists the namespace's snapshot"
expect_ok rootls ls --repository "$REPO"
if grep -qF "$nsnap" "$T/rootls.out"; then fail "the namespace's snapshot is listed in the root"; fi
PBS_NAMESPACE=team/a expect_ok nsr restore --progress none --repository "$REPO" "$nsnap" n.img n2.img
cmp n.img n2.img || fail "the restore from a namespace differs from the source"
pass "a namespace is read through the reader (--ns, PBS_NAMESPACE)"

# an encrypted snapshot, as most PBS clients make them: its blobs and chunks come through the
# reader as stored and are opened with the key file here
expect_ok keynone key create --kdf none key.json
make_image k.img 12
expect_ok encbackup backup --store "$T/ds" --id vm/400 --keyfile key.json k.img:k.img
esnap=$(last_line "$T/encbackup.out")
echo 'root@pam' >"$T/ds/vm/400/owner"
expect_ok encr restore --progress none --repository "$REPO" --keyfile key.json "$esnap" k.img k2.img
cmp k.img k2.img || fail "the encrypted snapshot restored through the reader differs from the source"
expect_fail enckey restore --progress none --repository "$REPO" "$esnap" k.img k3.img
err_contains enckey 'give its key file with --keyfile' "an encrypted snapshot read through the reader without its key asks for it"
pass "an encrypted snapshot restores through the reader with its key file"

# single files: partitions, files ls and files cp read the filesystem inside an image through the
# reader, fetching only the chunks the path needs
mkdir -p fsroot/etc/deep && seq 1 200000 >fsroot/etc/deep/numbers.txt && echo pbs-host >fsroot/etc/hostname
truncate -s 64M fs.img && mkfs.ext4 -q -F -d fsroot fs.img
expect_ok fsbackup backup --store "$T/ds" --id vm/300 fs.img:fs.img
fsnap=$(last_line "$T/fsbackup.out")
echo 'root@pam' >"$T/ds/vm/300/owner"
expect_ok parts partitions --repository "$REPO" "$fsnap"
assert_file_contains "$T/parts.out" 'fs\.img: .*ext4' "partitions finds the filesystem through the reader"
expect_ok fls files ls --repository "$REPO" "$fsnap" fs.img /etc
assert_file_contains "$T/fls.out" ' hostname$' "files ls lists a directory through the reader"
expect_ok fcp files cp --repository "$REPO" "$fsnap" fs.img /etc/deep/numbers.txt numbers.txt
cmp fsroot/etc/deep/numbers.txt numbers.txt || fail "the file copied out through the reader differs"
read -r got all < <(sed -n 's/^thaw: fetched \([0-9]*\) of the \([0-9]*\) non-zero chunks.*/\1 \2/p' "$T/fcp.err")
[ -n "${got:-}" ] && [ "$got" -lt "$all" ] ||
  { cat "$T/fcp.err" >&2; fail "files cp fetched ${got:-?} of ${all:-?} chunks, not only those the path needs"; }
pass "files cp copies a single file out through the reader, fetching $got of $all chunks"

if [ -e /dev/fuse ] && command -v fusermount >/dev/null; then
  mount_thaw m1 "$T/mnt" --store "pbs://$REPO" "$snap"
  cmp a.img "$T/mnt/a.img" || fail "the image mounted through the reader differs"
  "$THAW" unmount "$T/mnt" >/dev/null 2>&1
  pass "mount through the reader serves the source's bytes"

  # a detached mount with the secret on descriptor 3, which the launcher itself uses to learn
  # that the mount is ready: the launcher reads it first, and hands it over off the environment
  unset PBS_PASSWORD_FILE
  PBS_PASSWORD_FD=3 mount_thaw mfd "$T/mnt3" --repository "$REPO" "$snap" 3<secret.txt
  export PBS_PASSWORD_FILE=$T/secret.txt
  cmp a.img "$T/mnt3/a.img" || fail "the image mounted with PBS_PASSWORD_FD differs"
  mp=$(mount_pid "$T/mnt3")
  [ -n "$mp" ] || fail "no process serves $T/mnt3"
  if tr '\0' '\n' <"/proc/$mp/environ" | grep -E '^PBS_PASSWORD(_FD)?='; then
    fail "the secret's variable is in the mount process's environment"
  fi
  "$THAW" unmount "$T/mnt3" >/dev/null 2>&1
  pass "mount with the secret on descriptor 3: it serves the source, and its environment holds no secret"

  mkdir -p target
  mount_thaw lr "$T/mnt2" --repository "$REPO" --restore-to target "$snap"
  cmp a.img "$T/mnt2/a.img" || fail "the live-restore mount reads differ from the source"
  wait_restore_complete "$T/mnt2" 120 "the live restore through the reader completes"
  "$THAW" unmount "$T/mnt2" >/dev/null 2>&1
  cmp a.img target/a.img || fail "the live-restored target differs from the source"
  pass "live restore through the reader: reads and the restored target equal the source"
else
  note "no /dev/fuse: mount and live restore not tested"
fi

# a wrong token: one 401 after PBS's 3 s delay, never retried, the secret never printed
t0=$SECONDS
PBS_PASSWORD="wrong $secret" PBS_PASSWORD_FILE='' expect_fail wrongtoken restore --progress none --repository "$REPO" "$snap" a.img d.img
took=$((SECONDS - t0))
err_contains wrongtoken "refused the API token thaw@pbs!restore.*HTTP 401" "a wrong token says the server refused it"
((took >= 3 && took < 15)) || fail "a wrong token took ${took}s (want one attempt after the 3 s delay)"
if grep -rqF -- "$secret" "$T"/*.err "$T"/*.out; then fail "the secret appears in thaw's output"; fi
[ -e d.img ] && fail "a target was written although the token was refused"
pass "a wrong token fails once after the delay (${took}s); the secret is never printed"

PBS_PASSWORD=nothing expect_fail noperm restore --progress none --repository "thaw@pbs!none@127.0.0.1:$PBS_PORT:store1" "$snap" a.img e.img
err_contains noperm "permission denied.*no permissions on /datastore/store1" "missing privileges are reported as such"

expect_fail nosnap restore --progress none --repository "$REPO" vm/100/2001-01-01T00:00:00Z a.img f.img
err_contains nosnap "not found|does not exist" "an unknown snapshot is reported missing"
expect_fail nostore ls --repository "thaw@pbs!restore@127.0.0.1:$PBS_PORT:nostore"
err_contains nostore "datastore 'nostore' does not exist" "an unknown datastore is reported"

# a wrong fingerprint: refused, and the server's fingerprint is shown for comparison
PBS_FINGERPRINT=$(echo "$PBS_FP" | tr '0-9a-f' 'f0-9a-e') expect_fail wrongfp ls --repository "$REPO"
err_contains wrongfp "fingerprint $PBS_FP does not match PBS_FINGERPRINT" "a wrong fingerprint shows the server's"
PBS_FINGERPRINT='' expect_fail nofp ls --repository "$REPO"
err_contains nofp "not trusted.*$PBS_FP" "an untrusted certificate without PBS_FINGERPRINT shows the server's fingerprint"
# no fingerprint, the server's own certificate (PBS's /etc/proxmox-backup/proxy.pem) trusted as a
# CA with --ca-file: the listing (HTTP/1.1) and the reader session (HTTP/2) both validate the chain
# and the name (the certificate names 127.0.0.1)
PBS_FINGERPRINT='' expect_ok ca restore --progress none --ca-file "$T/pbs.pem" --repository "$REPO" \
  "$snap" a.img d.img
cmp a.img d.img || fail "the restore trusting the server's certificate by --ca-file differs"
pass "the server's certificate as --ca-file is trusted without a fingerprint"

# thaw never writes to a PBS
expect_fail nowrite backup --store "pbs://$REPO" --id vm/101 a.img:a.img
err_contains nowrite "never writes to a Proxmox Backup Server" "backups to a PBS are refused"

# a server that stops serving mid-restore (the Java double cuts every reader connection with a
# TCP reset; the Node reader ends its sessions at once): the restore goes on, on new sessions,
# and says nothing more than its retries
start_pbs "$T/ds" tokens --auth-delay-ms 3000 --drop-after-chunks 3
PBS_FINGERPRINT=$PBS_FP expect_ok cut restore --progress none --parallel 4 \
  --repository "thaw@pbs!restore@127.0.0.1:$PBS_PORT:store1" "$snap" a.img g.img
cmp a.img g.img || fail "the restore through a server that dropped its connections differs"
grep -Eq '[1-9][0-9]* retries' "$T/cut.out" "$T/cut.err" || fail "no retry reported after the drop"
if grep -Eq 'WARNING|Exception|^\s+at ' "$T/cut.err"; then
  cat "$T/cut.err" >&2
  fail "the dropped connection left a warning or a stack trace on stderr"
fi
pass "a dropped connection is retried on a new session, quietly"
