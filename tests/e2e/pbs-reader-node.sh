#!/usr/bin/env bash
# pbs-reader.sh against a second, independent implementation of the PBS reader:
# tests/tools/pbs-reader-node/reader.mjs, written from the PBS sources on Node's own TLS
# (OpenSSL), HTTP/1.1 (llhttp) and HTTP/2 (nghttp2). thaw's client and the Java double both use
# Netty; this shows that thaw speaks the protocol as the sources define it, not as Netty reads it.
command -v node >/dev/null 2>&1 || { echo "SKIP: needs node"; exit 0; }
PBS_DOUBLE=node exec bash "$(dirname "${BASH_SOURCE[0]}")/pbs-reader.sh"
