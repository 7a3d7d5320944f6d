#!/usr/bin/env bash
# Restoring from nginx over HTTPS (HTTP/2) with a private CA (--ca-file) and basic auth from a
# file; the same server's certificate without the CA is refused, and so is a wrong password.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../mount-lib.sh"
require_cmd openssl curl

cd "$T" || exit 1
make_image a.img 24
expect_ok backup backup --store "$T/ds" --id vm/300 a.img:a.img
snap=$(last_line "$T/backup.out")

# a test CA and a server certificate for 127.0.0.1, all inside $T
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=thaw test CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile san.ext 2>/dev/null
printf 'restore:%s\n' "$(openssl passwd -apr1 'r3store-pass')" >htpasswd

start_nginx "$T/ds" "
    location /secure/ {
      alias $T/ds/;
      auth_basic \"thaw\";
      auth_basic_user_file $T/htpasswd;
    }"
# nginx from lib.sh speaks plain HTTP; a second server block on another port speaks TLS
TLS_PORT=$(free_port)
sed -i "s|^http {|http {\n  server { listen 127.0.0.1:$TLS_PORT ssl http2; ssl_certificate $T/srv.pem; ssl_certificate_key $T/srv.key; root $T/ds; autoindex on; autoindex_format json; location /secure/ { alias $T/ds/; auth_basic \"thaw\"; auth_basic_user_file $T/htpasswd; } }|" "$NGINX_DIR/nginx.conf"
kill -HUP "$NGINX_PID"
for _ in $(seq 1 50); do curl -s -o /dev/null --cacert ca.pem "https://127.0.0.1:$TLS_PORT/" && break; sleep 0.1; done
URL=https://127.0.0.1:$TLS_PORT

expect_ok ls1 ls --store "$URL/" --ca-file ca.pem
grep -q "$snap" "$T/ls1.out" || fail "ls over HTTPS does not list $snap"
expect_ok r1 restore --progress none --store "$URL/" --ca-file ca.pem "$snap" a.img b.img
cmp a.img b.img || fail "HTTPS restore differs"
pass "restore over HTTPS with --ca-file equals the source"
grep -qE '"GET /\.chunks/[^"]* HTTP/2\.0"' "$NGINX_DIR/access.log" || { tail -n 5 "$NGINX_DIR/access.log"; fail "chunks were not fetched over HTTP/2"; }
pass "chunks were fetched over HTTP/2 (nginx offers h2 over TLS)"

expect_fail noca restore --progress none --store "$URL/" "$snap" a.img c.img
err_contains noca "TLS|certif" "the refusal names TLS/the certificate"
[ -e c.img ] && fail "a target was written although TLS failed"

echo "basic restore:r3store-pass" >auth.txt
expect_ok r2 restore --progress none --store "$URL/secure/" --ca-file ca.pem --auth-file auth.txt "$snap" a.img d.img
cmp a.img d.img || fail "authenticated restore differs"
pass "basic auth from --auth-file works over HTTPS"
export THAW_STORE_USER=restore THAW_STORE_PASSWORD=r3store-pass
expect_ok r3 restore --progress none --store "$URL/secure/" --ca-file ca.pem "$snap" a.img f.img
cmp a.img f.img || fail "restore with credentials from the environment differs"
pass "basic auth from THAW_STORE_USER/THAW_STORE_PASSWORD works"
export THAW_STORE_PASSWORD=wrong
expect_fail wrongpw restore --progress none --store "$URL/secure/" --ca-file ca.pem "$snap" a.img e.img
# "check the credentials" (not "give credentials"): the wrong ones were sent and refused
err_contains wrongpw "access denied.*check the credentials" "a wrong password is reported as access denied"
unset THAW_STORE_USER THAW_STORE_PASSWORD
expect_fail noauth restore --progress none --store "$URL/secure/" --ca-file ca.pem "$snap" a.img g.img
err_contains noauth "access denied.*--auth-file" "missing credentials say how to give them"
grep -q "wrong" "$T/wrongpw.err" && fail "the password appears in the error"
pass "a wrong password fails at once with 'access denied' and is not printed"

# --- mount over plain HTTP and over HTTPS with basic auth: the files equal the source
if [ -e /dev/fuse ] && command -v fusermount >/dev/null; then
  mount_thaw mh "$T/mnt-http" --store "http://127.0.0.1:$NGINX_PORT/" "$snap"
  cmp a.img "$T/mnt-http/a.img" || fail "the image mounted over HTTP differs"
  "$THAW" unmount "$T/mnt-http" >/dev/null 2>&1
  mount_thaw ms "$T/mnt-https" --store "$URL/secure/" --ca-file ca.pem --auth-file auth.txt "$snap"
  cmp a.img "$T/mnt-https/a.img" || fail "the image mounted over HTTPS differs"
  "$THAW" unmount "$T/mnt-https" >/dev/null 2>&1
  pass "mount over HTTP and over HTTPS (--ca-file, --auth-file) serves the source's bytes"
fi
