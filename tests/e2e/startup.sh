#!/usr/bin/env bash
# The start-up archive the launcher keeps per JDK and jar: it is made and then used (thaw's
# classes come from it, not from the jar), and a missing, cut-off, scribbled-over or foreign one
# (made by another JDK) changes nothing a user sees: every command still works and prints nothing
# it would not print anyway. On JDK 17 and, when installed, the newest JDK.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$T" || exit 1

export XDG_CACHE_HOME=$T/cache
head -c 6M /dev/urandom >a.img
expect_ok backup backup --store "$T/ds" --id vm/1 a.img
S=$(last_line "$T/backup.out")

jdks=()
for j in /usr/lib/jvm/java-17-openjdk-*/bin/java /usr/lib/jvm/temurin-2[5-9]-*/bin/java /usr/lib/jvm/*-2[5-9]-*/bin/java; do
  [ -x "$j" ] || continue
  case " ${jdks[*]} " in *" $(readlink -f "$j") "*) ;; *) jdks+=("$(readlink -f "$j")") ;; esac
done
[ ${#jdks[@]} -gt 0 ] || skip "no JDK 17 or 25+ under /usr/lib/jvm"

# quiet_run TAG ARGS...: thaw must succeed and print on stderr only what the command prints
# anyway (a restore's and a verify's summary)
quiet_run() {
  local tag=$1
  expect_ok "$@"
  if grep -vE '^(restored|verified) ' "$T/$tag.err" | grep -q .; then
    sed 's/^/    /' "$T/$tag.err" >&2
    fail "$tag: thaw printed something extra on stderr"
  fi
}

# commands TAG: the commands every case runs
commands() {
  quiet_run "$1-version" --version
  quiet_run "$1-ls" ls --store "$T/ds" "$S"
  quiet_run "$1-verify" verify --store "$T/ds" "$S"
  rm -f "$T/r.img"
  quiet_run "$1-restore" restore --progress none --store "$T/ds" "$S" a.img "$T/r.img"
  cmp a.img "$T/r.img" || fail "$1: restored image differs"
}

for jdk in "${jdks[@]}"; do
  export THAW_JAVA=$jdk
  name=$(basename "$(dirname "$(dirname "$jdk")")")
  echo "== $name"
  rm -rf "$XDG_CACHE_HOME"
  THAW_STARTUP_CACHE=foreground run_thaw "$name-make" --version
  archive=$(find "$XDG_CACHE_HOME/thaw" -name 'startup-*' ! -name '*.size' | head -n1)
  [ -s "$archive" ] || fail "$name: no start-up archive was made"
  pass "$name: start-up archive $(basename "$archive") made ($(du -k "$archive" | cut -f1) KiB)"
  THAW_JAVA_OPTS="-Xlog:class+load:file=$T/$name-classes.txt" run_thaw "$name-used" ls --store "$T/ds"
  grep -q 'dev.thaw.cli.Main source: shared objects file' "$T/$name-classes.txt" \
    || fail "$name: thaw's classes did not come from the start-up archive"
  grep -q 'picocli.CommandLine source: shared objects file' "$T/$name-classes.txt" \
    || fail "$name: picocli's classes did not come from the start-up archive"
  pass "$name: thaw's and picocli's classes come from the archive"
  commands "$name-good"
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
        o=$(find "$T/other-cache/thaw" -name 'startup-*' ! -name '*.size' | head -n1)
        cp "$o" "$archive"
        stat -c %s "$archive" >"$archive.size" ;;
      deleted) rm -f "$archive" ;;
    esac
    THAW_STARTUP_CACHE=use commands "$name-$damage"
    pass "$name: with the archive $damage, every command works and prints nothing extra"
  done
  cp "$T/good" "$archive"
  stat -c %s "$archive" >"$archive.size"
done
