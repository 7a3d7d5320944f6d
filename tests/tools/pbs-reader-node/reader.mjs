// A second, independent stand-in for a Proxmox Backup Server's API and reader protocol, written
// from the PBS 4.2 sources (src/api2/reader/mod.rs, src/api2/helpers.rs, src/api2/admin/datastore.rs;
// proxmox-rs proxmox-auth-api/src/api/mod.rs, proxmox-rest-server/src/rest.rs, h2service.rs,
// formatter.rs) on Node's own stacks: OpenSSL for TLS, llhttp for HTTP/1.1 and nghttp2 for HTTP/2.
// thaw's client and the Java double (dev.thaw.testing.PbsReaderDouble) both use Netty; running the
// same tests against this server shows that thaw speaks the protocol, not Netty's reading of it.
//
//   node reader.mjs --port N --datastore NAME=DIR... --tokens FILE [--auth-delay-ms N] [--cert-out PEM]
//                   [--drop-after-chunks N]
//
// The tokens file has one token per line: "AUTHID SECRET [PRIV,PRIV]" (privileges Datastore.Read
// and Datastore.Audit; both when left out; "-" for none; the secret percent-encoded). Prints
// "fingerprint FP" (the certificate's SHA-256, as PBS shows it) and then "listening on PORT".
// --drop-after-chunks N: once N chunks have been served, every reader session ends at once: a
// last GOAWAY and the connection closed, its open streams unanswered, as when a PBS is stopped.
// Binds 127.0.0.1 only. Runs on Node 18 (Debian 12) and later.
import { execFileSync } from 'node:child_process';
import { randomUUID, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http2 from 'node:http2';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

const PROTOCOL = 'proxmox-backup-reader-protocol-v1';
const JSON_TYPE = 'application/json;charset=UTF-8';
const SAFE_ID = '[A-Za-z0-9_][A-Za-z0-9._\\-]*';
const SAFE_ID_RE = new RegExp(`^${SAFE_ID}$`);
const NS_RE = new RegExp(`^(?:${SAFE_ID}/){0,7}${SAFE_ID}$`);
const AUTH_ID_RE = new RegExp(`^[^\\s:/\\p{Cc}]+@${SAFE_ID}(?:!${SAFE_ID})?$`, 'u');
const DIGEST_RE = /^[0-9a-fA-F]{64}$/;
const TIME_DIR_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const TYPES = ['vm', 'ct', 'host'];
// DataBlob magic numbers (pbs-datastore/src/file_formats.rs)
const UNCOMPRESSED_BLOB = Buffer.from([66, 171, 56, 7, 190, 131, 112, 161]);
const COMPRESSED_BLOB = Buffer.from([49, 185, 88, 66, 111, 182, 163, 127]);

// ---- arguments ----
let port = 0;
let authDelayMs = 3000;
let certOut = null;
let dropAfterChunks = -1;
const datastores = new Map();
const tokens = new Map();
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--port') port = Number(argv[++i]);
  else if (a === '--auth-delay-ms') authDelayMs = Number(argv[++i]);
  else if (a === '--cert-out') certOut = argv[++i];
  else if (a === '--drop-after-chunks') dropAfterChunks = Number(argv[++i]);
  else if (a === '--datastore') {
    const [name, dir] = splitOnce(argv[++i], '=');
    datastores.set(name, path.resolve(dir));
  } else if (a === '--tokens') {
    for (const line of fs.readFileSync(argv[++i], 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 2 || line.trim().startsWith('#')) continue;
      const privs = f.length < 3 ? ['Datastore.Read', 'Datastore.Audit'] : f[2] === '-' ? [] : f[2].split(',');
      tokens.set(f[0], { secret: percentDecode(f[1]), privs: new Set(privs) });
    }
  } else {
    console.error(`unknown argument ${a}`);
    process.exit(2);
  }
}

function splitOnce(s, sep) {
  const i = s.indexOf(sep);
  return i < 0 ? [s, null] : [s.slice(0, i), s.slice(i + sep.length)];
}

// percent-decoding as the percent-encoding crate does it ('+' stays '+'); the result must be UTF-8
function percentDecode(s) {
  const input = Buffer.from(s, 'utf8');
  const out = [];
  for (let i = 0; i < input.length; i++) {
    const h = (b) => (b >= 48 && b <= 57 ? b - 48 : b >= 65 && b <= 70 ? b - 55 : b >= 97 && b <= 102 ? b - 87 : -1);
    if (input[i] === 37 && i + 2 < input.length && h(input[i + 1]) >= 0 && h(input[i + 2]) >= 0) {
      out.push(h(input[i + 1]) * 16 + h(input[i + 2]));
      i += 2;
    } else {
      out.push(input[i]);
    }
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(out));
}

// ---- a self-signed certificate made as PBS makes its own (src/config/mod.rs
// update_self_signed_cert): RSA 4096, 1000 years, not a CA, for server authentication, for the
// loopback addresses and localhost. (The Java double's is an EC key: thaw meets both kinds.)
const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pbs-reader-node-'));
fs.writeFileSync(path.join(certDir, 'req.cnf'), [
  '[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no',
  '[dn]', 'O = Proxmox Backup Server', `OU = ${randomUUID().replaceAll('-', '').toUpperCase()}`, 'CN = localhost',
  '[ext]', 'basicConstraints = CA:FALSE', 'extendedKeyUsage = serverAuth',
  'subjectAltName = IP:127.0.0.1,IP:::1,DNS:localhost',
  'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid', ''].join('\n'));
try {
  execFileSync('openssl', ['req', '-x509', '-config', path.join(certDir, 'req.cnf'), '-newkey', 'rsa:4096',
    '-nodes', '-days', '365000', '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem')],
  { stdio: 'ignore' });
} catch (e) {
  console.error(`openssl could not make a certificate: ${e.message}`);
  fs.rmSync(certDir, { recursive: true, force: true });
  process.exit(1);
}
const key = fs.readFileSync(path.join(certDir, 'key.pem'));
const cert = fs.readFileSync(path.join(certDir, 'cert.pem'));
fs.rmSync(certDir, { recursive: true, force: true });
if (certOut) fs.writeFileSync(certOut, cert);
const fingerprint = new X509Certificate(cert).fingerprint256.toLowerCase();

// ---- authentication (proxmox-auth-api extract_auth_data, check_auth) ----

/** How long a 401 still waits: PBS answers one no sooner than the delay after its request came. */
const authWait = (started) => Math.max(0, started + authDelayMs - Date.now());

function authenticate(headers) {
  for (const cookie of [headers.cookie ?? []].flat()) {
    for (const pair of cookie.split(';')) {
      const name = pair.includes('=') ? pair.slice(0, pair.indexOf('=')).trim() : '';
      if (name === '__Host-PBSAuthCookie' || name === 'PBSAuthCookie') {
        return null; // a ticket is used instead of a token; this server issues none
      }
    }
  }
  const h = headers.authorization;
  const prefix = 'PBSAPIToken';
  if (typeof h !== 'string' || !h.startsWith(prefix) || (h[prefix.length] !== ' ' && h[prefix.length] !== '=')) {
    return null;
  }
  const [id, rawSecret] = splitOnce(h.slice(prefix.length + 1), ':');
  if (rawSecret === null || !AUTH_ID_RE.test(id) || !id.includes('!') || !tokens.has(id)) return null;
  let secret;
  try {
    secret = percentDecode(rawSecret);
  } catch {
    return null;
  }
  return tokens.get(id).secret === secret ? id : null;
}

// ---- the HTTP/1.1 API ----
const aclPath = (store, ns) => `/datastore/${store}${ns ? `/${ns}` : ''}`;
const nsDir = (root, ns) => (ns ? ns.split('/').reduce((d, part) => path.join(d, 'ns', part), root) : root);

/** Answers one API request: {status, text, type} or, for a granted reader, {upgrade: session}. */
async function api(method, url, headers, upgrading) {
  const p = url.searchParams;
  const reader = url.pathname === '/api2/json/reader';
  const listing = /^\/api2\/json\/admin\/datastore\/[^/]+\/snapshots$/.test(url.pathname);
  if (method !== 'GET' || (!reader && !listing)) {
    return { status: 404, text: `Path '${url.pathname}' not found.`, type: JSON_TYPE };
  }
  const authId = authenticate(headers);
  if (authId === null) return { status: 401, text: 'authentication failed', type: null, delayed: true };
  const privs = tokens.get(authId).privs;
  const ns = p.get('ns') || null;
  if (listing) {
    const store = decodeURIComponent(url.pathname.split('/')[5]);
    if (!SAFE_ID_RE.test(store) || (ns && !NS_RE.test(ns))) {
      return { status: 400, text: 'parameter verification failed', type: null };
    }
    if (!privs.has('Datastore.Audit')) {
      return { status: 403, text: `permission check failed - missing Datastore.Audit|Datastore.Backup on ${aclPath(store, ns)}`, type: JSON_TYPE };
    }
    const root = datastores.get(store);
    if (!root) return { status: 400, text: `no such datastore '${store}'`, type: JSON_TYPE };
    const data = await snapshots(root, ns, p.get('backup-type'), p.get('backup-id'));
    return { status: 200, text: JSON.stringify({ data }), type: JSON_TYPE };
  }
  // the reader: parameters against their schemas, then the handler's checks in its order
  const store = p.get('store');
  const type = p.get('backup-type');
  const id = p.get('backup-id');
  const time = p.get('backup-time');
  const debug = p.get('debug');
  if (!store || !SAFE_ID_RE.test(store) || store.length < 3 || store.length > 32
      || (ns && !NS_RE.test(ns)) || !TYPES.includes(type) || !id || !SAFE_ID_RE.test(id)
      || !/^[0-9]+$/.test(time ?? '') || Number(time) < 1
      || (debug !== null && !['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'].includes(debug))) {
    return { status: 400, text: 'parameter verification failed', type: null };
  }
  if (!privs.has('Datastore.Read')) {
    return { status: 400, text: `no permissions on ${aclPath(store, ns)}`, type: JSON_TYPE };
  }
  const root = datastores.get(store);
  if (!root) return { status: 400, text: `no such datastore '${store}'`, type: JSON_TYPE };
  const upgrade = headers.upgrade;
  if (upgrade === undefined) return { status: 400, text: 'missing Upgrade header', type: JSON_TYPE };
  if (upgrade !== PROTOCOL) return { status: 400, text: 'invalid protocol name', type: JSON_TYPE };
  if (!upgrading) return { status: 400, text: 'protocol upgrade failed', type: JSON_TYPE };
  const dir = new Date(Number(time) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const snapshot = path.join(nsDir(root, ns), type, id, dir);
  if (!fs.existsSync(snapshot)) {
    return { status: 400, text: `snapshot ${type}/${id}/${dir} does not exist.`, type: JSON_TYPE };
  }
  return { upgrade: { root, snapshot, allowed: new Set() } };
}

async function entries(dir, directories) {
  try {
    const list = await fsp.readdir(dir, { withFileTypes: true });
    return list.filter((e) => e.isDirectory() === directories).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

/** The snapshot list as PBS's list_snapshots gives it: groups without an owner left out, unsorted. */
async function snapshots(root, ns, onlyType, onlyId) {
  const data = [];
  const base = nsDir(root, ns);
  for (const type of TYPES) {
    if (onlyType && onlyType !== type) continue;
    for (const id of await entries(path.join(base, type), true)) {
      const group = path.join(base, type, id);
      if ((onlyId && onlyId !== id) || !fs.existsSync(path.join(group, 'owner'))) continue;
      const owner = fs.readFileSync(path.join(group, 'owner'), 'utf8').trim();
      for (const t of await entries(group, true)) {
        if (!TIME_DIR_RE.test(t)) continue;
        const snap = { 'backup-type': type, 'backup-id': id, 'backup-time': Date.parse(t) / 1000 };
        snap.files = await snapshotFiles(path.join(group, t));
        snap.size = snap.files.reduce((n, f) => n + (f.size ?? 0), 0);
        snap.owner = owner;
        snap.protected = false;
        data.push(snap);
      }
    }
  }
  // PBS returns them in no particular order: shuffle, so that a client cannot rely on one
  for (let i = data.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [data[i], data[j]] = [data[j], data[i]];
  }
  return data;
}

/**
 * Files from the manifest plus the manifest itself; the directory's files when it cannot be read
 * (a backup in progress has none yet), the error logged as PBS logs it.
 */
async function snapshotFiles(dir) {
  const manifestPath = path.join(dir, 'index.json.blob');
  try {
    const blob = await fsp.readFile(manifestPath);
    let json;
    if (blob.subarray(0, 8).equals(UNCOMPRESSED_BLOB)) json = blob.subarray(12);
    else if (blob.subarray(0, 8).equals(COMPRESSED_BLOB)) json = execFileSync('zstd', ['-dcq'], { input: blob.subarray(12) });
    else throw new Error('not a plain blob');
    const manifest = JSON.parse(json.toString('utf8'));
    const files = manifest.files.map((f) => ({ filename: f.filename, 'crypt-mode': f['crypt-mode'] ?? 'none', size: f.size }));
    const signed = manifest.signature !== undefined && manifest.signature !== null;
    files.push({ filename: 'index.json.blob', 'crypt-mode': signed ? 'sign-only' : 'none', size: blob.length });
    return files;
  } catch (e) {
    if (fs.existsSync(manifestPath)) console.error(`error during snapshot file listing: '${e.message}'`);
    return (await entries(dir, false)).map((filename) => ({ filename }));
  }
}

// ---- the reader session: HTTP/2 on the upgraded connection ----
function h2error(stream, status, text, type) {
  if (stream.destroyed || stream.closed) return;
  const headers = { ':status': status };
  if (type) headers['content-type'] = type;
  stream.respond(headers);
  stream.end(text);
}

async function onStream(session, stream, headers, started) {
  const url = new URL(headers[':path'] ?? '/', 'https://reader');
  const components = [];
  for (const c of url.pathname.split('/')) {
    if (c.startsWith('.')) return h2error(stream, 400, 'illegal path component', null);
    if (c) components.push(c);
  }
  const route = components.length === 1 && headers[':method'] === 'GET' ? components[0] : null;
  if (route === 'download') return download(session, stream, url.searchParams.get('file-name'));
  if (route === 'chunk') return chunk(session, stream, url.searchParams.get('digest'), started);
  return h2error(stream, 404, `Path '/${components.join('/')}' not found.`, JSON_TYPE);
}

async function download(session, stream, name) {
  if (!name || !SAFE_ID_RE.test(name)) {
    return h2error(stream, 400, "parameter verification failed - 'file-name': value does not match the regex pattern", null);
  }
  const ext = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1) : '';
  if (!['fidx', 'didx', 'blob'].includes(ext)) {
    return h2error(stream, 400, `unknown archive type: "${name}"`, JSON_TYPE);
  }
  const file = path.join(session.snapshot, name);
  let data;
  try {
    data = await fsp.readFile(file);
  } catch (e) {
    if (ext === 'blob') {
      return h2error(stream, e.code === 'ENOENT' ? 404 : 400, `open file "${file}" failed${e.code === 'ENOENT' ? ' - not found' : `: ${e.message}`}`, JSON_TYPE);
    }
    return h2error(stream, 400, `Unable to open ${ext === 'fidx' ? 'fixed' : 'dynamic'} index "${file}" - ${e.message}`, JSON_TYPE);
  }
  if (ext !== 'blob') {
    const entry = ext === 'fidx' ? 32 : 40;
    const off = ext === 'fidx' ? 0 : 8;
    if (data.length < 4096 || (data.length - 4096) % entry !== 0) {
      return h2error(stream, 400, `Unable to open index "${file}" - wrong size`, JSON_TYPE);
    }
    for (let i = 4096; i < data.length; i += entry) {
      session.allowed.add(data.toString('hex', i + off, i + off + 32)); // register_chunk
    }
  }
  if (stream.destroyed) return;
  // a streamed file body: no content-length
  stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
  stream.end(data);
}

async function chunk(session, stream, digest, started) {
  if (!digest || !DIGEST_RE.test(digest)) {
    return h2error(stream, 400, "parameter verification failed - 'digest': value does not match the regex pattern", null);
  }
  const hex = digest.toLowerCase();
  if (!session.allowed.has(hex)) {
    // an HTTP 401 from a handler waits too (rest.rs)
    setTimeout(() => h2error(stream, 401, `download chunk ${digest} not allowed`, JSON_TYPE), authWait(started));
    return;
  }
  const file = path.join(session.root, '.chunks', hex.slice(0, 4), hex);
  if (++chunksServed === dropAfterChunks) setImmediate(dropConnections);
  // the whole chunk read, then sent as one body of known length, as PBS does (hyper then sends
  // content-length)
  let data;
  try {
    data = await fsp.readFile(file);
  } catch (e) {
    return h2error(stream, 400, `reading file "${file}" failed: ${e.message}`, JSON_TYPE);
  }
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': data.length });
  stream.end(data);
}

let chunksServed = 0;
const readerSessions = new Set();

/** Ends every reader session at once: a last GOAWAY, then the close; open streams go unanswered. */
function dropConnections() {
  // (destroying or resetting the socket under a session crashes Node 20, and so did destroying
  // the session while respondWithFile streamed a file: bodies are sent from buffers)
  for (const h2 of readerSessions) h2.destroy();
  readerSessions.clear();
}

const SESSION_SETTINGS = {
  // hyper's server as PBS configures it: 32 MiB windows, 4 MiB frames, 200 streams
  settings: { maxConcurrentStreams: 200, initialWindowSize: 32 << 20, maxFrameSize: 4 << 20 },
  maxSessionMemory: 512,
};

function startSession(socket, head, session) {
  if (head && head.length) socket.unshift(head);
  const serve = (h2) => {
    readerSessions.add(h2);
    h2.on('close', () => readerSessions.delete(h2));
    h2.on('localSettings', () => h2.setLocalWindowSize(32 << 20));
    h2.on('stream', (stream, headers) => {
      const started = Date.now();
      stream.on('error', () => {});
      onStream(session, stream, headers, started).catch((e) => h2error(stream, 400, String(e.message), null));
    });
    h2.on('error', () => {}); // Node destroys the session and its socket itself
  };
  if (http2.performServerHandshake) {
    serve(http2.performServerHandshake(socket, SESSION_SETTINGS));
  } else {
    // Node before 20.12: an HTTP/2 server handed the connection, which it takes only from a TLS
    // socket that negotiated h2 by ALPN (PBS offers no ALPN: the upgrade stands for it)
    socket.alpnProtocol = 'h2';
    const server = http2.createServer(SESSION_SETTINGS);
    server.on('session', serve);
    server.emit('connection', socket);
  }
}

function rawResponse(socket, status, text, type) {
  const body = Buffer.from(text, 'utf8');
  const reason = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' }[status] ?? 'Error';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\n${type ? `content-type: ${type}\r\n` : ''}content-length: ${body.length}\r\nconnection: close\r\n\r\n${text}`);
}

// TLS as PBS's proxy sets it up (proxmox-rest-server connection.rs: rust-openssl's
// mozilla_intermediate_v5): TLS 1.2 and 1.3, these suites, and the client's preference among them
// (Node's own default is the server's)
const server = https.createServer({
  key,
  cert,
  minVersion: 'TLSv1.2',
  ciphers: ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
    'DHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES256-GCM-SHA384'].join(':'),
  honorCipherOrder: false,
});
/** The API's answer to req; a handler's failure is a 400 with its message, as PBS's. */
const answer = (req, upgrading) => api(req.method, new URL(req.url, 'https://pbs'), req.headers, upgrading)
  .catch((e) => ({ status: 400, text: String(e.message), type: JSON_TYPE }));

server.on('request', (req, res) => {
  const started = Date.now();
  answer(req, false)
    .then((r) => setTimeout(() => {
      res.writeHead(r.status, r.type ? { 'content-type': r.type } : {});
      res.end(r.text);
    }, r.delayed ? authWait(started) : 0));
});
server.on('upgrade', (req, socket, head) => {
  const started = Date.now();
  socket.on('error', () => {});
  answer(req, true)
    .then((r) => {
      if (r.upgrade) {
        // nghttp2 takes the socket over only once the 101 has been written out
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${PROTOCOL}\r\n\r\n`,
          () => startSession(socket, head, r.upgrade));
      } else {
        setTimeout(() => rawResponse(socket, r.status, r.text, r.type), r.delayed ? authWait(started) : 0);
      }
    });
});
server.listen(port, '127.0.0.1', () => {
  console.log(`fingerprint ${fingerprint}`);
  console.log(`listening on ${server.address().port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
