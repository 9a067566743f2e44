/*
 * Unit tests for policy/limiter: connection limits, auth failure counting,
 * bans and their growth, the allowlist, the per-account throttle that spares
 * known-good clients, IPv6 churn, the state file, and the memory bound
 * under a million distinct addresses. The clock is injected (now, in ms).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "policy/limiter.h"

#define T0 1700000000000LL /* ms */
#define SEC 1000LL

static struct conf *
conf_with(const char *limits)
{
	char text[2048], err[256];
	struct conf *c;

	snprintf(text, sizeof(text),
	    "[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n"
	    "[limits]\n%s\n",
	    limits);
	c = conf_parse_text("/t.conf", text, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	return c;
}

static struct limiter_addr
addr(const char *s)
{
	struct limiter_addr a;
	unsigned p;

	if (limiter_addr_parse(s, &a, &p) == -1)
		fail_msg("bad address %s", s);
	return a;
}

static void
test_addr_parse_format(void **state)
{
	static const struct {
		const char *in;
		int rc;
		unsigned prefix;
		const char *out;
	} cases[] = {
	    {"192.0.2.7", 0, 128, "192.0.2.7"},
	    {"192.0.2.7/24", 0, 120, "192.0.2.0/24"},
	    {"2001:db8::1", 0, 128, "2001:db8::1"},
	    {"[2001:db8::1]/64", 0, 64, "2001:db8::/64"},
	    {"2001:db8:1:2:3:4:5:6/48", 0, 48, "2001:db8:1::/48"},
	    {"::ffff:192.0.2.9", 0, 128, "192.0.2.9"},
	    {"192.0.2.7/33", -1, 0, NULL},
	    {"192.0.2.7/", -1, 0, NULL},
	    {"192.0.2.7/-1", -1, 0, NULL},
	    {"example.test", -1, 0, NULL},
	    {"", -1, 0, NULL},
	    {"2001:db8::/129", -1, 0, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct limiter_addr a;
		unsigned p = 0;
		char out[LIMITER_ADDR_STRLEN];
		int rc = limiter_addr_parse(cases[i].in, &a, &p);

		if (rc != cases[i].rc)
			fail_msg("case %zu (%s): rc %d", i, cases[i].in, rc);
		if (rc == -1)
			continue;
		assert_int_equal(p, cases[i].prefix);
		limiter_addr_format(&a, p, out, sizeof(out));
		assert_string_equal(out, cases[i].out);
	}
}

/* A table of connect/disconnect steps and the verdict each one gets. */
static void
test_connect_table(void **state)
{
	struct conf *c = conf_with("connections = 5\nconnections_per_ip = 2\n"
	                           "connection_rate_per_ip = 4\nallow = 10.9.9.0/24\n");
	struct limiter *l = limiter_new(NULL);
	static const struct {
		char op; /* c connect, d disconnect */
		const char *ip;
		int64_t at; /* seconds after T0 */
		enum limiter_verdict want;
	} steps[] = {
	    {'c', "192.0.2.1", 0, LIMITER_OK},
	    {'c', "192.0.2.1", 0, LIMITER_OK},
	    {'c', "192.0.2.1", 0, LIMITER_TOO_MANY}, /* per IP: 2 open */
	    {'d', "192.0.2.1", 1, LIMITER_OK},
	    {'c', "192.0.2.1", 1, LIMITER_OK}, /* one closed: room again; rate 4th */
	    {'d', "192.0.2.1", 2, LIMITER_OK},
	    {'c', "192.0.2.1", 2, LIMITER_TOO_MANY}, /* rate: 4 per minute used */
	    {'c', "192.0.2.1", 20, LIMITER_OK}, /* 20 s drain 1.33: one more */
	    {'c', "192.0.2.2", 20, LIMITER_OK},
	    {'c', "10.9.9.1", 20, LIMITER_OK}, /* allowlisted: no per-IP limit */
	    {'c', "10.9.9.1", 20, LIMITER_OK},
	    {'c', "10.9.9.1", 20, LIMITER_TOO_MANY}, /* but the server-wide 5 holds */
	    {'d', "10.9.9.1", 21, LIMITER_OK},
	    {'c', "10.9.9.1", 21, LIMITER_OK},
	};

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct limiter_addr a = addr(steps[i].ip);
		int64_t now = T0 + steps[i].at * SEC;

		if (steps[i].op == 'd') {
			limiter_disconnect(l, &a);
			continue;
		}
		if (limiter_connect(l, c, &a, now) != steps[i].want)
			fail_msg("step %zu (%s at %llds)", i, steps[i].ip, (long long)steps[i].at);
	}
	assert_int_equal(limiter_connections(l), 5);
	limiter_free(l);
	conf_free(c);
}

/* Fails n times from ip for account at now; returns the last result. */
static struct limiter_fail
fail_n(
    struct limiter *l, const struct conf *c, const char *acct, const char *ip, int n, int64_t now)
{
	struct limiter_addr a = addr(ip);
	struct limiter_fail f;

	memset(&f, 0, sizeof(f));
	for (int i = 0; i < n; i++)
		limiter_auth_failed(l, c, acct, strlen(acct), &a, now + i * 100, &f);
	return f;
}

static void
test_ban_at_count_and_tarpit(void **state)
{
	struct conf *c = conf_with("auth_failures_per_ip = 5\nauth_failures_per_net = 100\n"
	                           "ban_time = 10m\nallow =\n");
	struct limiter *l = limiter_new(NULL);
	struct limiter_addr a = addr("192.0.2.1"), other = addr("192.0.2.2");
	static const unsigned delays[] = {500, 1000, 2000, 4000};
	struct limiter_fail f;
	int64_t until = 0;

	for (int i = 0; i < 4; i++) {
		limiter_auth_failed(l, c, "alice", 5, &a, T0 + i * SEC, &f);
		assert_false(f.banned);
		assert_int_equal(f.delay_ms, delays[i]);
	}
	assert_int_equal(limiter_connect(l, c, &a, T0 + 4 * SEC), LIMITER_OK);
	limiter_disconnect(l, &a);
	limiter_auth_failed(l, c, "alice", 5, &a, T0 + 5 * SEC, &f);
	assert_true(f.banned);
	assert_true(f.new_ban);
	assert_string_equal(f.ban.address, "192.0.2.1");
	assert_int_equal(f.ban.reason, LIMITER_REASON_AUTH_IP);
	assert_int_equal(f.ban.until_ms, T0 + 5 * SEC + 600 * SEC);
	assert_int_equal(limiter_connect(l, c, &a, T0 + 6 * SEC), LIMITER_BANNED);
	assert_true(limiter_is_banned(l, c, &a, T0 + 6 * SEC, &until));
	assert_int_equal(until, T0 + 605 * SEC);
	/* the neighbour is not touched; the ban ends on time */
	assert_int_equal(limiter_connect(l, c, &other, T0 + 6 * SEC), LIMITER_OK);
	assert_int_equal(limiter_connect(l, c, &a, T0 + 606 * SEC), LIMITER_OK);
	/* the tarpit is capped */
	f = fail_n(l, c, "x", "192.0.2.3", 4, T0);
	assert_int_equal(f.delay_ms, 4000);
	{
		struct conf *c2 = conf_with("auth_failures_per_ip = 50\nallow =\n");

		f = fail_n(l, c2, "x", "192.0.2.4", 20, T0);
		assert_int_equal(f.delay_ms, LIMITER_TARPIT_MAX_MS);
		conf_free(c2);
	}
	limiter_free(l);
	conf_free(c);
}

static void
test_ban_growth(void **state)
{
	struct conf *c = conf_with("auth_failures_per_ip = 3\nauth_failures_per_net = 1000\n"
	                           "ban_time = 10m\nallow =\n");
	struct limiter *l = limiter_new(NULL);
	static const int64_t want[] = {
	    600, 1200, 2400, 4800, 9600, 19200, 38400, 76800, 86400, 86400};
	int64_t now = T0;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct limiter_fail f = fail_n(l, c, "bob", "198.51.100.9", 3, now);

		assert_true(f.new_ban);
		if (f.ban.until_ms - (now + 200) != want[i] * SEC)
			fail_msg("offence %zu: %lld s", i + 1,
			    (long long)((f.ban.until_ms - now - 200) / SEC));
		assert_int_equal(f.ban.offences, i + 1);
		now = f.ban.until_ms + SEC; /* comes back after the ban */
	}
	/* after LIMITER_OFFENCE_MEMORY_MS the offences are forgotten */
	now += LIMITER_OFFENCE_MEMORY_MS + SEC;
	{
		struct limiter_fail f = fail_n(l, c, "bob", "198.51.100.9", 3, now);

		assert_int_equal(f.ban.offences, 1);
		assert_int_equal(f.ban.until_ms - (now + 200), 600 * SEC);
	}
	limiter_free(l);
	conf_free(c);
}

static void
test_net_ban_and_allowlist(void **state)
{
	struct conf *c =
	    conf_with("auth_failures_per_ip = 100\nauth_failures_per_net = 6\n"
	              "net_prefix_v6 = 64\nallow = 203.0.113.0/24 2001:db8:ffff::/48\n");
	struct limiter *l = limiter_new(NULL);
	struct limiter_fail f;
	char ip[64];

	/* six addresses of one /24 fail once each: the network is banned */
	for (int i = 1; i <= 6; i++) {
		snprintf(ip, sizeof(ip), "192.0.2.%d", i);
		f = fail_n(l, c, "carol", ip, 1, T0 + i * SEC);
	}
	assert_true(f.new_ban);
	assert_string_equal(f.ban.address, "192.0.2.0/24");
	assert_int_equal(f.ban.reason, LIMITER_REASON_AUTH_NET);
	{
		struct limiter_addr fresh = addr("192.0.2.200"), out = addr("192.0.3.1");

		assert_int_equal(limiter_connect(l, c, &fresh, T0 + 10 * SEC), LIMITER_BANNED);
		assert_int_equal(limiter_connect(l, c, &out, T0 + 10 * SEC), LIMITER_OK);
	}
	/* IPv6: the /64 */
	for (int i = 1; i <= 6; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:1:2::%x", i * 7919);
		f = fail_n(l, c, "carol", ip, 1, T0 + i * SEC);
	}
	assert_true(f.banned);
	assert_string_equal(f.ban.address, "2001:db8:1:2::/64");
	/* the allowlist: never banned, no tarpit, no connection limit */
	f = fail_n(l, c, "carol", "203.0.113.5", 500, T0);
	assert_false(f.banned);
	assert_int_equal(f.delay_ms, 0);
	f = fail_n(l, c, "carol", "2001:db8:ffff:1::1", 500, T0);
	assert_false(f.banned);
	{
		struct limiter_addr a = addr("203.0.113.5");

		assert_int_equal(limiter_connect(l, c, &a, T0 + SEC), LIMITER_OK);
		assert_false(limiter_is_banned(l, c, &a, T0 + SEC, NULL));
		/* even a manual ban of its network does not apply */
		assert_int_equal(limiter_ban_add(l, &a, 120, 600, LIMITER_REASON_MANUAL, T0), 0);
		assert_false(limiter_is_banned(l, c, &a, T0 + SEC, NULL));
	}
	limiter_free(l);
	conf_free(c);
}

/* An automatic network ban lets a client that is known-good for an account
 * in, and at AUTH only for that account; an address ban, a manual ban and
 * an expired success do not. */
static void
test_net_ban_spares_known_good(void **state)
{
	struct conf *c = conf_with("auth_failures_per_ip = 4\nauth_failures_per_net = 4\n"
	                           "net_prefix_v6 = 64\nban_time = 10m\nallow =\n");
	struct limiter *l = limiter_new(NULL);
	struct limiter_addr alice = addr("192.0.2.9"), fresh = addr("192.0.2.10");
	struct limiter_addr v6 = addr("2001:db8:1:2::1"), v6b = addr("2001:db8:1:2::99");
	struct limiter_fail f;
	int64_t now = T0 + 10 * SEC, until = 0;
	char ip[64];

	limiter_auth_ok(l, "Alice", 5, &alice, T0);
	limiter_auth_ok(l, "alice6", 6, &v6, T0);
	for (int i = 1; i <= 4; i++) {
		snprintf(ip, sizeof(ip), "192.0.2.%d", 100 + i);
		f = fail_n(l, c, "mallory", ip, 1, T0 + i * SEC);
		snprintf(ip, sizeof(ip), "2001:db8:1:2::%x", 100 + i);
		(void)fail_n(l, c, "mallory", ip, 1, T0 + i * SEC);
	}
	assert_true(f.banned);
	assert_string_equal(f.ban.address, "192.0.2.0/24");
	/* at connect: only the known-good address passes */
	assert_int_equal(limiter_connect(l, c, &fresh, now), LIMITER_BANNED);
	assert_true(limiter_is_banned(l, c, &fresh, now, &until));
	assert_true(until > now);
	assert_int_equal(limiter_connect(l, c, &alice, now), LIMITER_OK);
	limiter_disconnect(l, &alice);
	assert_false(limiter_is_banned(l, c, &alice, now, &until));
	/* at AUTH: only its accounts (names compared case-insensitively) */
	assert_false(limiter_auth_banned(l, c, "alice", 5, &alice, now));
	assert_true(limiter_auth_banned(l, c, "bob", 3, &alice, now));
	assert_true(limiter_auth_banned(l, c, "", 0, &alice, now));
	assert_true(limiter_auth_banned(l, c, "alice", 5, &fresh, now));
	/* IPv6: the known-good /64, another address in it too */
	assert_int_equal(limiter_connect(l, c, &v6b, now), LIMITER_OK);
	limiter_disconnect(l, &v6b);
	assert_false(limiter_auth_banned(l, c, "alice6", 6, &v6b, now));
	assert_true(limiter_auth_banned(l, c, "alice", 5, &v6b, now));
	/* alice mistyping her password is not banned by the network ban: a
	 * tarpitted 535, counted for her address */
	f = fail_n(l, c, "alice", "192.0.2.9", 1, now);
	assert_false(f.banned);
	assert_true(f.delay_ms > 0);
	/* ... until her address itself reaches auth_failures_per_ip: that ban
	 * applies to her too */
	f = fail_n(l, c, "alice", "192.0.2.9", 3, now + SEC);
	assert_true(f.banned);
	assert_string_equal(f.ban.address, "192.0.2.9");
	assert_int_equal(limiter_connect(l, c, &alice, now + 2 * SEC), LIMITER_BANNED);
	assert_true(limiter_auth_banned(l, c, "alice", 5, &alice, now + 2 * SEC));
	/* a manual ban of the network is the operator's: no one passes */
	assert_int_equal(limiter_ban_del(l, &alice, 128), 0);
	assert_int_equal(limiter_connect(l, c, &alice, now + 3 * SEC), LIMITER_OK);
	limiter_disconnect(l, &alice);
	assert_int_equal(limiter_ban_add(l, &alice, 120, 600, LIMITER_REASON_MANUAL, now), 0);
	assert_int_equal(limiter_connect(l, c, &alice, now + 3 * SEC), LIMITER_BANNED);
	assert_true(limiter_auth_banned(l, c, "alice", 5, &alice, now + 3 * SEC));
	assert_int_equal(limiter_ban_del(l, &alice, 120), 0);
	limiter_free(l);
	/* a success older than LIMITER_GOOD_TTL_MS is forgotten: a network ban
	 * in force then keeps the client out */
	l = limiter_new(NULL);
	limiter_auth_ok(l, "alice", 5, &alice, T0);
	now = T0 + LIMITER_GOOD_TTL_MS;
	assert_int_equal(limiter_ban_add(l, &fresh, 120, 600, LIMITER_REASON_AUTH_NET, now), 0);
	assert_int_equal(limiter_connect(l, c, &alice, now), LIMITER_OK);
	limiter_disconnect(l, &alice);
	assert_int_equal(limiter_connect(l, c, &alice, now + SEC), LIMITER_BANNED);
	assert_true(limiter_auth_banned(l, c, "alice", 5, &alice, now + SEC));
	limiter_free(l);
	conf_free(c);
}

/* Per-account throttling answers 454 to new clients only. */
static void
test_account_throttle(void **state)
{
	struct conf *c = conf_with("auth_failures_per_ip = 1000\nauth_failures_per_net = 1000\n"
	                           "auth_failures_per_account = 5\nallow = 10.0.0.0/8\n");
	struct limiter *l = limiter_new(NULL);
	struct limiter_addr home = addr("198.51.100.20"), v6 = addr("2001:db8:5:6::1");
	struct limiter_addr v6rotated = addr("2001:db8:5:6:abcd::9"), newcomer = addr("192.0.2.50");
	struct limiter_addr trusted = addr("10.1.2.3");
	char ip[64];

	limiter_auth_ok(l, "alice@example.test", 18, &home, T0);
	limiter_auth_ok(l, "alice@example.test", 18, &v6, T0);
	/* an attacker rotates over many IPs: per-IP counters never trip */
	for (int i = 0; i < 5; i++) {
		snprintf(ip, sizeof(ip), "192.0.2.%d", 100 + i);
		assert_false(limiter_auth_throttled(
		    l, c, "alice@example.test", 18, &newcomer, T0 + i * SEC));
		(void)fail_n(l, c, "alice@example.test", ip, 1, T0 + i * SEC);
	}
	assert_true(
	    limiter_auth_throttled(l, c, "alice@example.test", 18, &newcomer, T0 + 6 * SEC));
	/* case does not dodge it */
	assert_true(
	    limiter_auth_throttled(l, c, "ALICE@Example.Test", 18, &newcomer, T0 + 6 * SEC));
	/* the real user's known clients keep working, IPv6 across its /64 */
	assert_false(limiter_auth_throttled(l, c, "alice@example.test", 18, &home, T0 + 6 * SEC));
	assert_false(limiter_auth_throttled(l, c, "alice@example.test", 18, &v6, T0 + 6 * SEC));
	assert_false(
	    limiter_auth_throttled(l, c, "alice@example.test", 18, &v6rotated, T0 + 6 * SEC));
	assert_false(
	    limiter_auth_throttled(l, c, "alice@example.test", 18, &trusted, T0 + 6 * SEC));
	/* other accounts are not affected */
	assert_false(limiter_auth_throttled(l, c, "bob@example.test", 16, &newcomer, T0 + 6 * SEC));
	/* the account's failures decay: 5 failures halve each hour */
	assert_false(limiter_auth_throttled(
	    l, c, "alice@example.test", 18, &newcomer, T0 + 2 * LIMITER_FAIL_HALFLIFE_MS));
	/* a success from the attacker's side resets nothing */
	(void)fail_n(l, c, "alice@example.test", "192.0.2.120", 5, T0 + 10 * SEC);
	limiter_auth_ok(l, "mallory@example.test", 20, &newcomer, T0 + 11 * SEC);
	assert_true(
	    limiter_auth_throttled(l, c, "alice@example.test", 18, &newcomer, T0 + 12 * SEC));
	/* a known-good pair is forgotten after LIMITER_GOOD_TTL_MS */
	{
		int64_t later = T0 + LIMITER_GOOD_TTL_MS + 60 * SEC;

		(void)fail_n(l, c, "alice@example.test", "192.0.2.121", 5, later);
		assert_true(limiter_auth_throttled(
		    l, c, "alice@example.test", 18, &home, later + 10 * SEC));
	}
	limiter_free(l);
	conf_free(c);
}

static void
test_manual_bans_and_state_file(void **state)
{
	struct conf *c = conf_with("allow =\n");
	struct limiter *l = limiter_new(NULL), *l2;
	struct limiter_addr a, n6;
	unsigned p, p6;
	struct limiter_ban *list;
	size_t n;
	char path[] = "/tmp/test_limiter_XXXXXX", file[64], err[256];
	char *json;

	assert_int_equal(limiter_addr_parse("198.51.100.0/24", &a, &p), 0);
	assert_int_equal(limiter_addr_parse("2001:db8:aa::/48", &n6, &p6), 0);
	assert_int_equal(limiter_ban_add(l, &a, p, 3600, LIMITER_REASON_MANUAL, T0), 0);
	assert_int_equal(limiter_ban_add(l, &n6, p6, 60, LIMITER_REASON_MANUAL, T0), 0);
	{
		struct limiter_addr in = addr("198.51.100.77"), in6 = addr("2001:db8:aa:1::5");

		assert_int_equal(limiter_connect(l, c, &in, T0 + SEC), LIMITER_BANNED);
		assert_int_equal(limiter_connect(l, c, &in6, T0 + SEC), LIMITER_BANNED);
		assert_int_equal(limiter_connect(l, c, &in6, T0 + 61 * SEC), LIMITER_OK);
	}
	list = limiter_ban_list(l, T0 + 61 * SEC, false, &n);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].address, "198.51.100.0/24");
	free(list);
	list = limiter_ban_list(l, T0 + 61 * SEC, true, &n);
	assert_int_equal(n, 2);
	free(list);
	json = limiter_bans_json(l, T0, false);
	assert_non_null(strstr(json, "\"address\": \"198.51.100.0/24\""));
	free(json);

	assert_non_null(mkdtemp(path));
	snprintf(file, sizeof(file), "%s/bans.json", path);
	/* a missing file is an empty list */
	assert_int_equal(limiter_bans_load(l, file, T0, err, sizeof(err)), 0);
	assert_int_equal(limiter_bans_save(l, file, T0 + SEC), 0);
	l2 = limiter_new(NULL);
	assert_int_equal(limiter_bans_load(l2, file, T0 + 2 * SEC, err, sizeof(err)), 0);
	{
		struct limiter_addr in = addr("198.51.100.77");

		assert_true(limiter_is_banned(l2, c, &in, T0 + 2 * SEC, NULL));
		assert_int_equal(limiter_ban_del(l2, &a, p), 0);
		assert_false(limiter_is_banned(l2, c, &in, T0 + 2 * SEC, NULL));
		assert_int_equal(limiter_ban_del(l2, &a, p), -1);
	}
	limiter_free(l2);
	/* the persister writes after a change */
	limiter_persist_start(l, file);
	assert_int_equal(limiter_ban_del(l, &a, p), 0);
	limiter_persist_stop(l);
	l2 = limiter_new(NULL);
	assert_int_equal(limiter_bans_load(l2, file, T0 + 2 * SEC, err, sizeof(err)), 0);
	list = limiter_ban_list(l2, T0 + 2 * SEC, true, &n);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].address, "2001:db8:aa::/48");
	free(list);
	limiter_free(l2);
	/* a damaged file is an error, not an empty list */
	{
		FILE *f = fopen(file, "w");

		assert_non_null(f);
		fputs("{\"bans\": [{\"address\": \"nonsense\", \"until\": 1}]}", f);
		fclose(f);
		l2 = limiter_new(NULL);
		assert_int_equal(limiter_bans_load(l2, file, T0, err, sizeof(err)), -1);
		limiter_free(l2);
	}
	unlink(file);
	rmdir(path);
	limiter_free(l);
	conf_free(c);
}

static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	}
	fclose(f);
	return kib;
}

/* A million distinct IPv4 clients, 100,000 usernames and IPv6 churn: the
 * memory stays what limiter_new allocated, and the hot attacker in the
 * middle of it is still banned at its count. */
static void
test_memory_bound_and_churn(void **state)
{
	struct conf *c = conf_with("auth_failures_per_ip = 10\nauth_failures_per_net = 1000000\n"
	                           "auth_failures_per_account = 20\nallow =\n");
	struct limiter *l = limiter_new(NULL);
	size_t mem = limiter_memory(l);
	struct limiter_addr hot = addr("192.0.2.66");
	struct limiter_fail f;
	long rss0, rss1;
	int hot_fails = 0;
	char name[64];

	/* touch every slot once so that RSS counts the whole allocation */
	for (uint32_t i = 0; i < 300000; i++) {
		struct limiter_addr a;

		memset(&a, 0, sizeof(a));
		a.a[10] = a.a[11] = 0xff;
		a.a[12] = 11;
		a.a[13] = (unsigned char)(i >> 16);
		a.a[14] = (unsigned char)(i >> 8);
		a.a[15] = (unsigned char)i;
		limiter_auth_failed(l, c, "", 0, &a, T0, &f);
	}
	rss0 = rss_kib();
	for (uint32_t i = 0; i < 1000000; i++) {
		struct limiter_addr a;
		int64_t now = T0 + (int64_t)i / 10; /* 100 s in all */

		memset(&a, 0, sizeof(a));
		a.a[10] = a.a[11] = 0xff;
		a.a[12] = 10;
		a.a[13] = (unsigned char)(i >> 16);
		a.a[14] = (unsigned char)(i >> 8);
		a.a[15] = (unsigned char)i;
		if (i % 10 == 0) {
			/* a connect that ends (rate bucket entries) */
			if (limiter_connect(l, c, &a, now) == LIMITER_OK)
				limiter_disconnect(l, &a);
		}
		if (i < 100000) {
			int n = snprintf(name, sizeof(name), "user%u@example.test", i);

			limiter_auth_failed(l, c, name, (size_t)n, &a, now, &f);
		} else {
			limiter_auth_failed(l, c, "", 0, &a, now, &f);
		}
		assert_false(f.banned);
		/* IPv6 churn: one fresh /128 in a fresh /64 each time */
		{
			struct limiter_addr b;

			memset(&b, 0, sizeof(b));
			b.a[0] = 0x20;
			b.a[1] = 0x01;
			b.a[2] = 0x0d;
			b.a[3] = 0xb8;
			memcpy(b.a + 4, &i, 4);
			b.a[15] = 1;
			limiter_auth_failed(l, c, "", 0, &b, now, &f);
		}
		/* the hot attacker fails three times in a row at the start, in
		 * the middle and at the end of the churn */
		if (i == 0 || i == 500000 || i == 999999) {
			for (int k = 0; k < 3; k++) {
				limiter_auth_failed(l, c, "root", 4, &hot, now, &f);
				assert_false(f.banned);
				hot_fails++;
			}
		}
	}
	rss1 = rss_kib();
	assert_int_equal(limiter_memory(l), mem);
	/* a little slack for the allocator and stdio */
	if (rss0 > 0 && rss1 - rss0 > 2048)
		fail_msg("RSS grew by %ld KiB (memory %zu bytes)", rss1 - rss0, mem);
	assert_true(mem < 8 * 1024 * 1024);
	/* the tenth failure still bans it: its nine survived two million
	 * one-shot keys (minus decay over 100 s: 2 %, within the rounding) */
	assert_int_equal(hot_fails, 9);
	limiter_auth_failed(l, c, "root", 4, &hot, T0 + 100001, &f);
	assert_true(f.new_ban);
	assert_string_equal(f.ban.address, "192.0.2.66");
	/* the account table kept count of the names that failed most recently */
	assert_false(limiter_auth_throttled(l, c, "user99999@example.test", 22, &hot, T0 + 100002));
	limiter_free(l);
	conf_free(c);
}

/* Enormous account names cost a fingerprint like any other. */
static void
test_enormous_names(void **state)
{
	struct conf *c = conf_with("auth_failures_per_account = 3\nallow =\n"
	                           "auth_failures_per_ip = 1000\n");
	struct limiter *l = limiter_new(NULL);
	size_t len = 1 << 20;
	char *big = malloc(len);
	struct limiter_addr a = addr("192.0.2.9"), b = addr("192.0.2.10");
	struct limiter_fail f;

	assert_non_null(big);
	memset(big, 'A', len);
	for (int i = 0; i < 3; i++)
		limiter_auth_failed(l, c, big, len, &a, T0 + i, &f);
	assert_true(limiter_auth_throttled(l, c, big, len, &b, T0 + 10));
	big[len - 1] = 'B';
	assert_false(limiter_auth_throttled(l, c, big, len, &b, T0 + 10));
	free(big);
	limiter_free(l);
	conf_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_addr_parse_format),
	    cmocka_unit_test(test_connect_table),
	    cmocka_unit_test(test_ban_at_count_and_tarpit),
	    cmocka_unit_test(test_ban_growth),
	    cmocka_unit_test(test_net_ban_and_allowlist),
	    cmocka_unit_test(test_net_ban_spares_known_good),
	    cmocka_unit_test(test_account_throttle),
	    cmocka_unit_test(test_manual_bans_and_state_file),
	    cmocka_unit_test(test_memory_bound_and_churn),
	    cmocka_unit_test(test_enormous_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
