#!/usr/bin/env bash
# The start-up archives the launcher keeps per JDK and jar (one for mounts, one for every other
# command): each is made and then used (thaw's classes come from it, not from the jar), and a
# missing, cut-off, scribbled-over or foreign one (made by another JDK) changes nothing a user
# sees: every command still works and prints nothing it would not print anyway. On JDK 17 and,
# when installed, the newest JDK. The mount's archive is checked where FUSE is usable.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=SCRIPTDIR/../mount-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
# shellcheck source=SCRIPTDIR/../pbs-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../pbs-lib.sh"
cd "$T" || exit 1
FUSE=0
[ -e /dev/fuse ] && [ -r /dev/fuse ] && [ -w /dev/fuse ] && command -v fusermount >/dev/null && FUSE=1
[ "$FUSE" = 1 ] || note "no usable /dev/fuse: the mount's archive is not checked"

export XDG_CACHE_HOME=$T/cache
head -c 6M /dev/urandom >a.img
expect_ok backup backup --store "$T/ds" --id vm/1 a.img
S=$(last_line "$T/backup.out")
# a PBS reader (the test double) on that datastore: a command over it must find Netty's classes
# in the archive too
printf 'thaw@pbs!startup secret Datastore.Read,Datastore.Audit\n' >"$T/tokens"
start_pbs "$T/ds" "$T/tokens"

jdks=()
for j in /usr/lib/jvm/java-17-openjdk-*/bin/java /usr/lib/jvm/temurin-2[5-9]-*/bin/java /usr/lib/jvm/*-2[5-9]-*/bin/java; do
  [ -x "$j" ] || continue
  case " ${jdks[*]} " in *" $(readlink -f "$j") "*) ;; *) jdks+=("$(readlink -f "$j")") ;; esac
done
[ ${#jdks[@]} -gt 0 ] || skip "no JDK 17 or 25+ under /usr/lib/jvm"

# quiet_run TAG ARGS...: thaw must succeed and print on stderr only what the command prints
# anyway (a restore's and a verify's summary, what unmount did)
quiet_run() {
  local tag=$1
  expect_ok "$@"
  if grep -vE '^(restored |verified |thaw: unmounted )' "$T/$tag.err" | grep -q .; then
    sed 's/^/    /' "$T/$tag.err" >&2
    fail "$tag: thaw printed something extra on stderr"
  fi
}

# commands TAG all|mount: the commands every case runs with that training's archive
commands() {
  if [ "$2" = mount ]; then
    local m=$T/m-$1
    mount_thaw "$1-mount" "$m" --store "$T/ds" "$S"
    if grep -v '^thaw: \(mounted\|end it with\)' "$T/$1-mount.err" | grep -q .; then
      sed 's/^/    /' "$T/$1-mount.err" >&2
      fail "$1: thaw mount printed something extra on stderr"
    fi
    cmp a.img "$m/a.img" || fail "$1: the mounted image differs"
    quiet_run "$1-unmount" unmount "$m"
    return
  fi
  quiet_run "$1-version" --version
  quiet_run "$1-ls" ls --store "$T/ds" "$S"
  quiet_run "$1-verify" verify --store "$T/ds" "$S"
  rm -f "$T/r.img"
  quiet_run "$1-restore" restore --progress none --store "$T/ds" "$S" a.img "$T/r.img"
  cmp a.img "$T/r.img" || fail "$1: restored image differs"
}

# the trainings whose archives are used below: a mount's only where FUSE is usable
trainings=(all)
[ "$FUSE" = 1 ] && trainings+=(mount)
for jdk in "${jdks[@]}"; do
  export THAW_JAVA=$jdk
  name=$(basename "$(dirname "$(dirname "$jdk")")")
  echo "== $name"
  rm -rf "$XDG_CACHE_HOME"
  # one command makes both archives, its own first
  THAW_STARTUP_CACHE=foreground run_thaw "$name-make" --version
  for training in all mount; do
    archive=$(find "$XDG_CACHE_HOME/thaw" -name "startup-$training-*" ! -name '*.size' | head -n1)
    [ -s "$archive" ] || fail "$name: no $training start-up archive was made"
    pass "$name: start-up archive $(basename "$archive") made ($(du -k "$archive" | cut -f1) KiB)"
  done
  THAW_JAVA_OPTS="-Xlog:class+load:file=$T/$name-classes.txt" run_thaw "$name-used" ls --store "$T/ds"
  grep -q 'dev.thaw.cli.Main source: shared objects file' "$T/$name-classes.txt" \
    || fail "$name: thaw's classes did not come from the start-up archive"
  grep -q 'picocli.CommandLine source: shared objects file' "$T/$name-classes.txt" \
    || fail "$name: picocli's classes did not come from the start-up archive"
  pass "$name: thaw's and picocli's classes come from the archive"
  PBS_PASSWORD=secret PBS_FINGERPRINT=$PBS_FP THAW_JAVA_OPTS="-Xlog:class+load:file=$T/$name-pbs-classes.txt" \
    expect_ok "$name-pbs" ls --repository "thaw@pbs!startup@127.0.0.1:$PBS_PORT:store1"
  grep -q "$S" "$T/$name-pbs.out" || fail "$name: ls over the PBS reader did not list $S"
  for c in dev.thaw.store.PbsClient io.netty.handler.ssl.OpenSsl io.netty.handler.codec.http.HttpClientCodec; do
    grep -q "$c source: shared objects file" "$T/$name-pbs-classes.txt" \
      || fail "$name: $c did not come from the start-up archive over the PBS reader"
  done
  pass "$name: ls over the PBS reader protocol takes Netty's classes from the archive"
  if [ "$FUSE" = 1 ]; then
    THAW_JAVA_OPTS="-Xlog:class+load:file=$T/$name-mount-classes.txt" mount_thaw "$name-used-mount" "$T/m-used" --store "$T/ds" "$S"
    tr '\0' ' ' <"/proc/$(mount_pid "$T/m-used")/cmdline" >"$T/$name-mount-cmdline"
    run_thaw "$name-used-unmount" unmount "$T/m-used"
    grep -q 'dev.thaw.fuse.ThawFuse source: shared objects file' "$T/$name-mount-classes.txt" \
      || fail "$name: a mount's classes did not come from a start-up archive"
    grep -q '/startup-mount-' "$T/$name-mount-cmdline" ||
      fail "$name: a mount did not map the mount's archive: $(cat "$T/$name-mount-cmdline")"
    pass "$name: a mount's classes come from the mount's archive"
  fi

  for training in "${trainings[@]}"; do
    archive=$(find "$XDG_CACHE_HOME/thaw" -name "startup-$training-*" ! -name '*.size' | head -n1)
    commands "$name-$training-good" "$training"
    cp "$archive" "$T/good"
    for damage in cut scribbled foreign deleted; do
      cp "$T/good" "$archive"
      case $damage in
        cut) truncate -s $(($(stat -c %s "$archive") / 2)) "$archive" ;;
        scribbled) dd if=/dev/urandom of="$archive" bs=64k count=4 seek=8 conv=notrunc status=none ;;
        foreign) # an archive of another JDK under this JDK's name, its size recorded as made
          other=""
          for o in "${jdks[@]}"; do [ "$o" != "$jdk" ] && other=$o; done
          [ -n "$other" ] || continue
          rm -rf "$T/other-cache"
          XDG_CACHE_HOME=$T/other-cache THAW_JAVA=$other THAW_STARTUP_CACHE=foreground "$THAW" --version >/dev/null 2>&1
          o=$(find "$T/other-cache/thaw" -name "startup-$training-*" ! -name '*.size' | head -n1)
          cp "$o" "$archive"
          stat -c %s "$archive" >"$archive.size" ;;
        deleted) rm -f "$archive" ;;
      esac
      THAW_STARTUP_CACHE=use commands "$name-$training-$damage" "$training"
      pass "$name: with the $training archive $damage, every command works and prints nothing extra"
    done
    cp "$T/good" "$archive"
    stat -c %s "$archive" >"$archive.size"
  done
done
