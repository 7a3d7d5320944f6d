# shellcheck shell=bash
# Shared helpers for thaw's end-to-end tests and benchmarks. Source it first:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#
# It turns on strict mode, makes a private temp dir $T (removed on exit unless
# THAW_TEST_KEEP=1), and runs the `defer` stack on exit even when the test fails,
# so servers, loop devices and mounts never outlive the test.
#
# Everything a test writes, mounts or serves lives under $T; servers bind to
# 127.0.0.1 only.

set -euo pipefail

# Repo root, derived from this file's location so any clone path works.
THAW_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
THAW=${THAW:-$THAW_REPO/mount-scripts/thaw}
# Upper bound (seconds) for any single thaw invocation made through run_thaw.
THAW_CMD_TIMEOUT=${THAW_CMD_TIMEOUT:-300}
export THAW_REPO THAW

TEST_NAME=$(basename "${0%.sh}")
T=$(mktemp -d "${TMPDIR:-/tmp}/thaw-$TEST_NAME.XXXXXX")
export T
# Keep anything thaw puts under the home directory (e.g. state files for block
# devices) inside the temp dir.
mkdir -p "$T/home"
# the real home, for tools that need the user's caches (tests/tools/s3proxy-jar: ~/.m2)
export THAW_REAL_HOME=${THAW_REAL_HOME:-$HOME}
export HOME=$T/home XDG_STATE_HOME=$T/home/.local/state
# No test leaves a JVM behind that makes the launcher's start-up archive: a test uses the one
# there is (tests/run-e2e makes one per run) or none; a benchmark makes its own first
# (startup_archive).
export THAW_STARTUP_CACHE=${THAW_STARTUP_CACHE:-use}

# ---------------------------------------------------------------------------
# cleanup stack
# ---------------------------------------------------------------------------
_DEFERRED=()

# defer CMD [ARGS...]: run CMD ARGS at exit (last deferred runs first).
defer() {
  _DEFERRED+=("$(printf '%q ' "$@")")
}

_run_deferred() {
  local rc=$? i
  trap - EXIT INT TERM HUP
  set +e
  for ((i = ${#_DEFERRED[@]} - 1; i >= 0; i--)); do
    eval "${_DEFERRED[i]}" >/dev/null 2>&1
  done
  if [ "${THAW_TEST_KEEP:-0}" = 1 ]; then
    echo "note: kept temp dir $T" >&2
  else
    # Never follow into a mount that failed to unmount: rm -rf --one-file-system.
    rm -rf --one-file-system "$T" 2>/dev/null
  fi
  exit "$rc"
}
trap _run_deferred EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# alive PID: the process exists and is not a zombie (kill -0 succeeds on
# zombies until they are reaped, so it cannot tell a finished child).
alive() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $st != Z* ]]
}

# kill_wait PID: TERM a process we started, then KILL it if it lingers; reap it.
kill_wait() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

pass() {
  echo "ok: $*"
}

# skip MSG: the test cannot run here; exits 0 with a SKIP line run-e2e recognises.
skip() {
  echo "SKIP: $*"
  exit 0
}

note() {
  echo "  .. $*"
}

# assert_eq EXPECTED ACTUAL MSG
assert_eq() {
  if [ "$1" != "$2" ]; then
    fail "$3: expected '$1', got '$2'"
  fi
  pass "$3"
}

# assert_file_contains FILE ERE MSG (case-insensitive)
assert_file_contains() {
  if ! grep -Eiq -- "$2" "$1"; then
    echo "---- $1:" >&2
    sed 's/^/    /' "$1" >&2
    fail "$3: /$2/ not found"
  fi
  pass "$3"
}

# ---------------------------------------------------------------------------
# running thaw
# ---------------------------------------------------------------------------
# run_thaw TAG ARGS...: runs thaw with a timeout; stdout -> $T/TAG.out,
# stderr -> $T/TAG.err; sets RC (never fails itself).
run_thaw() {
  local tag=$1
  shift
  RC=0
  timeout -k 10 "$THAW_CMD_TIMEOUT" "$THAW" "$@" >"$T/$tag.out" 2>"$T/$tag.err" || RC=$?
  if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
    echo "  .. thaw $1 timed out after ${THAW_CMD_TIMEOUT}s (rc $RC)" >&2
  fi
}

_show_outputs() {
  local tag=$1
  echo "---- thaw stdout ($tag):" >&2
  tail -n 40 "$T/$tag.out" | sed 's/^/    /' >&2
  echo "---- thaw stderr ($tag):" >&2
  tail -n 40 "$T/$tag.err" | sed 's/^/    /' >&2
}

# A Java stack trace on stderr is never an acceptable user-facing error.
_no_stack_trace() {
  local tag=$1
  if grep -Eq '^(Exception in thread|Caused by: )|^[[:space:]]+at [a-zA-Z_$][a-zA-Z0-9_$.]*\(' "$T/$tag.err"; then
    _show_outputs "$tag"
    fail "$tag: thaw printed a Java stack trace"
  fi
}

# expect_ok TAG ARGS...: thaw must exit 0.
expect_ok() {
  local tag=$1
  run_thaw "$@"
  if [ "$RC" != 0 ]; then
    _show_outputs "$tag"
    fail "$tag: thaw ${2:-} exited $RC"
  fi
  pass "$tag: thaw ${2:-} exit 0"
}

# expect_fail TAG ARGS...: thaw must exit non-zero with a `thaw: error:` line
# on stderr and no Java stack trace.
expect_fail() {
  local tag=$1
  run_thaw "$@"
  if [ "$RC" = 0 ]; then
    _show_outputs "$tag"
    fail "$tag: thaw ${2:-} succeeded but should have failed"
  fi
  if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
    _show_outputs "$tag"
    fail "$tag: thaw ${2:-} timed out"
  fi
  if ! grep -q '^thaw: error: ' "$T/$tag.err"; then
    _show_outputs "$tag"
    fail "$tag: no 'thaw: error:' line on stderr"
  fi
  _no_stack_trace "$tag"
  pass "$tag: thaw ${2:-} failed as expected (exit $RC): $(grep -m1 '^thaw: error: ' "$T/$tag.err" | cut -c1-200)"
}

# err_contains TAG ERE MSG: stderr of TAG matches ERE (case-insensitive).
err_contains() {
  assert_file_contains "$T/$1.err" "$2" "$3"
}

# last_line FILE
last_line() {
  awk 'NF { l = $0 } END { print l }' "$1"
}

# summary_field TAG WORDS: the number N in "N WORDS" on the last `restored `
# line of TAG's stderr. Example: summary_field r1 'already done'
summary_field() {
  local line
  line=$(grep -E '^restored ' "$T/$1.err" | tail -n1) || true
  [ -n "$line" ] || fail "$1: no 'restored ' summary line on stderr"
  printf '%s\n' "$line" | grep -oE "[0-9]+ $2" | head -n1 | cut -d' ' -f1
}

# ---------------------------------------------------------------------------
# datastore helpers
# ---------------------------------------------------------------------------
# count_chunks DS: number of chunk files in the datastore.
count_chunks() {
  if [ -d "$1/.chunks" ]; then
    find "$1/.chunks" -type f | wc -l | tr -d ' '
  else
    echo 0
  fi
}

# chunk_path DS DIGEST
chunk_path() {
  echo "$1/.chunks/${2:0:4}/$2"
}

# sha256_range FILE OFFSET_BYTES LEN_BYTES: digest of a byte range (the
# unencrypted chunk digest of that range).
sha256_range() {
  python3 - "$1" "$2" "$3" <<'EOF'
import hashlib, sys
path, off, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, 'rb') as f:
    f.seek(off)
    data = f.read(n)
print(hashlib.sha256(data).hexdigest())
EOF
}

# flip_byte FILE OFFSET: xor one byte with 0xff in place.
flip_byte() {
  python3 - "$1" "$2" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, 'r+b') as f:
    f.seek(off)
    b = f.read(1)
    if len(b) != 1:
        sys.exit("flip_byte: offset %d beyond end of %s" % (off, path))
    f.seek(off)
    f.write(bytes([b[0] ^ 0xff]))
EOF
}

file_size() {
  stat -c %s "$1"
}

# disk usage in KiB (allocated blocks)
du_k() {
  du -k "$1" | cut -f1
}

# ---------------------------------------------------------------------------
# test data
# ---------------------------------------------------------------------------
# make_image PATH SIZE_MIB: a sparse "disk image" with a fixed layout repeated
# every 16 MiB: 8 MiB random, 4 MiB compressible text (different per segment,
# so it does not dedup), 4 MiB left as a hole (zeros). Every 4 MiB chunk is
# thus purely random, purely text or purely zero.
make_image() {
  local path=$1 mib=$2 seg nseg off len
  rm -f "$path"
  : >"$path"
  nseg=$(((mib + 15) / 16))
  for ((seg = 0; seg < nseg; seg++)); do
    off=$((seg * 16))
    len=$((mib - off < 8 ? mib - off : 8))
    head -c "$((len * 1048576))" /dev/urandom |
      dd of="$path" bs=1M seek="$off" conv=notrunc iflag=fullblock status=none
    off=$((off + 8))
    if ((off < mib)); then
      len=$((mib - off < 4 ? mib - off : 4))
      { seq -f "segment $seg line %08g: the quick brown fox jumps over the lazy dog" 1 100000 || true; } |
        head -c "$((len * 1048576))" |
        dd of="$path" bs=1M seek="$off" conv=notrunc iflag=fullblock status=none
    fi
  done
  truncate -s "$((mib * 1048576))" "$path"
}

# bench_save NAME FILE SUMMARY: FILE becomes tests/bench/results/NAME.md (a bench keeps only its
# latest full table), and one line "| date | commit | NAME | SUMMARY |" is added to
# tests/bench/results/history.md.
bench_save() {
  local name=$1 file=$2 summary=$3 results=$THAW_REPO/tests/bench/results commit
  mkdir -p "$results"
  cp "$file" "$results/$name.md"
  commit=$(git -C "$THAW_REPO" rev-parse --short HEAD 2>/dev/null || echo -)
  printf '| %s | %s | %s | %s |\n' "$(date -u '+%Y-%m-%d %H:%M')" "$commit" "$name" "$summary" >>"$results/history.md"
  echo "written to $results/$name.md (and a line in history.md)"
}

# startup_archive: makes the launcher's start-up archives (the mount's and every other
# command's) for the JDK and jar thaw runs on now (THAW_JAVA, THAW_JAR), so that a benchmark
# measures thaw as a user runs it from the second command on, and no archive is made in the
# background of a measured run.
startup_archive() {
  THAW_STARTUP_CACHE=foreground "$THAW" --version >/dev/null 2>&1 || true
}

# thaw_jdk: the JDK thaw runs on (the launcher's choice, or THAW_JAVA): version and home.
thaw_jdk() {
  THAW_STARTUP_CACHE=0 THAW_JAVA_OPTS="${THAW_JAVA_OPTS:-} -XshowSettings:properties" "$THAW" --version 2>&1 |
    awk -F' = ' '/^ *java.runtime.name/ { n = $2 } /^ *java.runtime.version/ { v = $2 } /^ *java.home/ { h = $2 }
      END { printf "%s %s (%s)\n", n, v, h }'
}

# readme_block MARKER: the fenced code block that follows the line `<!-- MARKER: ... -->` in
# README.md, without its fences (tests that run the README's commands as written).
readme_block() {
  awk -v m="<!-- $1:" 'index($0, m) == 1 { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' "$THAW_REPO/README.md"
}

# ---------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------
# free_port: prints a TCP port that is free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL [SECONDS]: wait until URL answers with any HTTP status.
wait_http() {
  local url=$1 secs=${2:-15} i
  for ((i = 0; i < secs * 10; i++)); do
    if curl -s -o /dev/null --max-time 2 "$url"; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# start_nginx ROOT_DIR [EXTRA_SERVER_CONFIG]: serve ROOT_DIR read-only on
# 127.0.0.1:$NGINX_PORT with a private config (no /etc/nginx defaults) whose
# pid, logs and temp paths are all under $T/nginx-$NGINX_PORT. EXTRA_SERVER_CONFIG
# is pasted into the server block (e.g. a `location /.chunks/ { limit_rate 8m; }`).
# Sets NGINX_PORT, NGINX_PID, NGINX_DIR.
start_nginx() {
  local root extra=${2:-} user_line="" try
  root=$(cd "$1" && pwd)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || fail "nginx not installed"
  local nginx_bin
  nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
  # As root, nginx would drop its worker to `nobody`, which cannot read our
  # 0700 temp dir; keep the worker as root (it only serves $root on loopback).
  if [ "$(id -u)" = 0 ]; then
    user_line="user root;"
  fi
  for try in 1 2 3; do
    NGINX_PORT=$(free_port)
    NGINX_DIR=$T/nginx-$NGINX_PORT
    mkdir -p "$NGINX_DIR/tmp"
    cat >"$NGINX_DIR/nginx.conf" <<EOF
$user_line
daemon off;
master_process on;
worker_processes 1;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 1024; }
http {
  types {
    application/json json;
    text/plain txt;
  }
  default_type application/octet-stream;
  access_log $NGINX_DIR/access.log;
  client_body_temp_path $NGINX_DIR/tmp/body;
  proxy_temp_path $NGINX_DIR/tmp/proxy;
  fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
  uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
  scgi_temp_path $NGINX_DIR/tmp/scgi;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    server_name localhost;
    root $root;
    autoindex on;
    autoindex_format json;
    location / { }
$extra
  }
}
EOF
    "$nginx_bin" -p "$NGINX_DIR" -e "$NGINX_DIR/error.log" -c "$NGINX_DIR/nginx.conf" \
      >"$NGINX_DIR/stdout.log" 2>&1 &
    NGINX_PID=$!
    defer kill_wait "$NGINX_PID"
    if wait_http "http://127.0.0.1:$NGINX_PORT/" 15 && alive "$NGINX_PID"; then
      export NGINX_PORT NGINX_PID NGINX_DIR
      note "nginx serving $root on http://127.0.0.1:$NGINX_PORT/ (pid $NGINX_PID)"
      return 0
    fi
    echo "nginx did not come up (try $try):" >&2
    cat "$NGINX_DIR/error.log" "$NGINX_DIR/stdout.log" >&2 2>/dev/null || true
    kill_wait "$NGINX_PID"
  done
  fail "could not start nginx"
}

# cpu_of PID...: CPU seconds (user + system) the processes have used so far (benches: a server's
# share of the machine beside the client they measure)
cpu_of() {
  local p total=0 tck
  tck=$(getconf CLK_TCK)
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    total=$((total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat")))
  done
  awk -v t="$total" -v h="$tck" 'BEGIN { printf "%.2f", t / h }'
}

# restored_chunks STATE FIDX: the digests of the chunks a thaw state file records as restored,
# one per line, sorted (nothing when there is no state file yet).
restored_chunks() {
  [ -f "$1" ] || return 0
  python3 "$THAW_REPO/tests/tools/acked-writes" state-done "$1" "$2" | sort -u
}

# no_refetch MSG LINE RESTORED: fails when nginx served any chunk of RESTORED (digests, one per
# line) after line LINE of its access log.
no_refetch() {
  local again
  again=$(comm -12 <(printf '%s\n' "$3" | sort -u) <({ tail -n +"$(($2 + 1))" "$NGINX_DIR/access.log" |
    grep -o '/\.chunks/..../[0-9a-f]*' || true; } | sed 's|.*/||' | sort -u) | grep -c . || true)
  [ "$again" = 0 ] || fail "$1: $again chunk(s) recorded as restored were fetched again"
}

# ---------------------------------------------------------------------------
# S3 (s3proxy)
# ---------------------------------------------------------------------------
# start_s3proxy: an S3 server (s3proxy from Maven Central, filesystem backend in $T/s3data, SigV4
# checked) on 127.0.0.1 with credentials made up for this test, and the bucket `backups` in it.
# Sets S3_ENDPOINT, S3_PID, AK and SK; the server is stopped at exit.
start_s3proxy() {
  local jar port
  jar=$("$THAW_REPO/tests/tools/s3proxy-jar") || fail "could not fetch s3proxy"
  AK=thaw-test-$RANDOM
  SK=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  port=$(free_port)
  mkdir -p "$T/s3data"
  printf '%s\n' "s3proxy.endpoint=http://127.0.0.1:$port" "s3proxy.authorization=aws-v2-or-v4" \
    "s3proxy.identity=$AK" "s3proxy.credential=$SK" "jclouds.provider=filesystem" \
    "jclouds.filesystem.basedir=$T/s3data" >"$T/s3proxy.conf"
  java -jar "$jar" --properties "$T/s3proxy.conf" >"$T/s3proxy.log" 2>&1 &
  S3_PID=$!
  defer kill_wait "$S3_PID"
  S3_ENDPOINT=http://127.0.0.1:$port
  wait_http "$S3_ENDPOINT/" 60 || { cat "$T/s3proxy.log" >&2; fail "s3proxy did not start"; }
  s3_put backups || fail "could not create the bucket"
  note "s3proxy on $S3_ENDPOINT (pid $S3_PID)"
}

# s3_put PATH [FILE]: PUTs FILE (default: nothing) to $S3_ENDPOINT/PATH (a bucket, or BUCKET/KEY
# with ':' written as %3A), signed with SigV4 by curl; fails unless the server answers 200.
s3_put() {
  local body=${2:-$T/s3_put.empty} code
  [ -n "${2:-}" ] || : >"$body"
  code=$(curl -s -o "$T/s3_put.out" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" \
    -H "x-amz-content-sha256: $(sha256sum <"$body" | cut -d' ' -f1)" -T "$body" "$S3_ENDPOINT/$1")
  [ "$code" = 200 ] || { cat "$T/s3_put.out" >&2; echo "PUT $1: HTTP $code" >&2; return 1; }
}

# ---------------------------------------------------------------------------
# privileges
# ---------------------------------------------------------------------------
require_root() {
  [ "$(id -u)" = 0 ] || skip "${1:-this test} needs root"
}

require_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || skip "needs $c"
  done
}

# thaw_jar_present: the launcher needs target/thaw.jar.
[ -f "${THAW_JAR:-$THAW_REPO/target/thaw.jar}" ] ||
  fail "thaw jar not found at ${THAW_JAR:-$THAW_REPO/target/thaw.jar}; build it first (mvn -B -q -DskipTests package)"
