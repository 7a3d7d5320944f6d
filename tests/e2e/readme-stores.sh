#!/usr/bin/env bash
# The README's store sections run as written, with only host names, ports, paths and keys
# replaced: its nginx configuration (HTTPS, HTTP/2, basic auth, JSON index, read-only) served by
# nginx, its HTTPS restore commands against that server, and its S3 commands against s3proxy.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
require_cmd openssl curl java nginx
cd "$T" || exit 1
mkdir -p t
make_image t/a.img 24
# the README's commands use mount-scripts/thaw relative to the checkout and /tmp/t for files
ln -s "$THAW_REPO/mount-scripts" mount-scripts
expect_ok b backup --store "$T/ds" --id vm/100 t/a.img
S=$(last_line "$T/b.out")

# --- the nginx block, with a test CA and a password file made here
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=thaw test CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile san.ext 2>/dev/null
PW=pw-$RANDOM$RANDOM
printf 'restore:%s\n' "$(openssl passwd -apr1 "$PW")" >htpasswd
PORT=$(free_port)
readme_block readme-nginx >readme-nginx.conf
[ -s readme-nginx.conf ] || fail "no nginx block in the README"
mkdir -p nginx/tmp
{
  [ "$(id -u)" = 0 ] && echo "user root;"
  cat <<CONF
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 256; }
http {
  access_log $T/nginx/access.log;
  client_body_temp_path $T/nginx/tmp/body;
  proxy_temp_path $T/nginx/tmp/proxy;
  fastcgi_temp_path $T/nginx/tmp/fastcgi;
  uwsgi_temp_path $T/nginx/tmp/uwsgi;
  scgi_temp_path $T/nginx/tmp/scgi;
CONF
  sed -e "s|listen 8443 |listen 127.0.0.1:$PORT |" -e "s|/etc/nginx/tls/backup.pem|$T/srv.pem|" \
    -e "s|/etc/nginx/tls/backup.key|$T/srv.key|" -e "s|/srv/ds/|$T/ds/|" \
    -e "s|/etc/nginx/backup.htpasswd|$T/htpasswd|" readme-nginx.conf
  echo "}"
} >nginx/nginx.conf
nginx -p "$T/nginx" -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf" >nginx/stdout.log 2>&1 &
NPID=$!
defer kill_wait "$NPID"
for _ in $(seq 1 100); do
  curl -s -o /dev/null --cacert ca.pem "https://127.0.0.1:$PORT/" && break
  alive "$NPID" || { cat nginx/error.log nginx/stdout.log >&2; fail "nginx rejected the README's configuration"; }
  sleep 0.1
done
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.pem -u "restore:$PW" -X PUT "https://127.0.0.1:$PORT/ds/x")
[ "$code" = 403 ] || [ "$code" = 405 ] || fail "the README's configuration accepts PUT (HTTP $code)"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.pem "https://127.0.0.1:$PORT/ds/")
[ "$code" = 401 ] || fail "the README's configuration serves without a password (HTTP $code)"
proto=$(curl -s -o /dev/null -w '%{http_version}' --http2 --cacert ca.pem -u "restore:$PW" "https://127.0.0.1:$PORT/ds/")
[ "$proto" = 2 ] || fail "the README's configuration does not speak HTTP/2 (got $proto)"
pass "the README's nginx configuration: HTTPS + HTTP/2, basic auth, read-only"

# --- the HTTPS commands
readme_block readme-https | sed -e "s|https://backup.example:8443|https://127.0.0.1:$PORT|g" \
  -e "s|/root/backup-ca.pem|$T/ca.pem|g" -e "s|/root/thaw-store.auth|$T/store.auth|g" \
  -e "s|SECRET|$PW|" -e "s|/tmp/t/|$T/t/|g" >readme-https.sh
grep -q "thaw restore" readme-https.sh || fail "no HTTPS commands in the README"
S=$S timeout 120 bash -euo pipefail readme-https.sh >https.out 2>https.err || { cat https.err >&2; fail "the README's HTTPS commands failed"; }
grep -q "$S" https.out || fail "the README's thaw ls did not list $S"
cmp t/a.img t/e.img || fail "the README's HTTPS restore differs"
pass "the README's HTTPS restore commands work as written"

# --- the S3 commands against s3proxy
start_s3proxy
readme_block readme-s3 | sed -e "s|AWS_ACCESS_KEY_ID=[^ ]*|AWS_ACCESS_KEY_ID=$AK|" \
  -e "s|AWS_SECRET_ACCESS_KEY=[^ ]*|AWS_SECRET_ACCESS_KEY=$SK|" \
  -e "s|^E=https://s3.example.net|E=$S3_ENDPOINT|" -e "s|/tmp/t/|$T/t/|g" >readme-s3.sh
grep -q "s3://" readme-s3.sh || fail "no S3 commands in the README"
timeout 120 bash -euo pipefail readme-s3.sh >s3.out 2>s3.err || { cat s3.err >&2; fail "the README's S3 commands failed"; }
grep -q "^vm/100/" s3.out || fail "the README's thaw ls listed no snapshot"
cmp t/a.img t/s3.img || fail "the README's S3 restore differs"
pass "the README's S3 commands work as written (backup, ls, restore)"
