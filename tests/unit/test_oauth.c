/*
 * Unit tests for auth/oauth on a real loop, and the auth/jwks cache: OK and
 * INVALID answers (with reasons) for tokens minted here against a JWKS
 * file, answers never inline, TEMPFAIL when the JWKS URL or the
 * introspection endpoint is unreachable, the pool's queue full, reload
 * (SIGHUP) with a good and a bad file, free with requests pending, and the
 * cache's refresh rules (unknown kid rate limit, periodic refresh).
 *
 * The HTTPS part runs a small Python TLS server (tests/unit/data is not
 * needed: the server script and its certificate are made here) serving a
 * JWKS with Cache-Control and an RFC 7662 introspection endpoint; it is
 * skipped when python3 or openssl is missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "auth/jwks.h"
#include "auth/oauth.h"
#include "conf/conf.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "net/loop.h"

#define ISS "https://issuer.example.test"
#define AUD "smtpgate"
#define USER "alice@example.test"
#define MAXREQ 512

struct fixture {
	char dir[64];
	char jwks_path[128];
	struct loop *loop;
	struct oauth *o;
	size_t expected, answered;
	enum oauth_result result[MAXREQ];
	const char *reason[MAXREQ];
	bool inline_answer;
	bool in_request;
};

static EVP_PKEY *key_a, *key_b; /* Ed25519: fast to make and to verify */

static void
done_cb(void *ctx, uint64_t session_id, enum oauth_result result, const char *reason)
{
	struct fixture *f = ctx;

	if (f->in_request)
		f->inline_answer = true;
	assert_true(session_id < MAXREQ);
	assert_non_null(reason);
	f->result[session_id] = result;
	f->reason[session_id] = reason;
	if (++f->answered == f->expected)
		loop_stop(f->loop);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;

	loop_stop(f->loop);
}

static void
run_until(struct fixture *f, size_t expected)
{
	struct timeval tv = {60, 0};

	f->expected = expected;
	if (f->answered < expected) {
		assert_int_equal(
		    event_base_once(loop_base(f->loop), -1, EV_TIMEOUT, timeout_cb, f, &tv), 0);
		loop_run(f->loop);
	}
	assert_int_equal(f->answered, expected);
	assert_false(f->inline_answer);
}

static void
request(struct fixture *f, uint64_t sid, const char *user, const char *tok)
{
	f->in_request = true;
	oauth_verify(
	    f->o, loop_mailbox(f->loop), sid, user, strlen(user), tok, strlen(tok), done_cb, f);
	f->in_request = false;
}

static char *
b64url_str(const void *p, size_t n)
{
	struct buf b;
	char *s;

	buf_init(&b, 1 << 16);
	assert_int_equal(base64url_encode(p, n, &b), 0);
	s = buf_strdup(&b);
	buf_free(&b);
	return s;
}

/* {"keys":[...]} with the given Ed25519 keys and kids */
static char *
jwks_text(EVP_PKEY *a, const char *kida, EVP_PKEY *b, const char *kidb)
{
	json_t *arr = json_array(), *doc;
	EVP_PKEY *k[2] = {a, b};
	const char *kid[2] = {kida, kidb};
	char *s;

	for (int i = 0; i < 2; i++) {
		unsigned char raw[32];
		size_t rawlen = sizeof(raw);
		char *x;

		if (k[i] == NULL)
			continue;
		assert_int_equal(EVP_PKEY_get_raw_public_key(k[i], raw, &rawlen), 1);
		x = b64url_str(raw, rawlen);
		json_array_append_new(arr,
		    json_pack("{s:s, s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x", x, "kid",
		        kid[i]));
		free(x);
	}
	doc = json_pack("{s:o}", "keys", arr);
	s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return s;
}

static void
write_file(const char *path, const char *text)
{
	assert_int_equal(fs_write_atomic(path, text, strlen(text), 0644), 0);
}

/* An EdDSA token signed by k with kid, exp = now + exp_delta. */
static char *
mint(EVP_PKEY *k, const char *kid, const char *email, long exp_delta)
{
	char hdr[128], pl[512], *h, *p, *s, *tok;
	unsigned char sig[64];
	size_t siglen = sizeof(sig), n;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct buf b;

	snprintf(hdr, sizeof(hdr), "{\"alg\":\"EdDSA\",\"kid\":\"%s\"}", kid);
	snprintf(pl, sizeof(pl),
	    "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%ld,\"email\":\"%s\"}",
	    (long)time(NULL) + exp_delta, email);
	h = b64url_str(hdr, strlen(hdr));
	p = b64url_str(pl, strlen(pl));
	buf_init(&b, 1 << 16);
	assert_int_equal(buf_printf(&b, "%s.%s", h, p), 0);
	assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)b.data, b.len), 1);
	s = b64url_str(sig, siglen);
	n = b.len;
	assert_int_equal(buf_printf(&b, ".%s", s), 0);
	assert_true(b.len > n);
	tok = buf_strdup(&b);
	buf_free(&b);
	free(h);
	free(p);
	free(s);
	EVP_MD_CTX_free(md);
	return tok;
}

static struct fixture *
fixture_new(void)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *t;

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_oauth.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->jwks_path, sizeof(f->jwks_path), "%s/jwks.json", f->dir);
	t = jwks_text(key_a, "a", NULL, NULL);
	write_file(f->jwks_path, t);
	free(t);
	loop_global_init();
	f->loop = loop_new();
	return f;
}

static struct oauth *
open_params(struct fixture *f, const struct oauth_params *p)
{
	char err[512];

	f->o = oauth_open_params(p, err, sizeof(err));
	if (f->o == NULL)
		fail_msg("oauth_open_params: %s", err);
	return f->o;
}

static struct oauth *
open_file(struct fixture *f, int workers, int queue)
{
	struct oauth_params p = {
	    .jwks = f->jwks_path,
	    .issuer = ISS,
	    .audience = AUD,
	    .workers = workers,
	    .queue = queue,
	};

	return open_params(f, &p);
}

static void
fixture_free(struct fixture *f)
{
	char cmd[128];

	oauth_free(f->o);
	if (f->answered < f->expected)
		run_until(f, f->expected);
	loop_free(f->loop);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
}

static int
setup(void **state)
{
	key_a = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	key_b = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(key_a);
	assert_non_null(key_b);
	return 0;
}

static int
teardown(void **state)
{
	EVP_PKEY_free(key_a);
	EVP_PKEY_free(key_b);
	return 0;
}

static void
test_ok_and_invalid(void **state)
{
	struct fixture *f = fixture_new();
	char *good = mint(key_a, "a", USER, 300);
	char *expired = mint(key_a, "a", USER, -3600);
	char *other = mint(key_b, "a", USER, 300); /* right kid, wrong key */
	char *rotated = mint(key_b, "b", USER, 300); /* a kid not in the file */

	open_file(f, 2, 16);
	request(f, 0, USER, good);
	request(f, 1, "bob@example.test", good);
	request(f, 2, USER, expired);
	request(f, 3, USER, other);
	request(f, 4, USER, rotated);
	request(f, 5, USER, "opaque-token-123");
	f->in_request = true;
	oauth_verify(f->o, loop_mailbox(f->loop), 6, "", 0, good, strlen(good), done_cb, f);
	f->in_request = false;
	run_until(f, 7);
	assert_int_equal(f->result[0], OAUTH_OK);
	assert_string_equal(f->reason[0], "ok");
	assert_int_equal(f->result[1], OAUTH_INVALID);
	assert_string_equal(f->reason[1], "user claim does not match");
	assert_int_equal(f->result[2], OAUTH_INVALID);
	assert_string_equal(f->reason[2], "expired");
	assert_int_equal(f->result[3], OAUTH_INVALID);
	assert_string_equal(f->reason[3], "bad signature");
	/* the file was read at open: a refetch for the unknown kid waits
	 * JWKS_UNKNOWN_KID_INTERVAL */
	assert_int_equal(f->result[4], OAUTH_INVALID);
	assert_string_equal(f->reason[4], "unknown kid");
	assert_int_equal(f->result[5], OAUTH_INVALID);
	assert_string_equal(f->reason[5], "not a JWT and no introspection");
	assert_int_equal(f->result[6], OAUTH_INVALID);
	assert_string_equal(f->reason[6], "no user");
	free(good);
	free(expired);
	free(other);
	free(rotated);
	fixture_free(f);
}

static void
test_reload(void **state)
{
	struct fixture *f = fixture_new();
	char *tb = mint(key_b, "b", USER, 300), *ta = mint(key_a, "a", USER, 300), *t;
	char err[512];

	open_file(f, 1, 16);
	request(f, 0, USER, tb);
	run_until(f, 1);
	assert_int_equal(f->result[0], OAUTH_INVALID);
	/* key rotation: the file now has both keys; SIGHUP */
	t = jwks_text(key_a, "a", key_b, "b");
	write_file(f->jwks_path, t);
	free(t);
	assert_int_equal(oauth_reload(f->o, err, sizeof(err)), 0);
	request(f, 1, USER, tb);
	request(f, 2, USER, ta);
	run_until(f, 3);
	assert_int_equal(f->result[1], OAUTH_OK);
	assert_int_equal(f->result[2], OAUTH_OK);
	/* a broken file: reload fails, the old keys stay */
	write_file(f->jwks_path, "{\"keys\":[");
	assert_int_equal(oauth_reload(f->o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "JSON"));
	request(f, 3, USER, tb);
	run_until(f, 4);
	assert_int_equal(f->result[3], OAUTH_OK);
	free(ta);
	free(tb);
	fixture_free(f);
}

static void
test_open_errors(void **state)
{
	struct fixture *f = fixture_new();
	struct oauth_params p = {.jwks = f->jwks_path, .issuer = ISS, .audience = AUD};
	struct conf c;
	char err[512], path[160];

	/* no [oauth] section: NULL with an empty message */
	memset(&c, 0, sizeof(c));
	assert_false(oauth_is_configured(&c));
	err[0] = 'x';
	assert_null(oauth_open(&c, err, sizeof(err)));
	assert_string_equal(err, "");
	/* a configured one */
	c.oauth_jwks = f->jwks_path;
	c.oauth_issuer = ISS;
	c.oauth_audience = AUD;
	c.oauth_user_claim = "email";
	assert_true(oauth_is_configured(&c));
	f->o = oauth_open(&c, err, sizeof(err));
	assert_non_null(f->o);
	assert_string_equal(oauth_openid_configuration(f->o),
	    "https://issuer.example.test/.well-known/openid-configuration");
	oauth_free(f->o);
	f->o = NULL;
	/* missing or invalid JWKS file */
	snprintf(path, sizeof(path), "%s/missing.json", f->dir);
	p.jwks = path;
	assert_null(oauth_open_params(&p, err, sizeof(err)));
	assert_non_null(strstr(err, "missing.json"));
	write_file(path, "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}");
	assert_null(oauth_open_params(&p, err, sizeof(err)));
	assert_non_null(strstr(err, "no usable key"));
	/* missing issuer */
	p.jwks = f->jwks_path;
	p.issuer = NULL;
	assert_null(oauth_open_params(&p, err, sizeof(err)));
	/* introspection over http */
	p.issuer = "urn:not-a-url";
	p.introspection = "http://127.0.0.1/";
	assert_null(oauth_open_params(&p, err, sizeof(err)));
	/* an issuer that is not a URL has no openid-configuration */
	p.introspection = NULL;
	open_params(f, &p);
	assert_null(oauth_openid_configuration(f->o));
	fixture_free(f);
}

static void
test_tempfail_unreachable(void **state)
{
	struct fixture *f = fixture_new();
	struct oauth_params p = {
	    .jwks = "https://127.0.0.1:1/jwks.json",
	    .issuer = ISS,
	    .audience = AUD,
	    .introspection = "https://127.0.0.1:1/introspect",
	    .workers = 2,
	};
	char *good = mint(key_a, "a", USER, 300);

	open_params(f, &p);
	request(f, 0, USER, good);
	request(f, 1, USER, "opaque-token");
	run_until(f, 2);
	assert_int_equal(f->result[0], OAUTH_TEMPFAIL);
	assert_string_equal(f->reason[0], "jwks unavailable");
	assert_int_equal(f->result[1], OAUTH_TEMPFAIL);
	assert_string_equal(f->reason[1], "introspection unavailable");
	free(good);
	fixture_free(f);
}

static void
test_queue_full_and_free_pending(void **state)
{
	struct fixture *f = fixture_new();
	char *good = mint(key_a, "a", USER, 300);
	size_t busy = 0, ok = 0, down = 0;

	open_file(f, 1, 1);
	for (uint64_t i = 0; i < 300; i++)
		request(f, i, USER, good);
	/* free at once: what is still queued is answered TEMPFAIL */
	oauth_free(f->o);
	f->o = NULL;
	run_until(f, 300);
	for (size_t i = 0; i < 300; i++) {
		if (f->result[i] == OAUTH_OK)
			ok++;
		else if (strcmp(f->reason[i], "verifier busy") == 0)
			busy++;
		else if (strcmp(f->reason[i], "shutting down") == 0)
			down++;
		else
			fail_msg("request %zu: %s", i, f->reason[i]);
		assert_true(f->result[i] == OAUTH_OK || f->result[i] == OAUTH_TEMPFAIL);
	}
	assert_int_equal(ok + busy + down, 300);
	assert_true(busy > 0);
	free(good);
	fixture_free(f);
}

static void
test_cache_refresh_rules(void **state)
{
	struct fixture *f = fixture_new();
	struct jwks_cache *c = jwks_cache_new(f->jwks_path, NULL);
	struct jwks *k, *k2;
	int64_t t0 = 1000000;
	char *txt;

	k = jwks_cache_get(c, t0);
	assert_non_null(k);
	assert_int_equal(jwks_count(k), 1);
	txt = jwks_text(key_a, "a", key_b, "b");
	write_file(f->jwks_path, txt);
	free(txt);
	/* unknown kid right after a fetch: rate-limited */
	assert_null(jwks_cache_refresh(c, t0 + JWKS_UNKNOWN_KID_INTERVAL - 1));
	k2 = jwks_cache_get(c, t0 + 10);
	assert_ptr_equal(k2, k);
	jwks_unref(k2);
	/* later: refetched */
	k2 = jwks_cache_refresh(c, t0 + JWKS_UNKNOWN_KID_INTERVAL);
	assert_non_null(k2);
	assert_int_equal(jwks_count(k2), 2);
	assert_int_equal(jwks_count(k), 1); /* the old set is still valid while held */
	jwks_unref(k);
	jwks_unref(k2);
	/* periodic refresh: due after JWKS_REFRESH_DEFAULT for a file */
	txt = jwks_text(key_b, "b", NULL, NULL);
	write_file(f->jwks_path, txt);
	free(txt);
	k = jwks_cache_get(c, t0 + JWKS_UNKNOWN_KID_INTERVAL + 5);
	assert_int_equal(jwks_count(k), 2);
	jwks_unref(k);
	k = jwks_cache_get(c, t0 + JWKS_UNKNOWN_KID_INTERVAL + JWKS_REFRESH_DEFAULT);
	assert_int_equal(jwks_count(k), 1);
	assert_string_equal(jwks_key(k, 0)->kid, "b");
	jwks_unref(k);
	/* a failed refresh keeps the old keys, until JWKS_STALE_MAX */
	write_file(f->jwks_path, "not json");
	k = jwks_cache_get(c, t0 + 3 * JWKS_REFRESH_DEFAULT);
	assert_non_null(k);
	assert_string_equal(jwks_key(k, 0)->kid, "b");
	jwks_unref(k);
	k = jwks_cache_get(c, t0 + 2 * JWKS_STALE_MAX);
	assert_null(k);
	/* and with no keys, retries are spaced by JWKS_RETRY_INTERVAL */
	txt = jwks_text(key_a, "a", NULL, NULL);
	write_file(f->jwks_path, txt);
	free(txt);
	assert_null(jwks_cache_get(c, t0 + 2 * JWKS_STALE_MAX + 1));
	k = jwks_cache_get(c, t0 + 2 * JWKS_STALE_MAX + JWKS_RETRY_INTERVAL);
	assert_non_null(k);
	jwks_unref(k);
	jwks_cache_free(c);
	fixture_free(f);
}

/* --- HTTPS: a Python TLS server for the JWKS URL and introspection --- */

static const char server_py[] =
    "import http.server, json, ssl, sys, os, threading\n"
    "threading.Timer(120, os._exit, [0]).start()  # never outlive a failed test\n"
    "d = sys.argv[1]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def log_message(self, *a): pass\n"
    "    def reply(self, code, body, extra=()):\n"
    "        b = body.encode()\n"
    "        self.send_response(code)\n"
    "        self.send_header('Content-Type', 'application/json')\n"
    "        self.send_header('Content-Length', str(len(b)))\n"
    "        for k, v in extra: self.send_header(k, v)\n"
    "        self.end_headers(); self.wfile.write(b)\n"
    "    def do_GET(self):\n"
    "        if self.path == '/jwks.json':\n"
    "            self.reply(200, open(d + '/jwks.json').read(), [('Cache-Control', 'public, max-age=600')])\n"
    "        elif self.path == '/big':\n"
    "            self.reply(200, ' ' * (300 * 1024))\n"
    "        else: self.reply(404, '{}')\n"
    "    def do_POST(self):\n"
    "        n = int(self.headers.get('Content-Length', '0'))\n"
    "        form = dict(p.split('=', 1) for p in self.rfile.read(n).decode().split('&'))\n"
    "        if self.headers.get('Authorization') != 'Basic c210cGdhdGU6czNjcmV0':\n"
    "            return self.reply(401, '{}')\n"
    "        t = form.get('token')\n"
    "        if t == 'good%2Btoken%3D': a = {'active': True, 'username': 'alice@example.test', 'aud': ['smtpgate'], 'exp': 4102444800}\n"
    "        elif t == 'email': a = {'active': True, 'email': 'alice@EXAMPLE.test', 'username': 'x'}\n"
    "        elif t == 'wrongaud': a = {'active': True, 'username': 'alice@example.test', 'aud': 'other'}\n"
    "        elif t == 'expired': a = {'active': True, 'username': 'alice@example.test', 'exp': 1000}\n"
    "        elif t == 'boom': return self.reply(500, '{}')\n"
    "        else: a = {'active': False}\n"
    "        self.reply(200, json.dumps(a))\n"
    "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
    "c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "c.load_cert_chain(d + '/cert.pem', d + '/key.pem')\n"
    "s.socket = c.wrap_socket(s.socket, server_side=True)\n"
    "open(d + '/port.tmp', 'w').write(str(s.server_address[1]))\n"
    "os.rename(d + '/port.tmp', d + '/port')\n"
    "s.serve_forever()\n";

static pid_t
https_server_start(struct fixture *f, int *port_r)
{
	char cmd[1024], path[160];
	pid_t pid;
	FILE *fp;

	snprintf(cmd, sizeof(cmd),
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
	    "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem "
	    "-out %s/cert.pem >/dev/null 2>&1",
	    f->dir, f->dir);
	if (system(cmd) != 0 || system("python3 -c 'import ssl' >/dev/null 2>&1") != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/server.py", f->dir);
	write_file(path, server_py);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		execlp("python3", "python3", path, f->dir, (char *)NULL);
		_exit(127);
	}
	snprintf(path, sizeof(path), "%s/port", f->dir);
	for (int i = 0; i < 200 && (fp = fopen(path, "r")) == NULL; i++)
		usleep(50000);
	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%d", port_r), 1);
	fclose(fp);
	return pid;
}

static void
test_https(void **state)
{
	struct fixture *f = fixture_new();
	char url[128], intro[128], ca[160], secret[160], big[128];
	struct oauth_params p = {.issuer = ISS, .audience = AUD, .workers = 2};
	char *good = mint(key_a, "a", USER, 300);
	struct buf b;
	unsigned max_age = 0;
	char err[512];
	int port = 0, status;
	pid_t pid = https_server_start(f, &port);

	if (pid == -1) {
		fixture_free(f);
		skip();
	}
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/jwks.json", port);
	snprintf(intro, sizeof(intro), "https://127.0.0.1:%d/introspect", port);
	snprintf(big, sizeof(big), "https://127.0.0.1:%d/big", port);
	snprintf(ca, sizeof(ca), "%s/cert.pem", f->dir);
	snprintf(secret, sizeof(secret), "%s/secret", f->dir);
	write_file(secret, "s3cret\n");

	/* jwks_fetch: Cache-Control max-age, size cap, untrusted CA */
	buf_init(&b, JWKS_MAX);
	assert_int_equal(jwks_fetch(url, ca, &b, &max_age, err, sizeof(err)), 0);
	assert_int_equal(max_age, 600);
	assert_non_null(strstr(b.data, "Ed25519"));
	buf_reset(&b);
	assert_int_equal(jwks_fetch(big, ca, &b, &max_age, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger than"));
	buf_reset(&b);
	assert_int_equal(jwks_fetch(url, NULL, &b, &max_age, err, sizeof(err)), -1);
	buf_free(&b);

	/* JWKS over HTTPS (trusted through jwks_ca) and introspection */
	p.jwks = url;
	p.jwks_ca = ca;
	p.introspection = intro;
	p.introspection_ca = ca;
	p.introspection_client = "smtpgate";
	p.introspection_secret_file = secret;
	open_params(f, &p);
	request(f, 0, USER, good);
	request(f, 1, USER, "good+token=");
	request(f, 2, "bob@example.test", "good+token=");
	request(f, 3, USER, "email");
	request(f, 4, USER, "wrongaud");
	request(f, 5, USER, "expired");
	request(f, 6, USER, "revoked");
	request(f, 7, USER, "boom");
	run_until(f, 8);
	assert_int_equal(f->result[0], OAUTH_OK);
	assert_int_equal(f->result[1], OAUTH_OK);
	assert_int_equal(f->result[2], OAUTH_INVALID);
	assert_string_equal(f->reason[2], "user claim does not match");
	assert_int_equal(f->result[3], OAUTH_OK); /* the email claim comes before username */
	assert_int_equal(f->result[4], OAUTH_INVALID);
	assert_string_equal(f->reason[4], "wrong audience");
	assert_int_equal(f->result[5], OAUTH_INVALID);
	assert_string_equal(f->reason[5], "expired");
	assert_int_equal(f->result[6], OAUTH_INVALID);
	assert_string_equal(f->reason[6], "inactive token");
	assert_int_equal(f->result[7], OAUTH_TEMPFAIL);
	oauth_free(f->o);
	f->o = NULL;

	/* wrong client secret: the endpoint answers 401, a TEMPFAIL (our
	 * configuration, not the user's token) */
	write_file(secret, "wrong");
	open_params(f, &p);
	request(f, 8, USER, "good+token=");
	/* without jwks_ca the JWKS URL is not trusted: TEMPFAIL */
	run_until(f, 9);
	assert_int_equal(f->result[8], OAUTH_TEMPFAIL);
	oauth_free(f->o);
	f->o = NULL;
	p.jwks_ca = NULL;
	open_params(f, &p);
	request(f, 9, USER, good);
	run_until(f, 10);
	assert_int_equal(f->result[9], OAUTH_TEMPFAIL);
	assert_string_equal(f->reason[9], "jwks unavailable");

	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	free(good);
	fixture_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok_and_invalid),
	    cmocka_unit_test(test_reload),
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test(test_tempfail_unreachable),
	    cmocka_unit_test(test_queue_full_and_free_pending),
	    cmocka_unit_test(test_cache_refresh_rules),
	    cmocka_unit_test(test_https),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
