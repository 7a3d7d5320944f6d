# shellcheck shell=bash
# A Proxmox Backup Server reader for tests and benchmarks, built from the PBS 4.2 sources. Two
# implementations: dev.thaw.testing.PbsReaderDouble (Java, Netty: the default; run as a process
# from the test classes) and, with PBS_DOUBLE=node, tests/tools/pbs-reader-node/reader.mjs (Node:
# OpenSSL, llhttp, nghttp2), an independent one on other HTTP stacks. Source after lib.sh.

# start_pbs DATASTORE_DIR TOKENS_FILE [ARGS...]: serves DATASTORE_DIR as datastore "store1" on
# 127.0.0.1 with the tokens of TOKENS_FILE (lines "AUTHID SECRET [PRIVS|-]"); ARGS go to the
# server (e.g. --auth-delay-ms 3000). Sets PBS_PORT, PBS_FP (its certificate's fingerprint) and
# PBS_PID; the server is stopped at exit.
start_pbs() {
  local ds=$1 tokens=$2 log i
  shift 2
  log=$T/pbs-$RANDOM.log
  case ${PBS_DOUBLE:-java} in
  node)
    require_cmd node openssl zstd # zstd: the compressed manifests its snapshot listing reads
    node "$THAW_REPO/tests/tools/pbs-reader-node/reader.mjs" \
      --port 0 --datastore "store1=$ds" --tokens "$tokens" "$@" >"$log" 2>&1 &
    ;;
  java) start_pbs_java "$ds" "$tokens" "$log" "$@" ;;
  *) fail "PBS_DOUBLE must be java or node, not $PBS_DOUBLE" ;;
  esac
  PBS_PID=$!
  defer kill_wait "$PBS_PID"
  for ((i = 0; i < 300; i++)); do
    grep -q '^listening on' "$log" && break
    alive "$PBS_PID" || break
    sleep 0.1
  done
  grep -q '^listening on' "$log" || { cat "$log" >&2; fail "the PBS reader double did not start"; }
  PBS_PORT=$(sed -n 's/^listening on //p' "$log")
  PBS_FP=$(sed -n 's/^fingerprint //p' "$log")
}

# start_pbs_java DATASTORE_DIR TOKENS_FILE LOG [ARGS...]: starts the Java double in the background.
start_pbs_java() {
  local ds=$1 tokens=$2 log=$3
  shift 3
  local classes=$THAW_REPO/target/test-classes
  if [ ! -f "$classes/dev/thaw/testing/PbsReaderDouble.class" ]; then
    (cd "$THAW_REPO" && mvn -B -q -o -DskipTests test-compile >/dev/null 2>&1) ||
      (cd "$THAW_REPO" && mvn -B -q -DskipTests test-compile >/dev/null) ||
      fail "cannot compile the test classes (the PBS reader double)"
  fi
  # a copy, so that a rebuild while the server runs does not swap its classes
  rm -rf "$T/pbs-classes"
  cp -r "$classes" "$T/pbs-classes"
  java -Xmx512m -cp "$T/pbs-classes:${THAW_JAR:-$THAW_REPO/target/thaw.jar}" dev.thaw.testing.PbsReaderDouble \
    --port 0 --datastore "store1=$ds" --tokens "$tokens" "$@" >"$log" 2>&1 &
}
