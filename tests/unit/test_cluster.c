/* Unit tests for the pure parts of the shared state: [cluster] redis URLs
 * (conf/conf_cluster.c), key names, the hex form of accounts, the decay of
 * failure counts, ban records and channel messages (cluster/cluster_msg.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/cluster_msg.h"
#include "conf/conf.h"

static const struct {
	const char *url;
	int rc;
	const char *host, *path;
	unsigned port, db;
} urls[] = {
    {"redis://127.0.0.1:6380", 0, "127.0.0.1", "", 6380, 0},
    {"redis://redis.example.net", 0, "redis.example.net", "", 6379, 0},
    {"redis://10.0.0.5:6379/3", 0, "10.0.0.5", "", 6379, 3},
    {"redis://[2001:db8::5]:7000/1", 0, "2001:db8::5", "", 7000, 1},
    {"redis://[2001:db8::5]", 0, "2001:db8::5", "", 6379, 0},
    {"unix:/run/redis/redis.sock", 0, "", "/run/redis/redis.sock", 0, 0},
    {"unix:run/redis.sock", -1, NULL, NULL, 0, 0}, /* relative */
    {"redis://:secret@host:6379", -1, NULL, NULL, 0, 0}, /* a password in the URL */
    {"redis://user:pw@host", -1, NULL, NULL, 0, 0},
    {"rediss://host:6379", -1, NULL, NULL, 0, 0}, /* TLS: not supported */
    {"http://host", -1, NULL, NULL, 0, 0},
    {"redis://", -1, NULL, NULL, 0, 0},
    {"redis://host:0", -1, NULL, NULL, 0, 0},
    {"redis://host:65536", -1, NULL, NULL, 0, 0},
    {"redis://host:12x", -1, NULL, NULL, 0, 0},
    {"redis://host:6379/", -1, NULL, NULL, 0, 0},
    {"redis://host:6379/x", -1, NULL, NULL, 0, 0},
    {"redis://[2001:db8::5", -1, NULL, NULL, 0, 0},
    {"redis://[::1]x", -1, NULL, NULL, 0, 0},
    {"redis://ho st", -1, NULL, NULL, 0, 0},
    {"", -1, NULL, NULL, 0, 0},
};

static void
test_urls(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		struct conf_redis_url u;
		const char *e = NULL;
		int rc = conf_redis_url_parse(urls[i].url, &u, &e);

		if (rc != urls[i].rc)
			fail_msg("%s: %d, expected %d", urls[i].url, rc, urls[i].rc);
		if (rc == -1) {
			assert_non_null(e);
			continue;
		}
		assert_string_equal(u.host, urls[i].host);
		assert_string_equal(u.path, urls[i].path);
		assert_int_equal(u.port, urls[i].port);
		assert_int_equal(u.db, urls[i].db);
	}
}

static void
test_keys_and_hex(void **state)
{
	char key[64], hex[CLUSTER_MSG_HEX_MAX], back[CLUSTER_MSG_ACCOUNT_MAX + 1];
	char longname[400];
	size_t n;

	(void)state;
	assert_int_equal(
	    cluster_msg_key(key, sizeof(key), "smtpgate:", "fail:ip:", "192.0.2.7"), 0);
	assert_string_equal(key, "smtpgate:fail:ip:192.0.2.7");
	assert_int_equal(cluster_msg_key(key, sizeof(key), "p:", "bans", NULL), 0);
	assert_string_equal(key, "p:bans");
	assert_int_equal(cluster_msg_key(key, 8, "smtpgate:", "bans", NULL), -1);
	/* case-folded: Alice and alice are one account, as in the limiter */
	cluster_msg_hex("Alice@Example.TEST", 18, hex);
	assert_string_equal(hex, "616c696365406578616d706c652e74657374");
	assert_int_equal(cluster_msg_unhex(hex, back, &n), 0);
	assert_int_equal(n, 18);
	assert_string_equal(back, "alice@example.test");
	/* spaces and odd bytes cannot break a message apart */
	cluster_msg_hex("a b\n", 4, hex);
	assert_string_equal(hex, "6120620a");
	assert_int_equal(cluster_msg_unhex("6", back, &n), -1);
	assert_int_equal(cluster_msg_unhex("zz", back, &n), -1);
	assert_int_equal(cluster_msg_unhex("4A", back, &n), -1); /* we write lower case */
	memset(longname, 'x', sizeof(longname));
	cluster_msg_hex(longname, sizeof(longname), hex);
	assert_int_equal(strlen(hex), 2 * CLUSTER_MSG_ACCOUNT_MAX);
}

/* Recipients in Redis: half a SHA-256 of the lower-cased address (the
 * value from Python's hashlib), never the address. */
static void
test_rcpt_hash(void **state)
{
	char a[CLUSTER_MSG_RCPT_HEX], b[CLUSTER_MSG_RCPT_HEX];
	char longaddr[300];

	(void)state;
	cluster_msg_rcpt_hash("bob@example.net", a);
	assert_string_equal(a, "e7b3b708168e80fd10abb34296e9863d");
	cluster_msg_rcpt_hash("Bob@Example.NET", b);
	assert_string_equal(a, b);
	cluster_msg_rcpt_hash("bob@example.org", b);
	assert_string_not_equal(a, b);
	/* longer than a hashing chunk: every byte counts */
	memset(longaddr, 'y', sizeof(longaddr) - 1);
	longaddr[sizeof(longaddr) - 1] = '\0';
	cluster_msg_rcpt_hash(longaddr, a);
	longaddr[200] = 'z';
	cluster_msg_rcpt_hash(longaddr, b);
	assert_string_not_equal(a, b);
	assert_int_equal(strlen(a), CLUSTER_MSG_RCPT_HEX - 1);
}

static void
test_decay(void **state)
{
	const int64_t h = LIMITER_FAIL_HALFLIFE_MS;

	(void)state;
	assert_true(fabs(cluster_msg_decay(8, 0, h, h) - 4) < 1e-9);
	assert_true(fabs(cluster_msg_decay(8, 1000, 1000 + 3 * h, h) - 1) < 1e-9);
	assert_true(fabs(cluster_msg_decay(3, 5000, 5000, h) - 3) < 1e-12);
	/* a stamp from a clock ahead of ours does not make it grow */
	assert_true(fabs(cluster_msg_decay(3, 9000, 5000, h) - 3) < 1e-12);
	assert_true(cluster_msg_decay(-1, 0, 10, h) == 0);
	/* one quick failure after N: still N + 1 - a little, rounds to N + 1 */
	assert_true(floor(cluster_msg_decay(4, 0, 2000, h) + 1 + 0.5) == 5);
}

static void
test_ban_records(void **state)
{
	struct limiter_ban b, c;
	char rec[CLUSTER_MSG_BAN_MAX];

	(void)state;
	assert_int_equal(cluster_msg_ban_parse("192.0.2.0/24",
	                     "1700000600000 1700000000000 2 "
	                     "auth_failures_per_net",
	                     &b),
	    0);
	assert_string_equal(b.address, "192.0.2.0/24");
	assert_true(b.until_ms == 1700000600000LL && b.last_ms == 1700000000000LL);
	assert_int_equal(b.offences, 2);
	assert_int_equal(b.reason, LIMITER_REASON_AUTH_NET);
	cluster_msg_ban_format(&b, rec, sizeof(rec));
	assert_string_equal(rec, "1700000600000 1700000000000 2 auth_failures_per_net");
	assert_int_equal(cluster_msg_ban_parse("2001:db8::1", rec, &c), 0);
	assert_string_equal(c.address, "2001:db8::1");
	/* host bits are cleared, as the limiter stores it */
	assert_int_equal(cluster_msg_ban_parse("192.0.2.9/24", "1 1 1 manual", &c), 0);
	assert_string_equal(c.address, "192.0.2.0/24");
	assert_int_equal(cluster_msg_ban_parse("192.0.2.1", "1 1 1 because", &c), -1);
	assert_int_equal(cluster_msg_ban_parse("192.0.2.1", "1 1 1 manual extra", &c), -1);
	assert_int_equal(cluster_msg_ban_parse("192.0.2.1", "-1 1 1 manual", &c), -1);
	assert_int_equal(cluster_msg_ban_parse("192.0.2.1", "1 1", &c), -1);
	assert_int_equal(cluster_msg_ban_parse("not-an-ip", "1 1 1 manual", &c), -1);
}

static void
test_messages(void **state)
{
	static const char *bad[] = {"", "ban 192.0.2.1 1 1 1", "ban 192.0.2.1 1 1 1 manual x",
	    "unban", "unban nonsense", "good 61 192.0.2.0/24 5", "good  192.0.2.1 5",
	    "good 61 192.0.2.1 x", "acct 61 -1 5", "acct 61 x 5", "hello 61 1 1",
	    "good 61 192.0.2.1 5 ", "hold", "hold 6", "hold zz", "hold 61 1", "unlock ",
	    "unlock 00"};
	struct cluster_msg m;
	const char *s;

	(void)state;
	s = "ban 192.0.2.7 10 5 1 auth_failures_per_ip";
	assert_int_equal(cluster_msg_parse(s, strlen(s), &m), 0);
	assert_int_equal(m.type, CLUSTER_MSG_BAN);
	assert_string_equal(m.ban.address, "192.0.2.7");
	assert_int_equal(m.ban.reason, LIMITER_REASON_AUTH_IP);
	s = "unban 2001:db8::/64";
	assert_int_equal(cluster_msg_parse(s, strlen(s), &m), 0);
	assert_int_equal(m.type, CLUSTER_MSG_UNBAN);
	assert_string_equal(m.ban.address, "2001:db8::/64");
	s = "good 616c696365 192.0.2.7 1700000000000";
	assert_int_equal(cluster_msg_parse(s, strlen(s), &m), 0);
	assert_int_equal(m.type, CLUSTER_MSG_GOOD);
	assert_string_equal(m.account, "alice");
	assert_true(m.stamp == 1700000000000LL);
	s = "acct 616c696365 12.500000 1700000000000";
	assert_int_equal(cluster_msg_parse(s, strlen(s), &m), 0);
	assert_int_equal(m.type, CLUSTER_MSG_ACCT);
	assert_true(fabs(m.fails - 12.5) < 1e-9);
	s = "hold 416c696365";
	assert_int_equal(cluster_msg_parse(s, strlen(s), &m), 0);
	assert_int_equal(m.type, CLUSTER_MSG_HOLD);
	assert_int_equal(m.account_len, 5);
	assert_string_equal(m.account, "Alice"); /* as sent: the sender lower-cases */
	s = "unlock 616c696365";
	assert_int_equal(cluster_msg_parse(s, strlen(s), &m), 0);
	assert_int_equal(m.type, CLUSTER_MSG_UNLOCK);
	assert_string_equal(m.account, "alice");
	/* the length is the message's own, not a NUL */
	assert_int_equal(cluster_msg_parse("unban 192.0.2.7xyz", 15, &m), 0);
	assert_int_equal(cluster_msg_parse("unban 192.0.2.7\0", 16, &m), -1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cluster_msg_parse(bad[i], strlen(bad[i]), &m) != -1)
			fail_msg("accepted: \"%s\"", bad[i]);
	}
}

/* Node registrations: written and read back; an older node's id alone;
 * values of other programs refused (the audit's SCAN relies on it). */
static void
test_node_records(void **state)
{
	static const char *const bad[] = {"", "abc", "-12ab", "12-", "12-xyz", "0-ab", "x1-ab",
	    "12-ab ", "12-AB host /p", "123456789012345678901234567890123456789-a host"};
	struct cluster_msg_node n;
	struct cluster_msg_refused r;
	char rec[CLUSTER_MSG_NODE_MAX], path[700];

	(void)state;
	cluster_msg_node_format(
	    "4242-0a1b2c3d", "mx1.example.org", "/etc/smtp gate/s.conf", rec, sizeof(rec));
	assert_string_equal(rec, "4242-0a1b2c3d mx1.example.org /etc/smtp gate/s.conf");
	assert_int_equal(cluster_msg_node_parse(rec, &n), 0);
	assert_string_equal(n.id, "4242-0a1b2c3d");
	assert_int_equal(n.pid, 4242);
	assert_string_equal(n.host, "mx1.example.org");
	assert_string_equal(n.path, "/etc/smtp gate/s.conf");
	/* a space in a host name cannot shift the path; no host: "-" */
	cluster_msg_node_format("7-ff", "a b", "/c", rec, sizeof(rec));
	assert_string_equal(rec, "7-ff a_b /c");
	cluster_msg_node_format("7-ff", "", "", rec, sizeof(rec));
	assert_int_equal(cluster_msg_node_parse(rec, &n), 0);
	assert_string_equal(n.host, "-");
	assert_string_equal(n.path, "");
	/* a long path is cut, never the record */
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	cluster_msg_node_format("7-ff", "h", path, rec, sizeof(rec));
	assert_int_equal(cluster_msg_node_parse(rec, &n), 0);
	assert_int_equal(strlen(n.path), 511);
	/* an older node's record: the id alone */
	assert_int_equal(cluster_msg_node_parse("99-abcdef0123456789", &n), 0);
	assert_int_equal(n.pid, 99);
	assert_string_equal(n.host, "");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cluster_msg_node_parse(bad[i], &n) != -1)
			fail_msg("accepted: \"%s\"", bad[i]);
	}
	assert_int_equal(cluster_msg_refused_parse("submission 127.0.0.1", "1700000000", &r), 0);
	assert_string_equal(r.listener, "submission");
	assert_string_equal(r.address, "127.0.0.1");
	assert_int_equal(r.last_s, 1700000000);
	assert_int_equal(cluster_msg_refused_parse("s 2001:db8::1", "5", &r), 0);
	assert_string_equal(r.address, "2001:db8::1");
	assert_int_equal(cluster_msg_refused_parse("submission", "5", &r), -1);
	assert_int_equal(cluster_msg_refused_parse(" 127.0.0.1", "5", &r), -1);
	assert_int_equal(cluster_msg_refused_parse("s ", "5", &r), -1);
	assert_int_equal(cluster_msg_refused_parse("s 127.0.0.1", "-5", &r), -1);
	assert_int_equal(cluster_msg_refused_parse("s 127.0.0.1", "5x", &r), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_urls),
	    cmocka_unit_test(test_keys_and_hex),
	    cmocka_unit_test(test_rcpt_hash),
	    cmocka_unit_test(test_decay),
	    cmocka_unit_test(test_ban_records),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_node_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
