/*
 * Unit tests for relay/route_mx: MX ordering, implicit and null MX, the
 * TLS decision table, DANE under DNSSEC, MTA-STS pattern matching and the
 * policy cache, all with an injected resolver, fetcher, clock and random.
 *
 * With arguments it is also the driver of tests/integ/test_route_mx.py
 * (until delivery calls route_mx from the server):
 *   test_route_mx deliver DOMAIN --resolver A:P [--anchor F] [--port P]
 *       [--ca F] [--sts-port P] [--from A] [--to B] [--timeout MS]
 * resolves DOMAIN, delivers a short message through route_mx_open and
 * prints one JSON object (plan and outcome); exit 0 delivered, 1 deferred,
 * 2 failed for good, 3 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "dns/mtasts_parse.h"
#include "lib/xalloc.h"
#include "relay/route_mx.h"

/* ---- a fake DNS --------------------------------------------------------------- */

struct fake_rr {
	const char *text;
	unsigned pref; /* MX */
	unsigned usage, selector, mtype; /* TLSA (text: hex) */
};

struct fake_zone {
	const char *name;
	int type;
	enum dns_status status;
	enum dns_security security;
	const char *canonname;
	struct fake_rr rr[8];
};

struct fake {
	const struct fake_zone *zones;
	size_t nzones;
	time_t now;
	uint32_t rnd; /* next random draws: rnd % n */
	int fetches;
	const char *policy; /* served policy; NULL: fetch fails */
	size_t queries;
};

static struct fake fk;

static void
fake_query(void *arg, const char *name, int type, struct dns_answer *a)
{
	struct fake *f = arg;
	size_t nl = strlen(name);

	f->queries++;
	if (nl > 0 && name[nl - 1] == '.')
		nl--;
	a->status = DNS_NXDOMAIN;
	a->security = DNS_INSECURE;
	for (size_t i = 0; i < f->nzones; i++) {
		const struct fake_zone *z = &f->zones[i];

		if (strlen(z->name) != nl || strncasecmp(z->name, name, nl) != 0)
			continue;
		if (z->type != type) {
			/* the name exists with another type */
			if (a->status == DNS_NXDOMAIN)
				a->status = DNS_NODATA;
			a->security = z->security;
			continue;
		}
		a->status = z->status;
		a->security = z->security;
		if (z->canonname != NULL)
			a->canonname = xstrdup(z->canonname);
		for (size_t k = 0; k < 8 && z->rr[k].text != NULL; k++) {
			struct dns_rr *rr = &a->rr[a->n++];

			rr->text = xstrdup(z->rr[k].text);
			rr->len = strlen(rr->text);
			rr->pref = z->rr[k].pref;
			rr->usage = z->rr[k].usage;
			rr->selector = z->rr[k].selector;
			rr->mtype = z->rr[k].mtype;
			rr->data_len = type == DNS_TYPE_TLSA ? rr->len / 2 : 0;
		}
		if (a->status == DNS_OK && a->n == 0)
			a->status = DNS_NODATA;
		return;
	}
}

static int
fake_fetch(void *arg, const char *domain, char **body_r, size_t *len_r, char *err, size_t errlen)
{
	struct fake *f = arg;

	(void)domain;
	f->fetches++;
	if (f->policy == NULL) {
		snprintf(err, errlen, "connection refused");
		return -1;
	}
	*body_r = xstrdup(f->policy);
	*len_r = strlen(f->policy);
	return 0;
}

static time_t
fake_now(void *arg)
{
	return ((struct fake *)arg)->now;
}

static uint32_t
fake_random(void *arg, uint32_t n)
{
	struct fake *f = arg;
	uint32_t r = f->rnd % n;

	f->rnd /= n > 0 ? n : 1;
	return r;
}

static const struct route_mx_ops fake_ops = {fake_query, fake_fetch, fake_now, fake_random, &fk};

static struct route_mx *
fake_mx(const struct fake_zone *z, size_t n)
{
	struct route_mx_conf rc;
	char err[256];
	struct route_mx *mx;

	memset(&fk, 0, sizeof(fk));
	fk.zones = z;
	fk.nzones = n;
	fk.now = 1700000000;
	memset(&rc, 0, sizeof(rc));
	rc.ops = &fake_ops;
	rc.helo = "relay.test";
	mx = route_mx_new(&rc, err, sizeof(err));
	if (mx == NULL)
		fail_msg("route_mx_new: %s", err);
	return mx;
}

#define NZ(z) (sizeof(z) / sizeof((z)[0]))
#define S DNS_SECURE
#define I DNS_INSECURE

/* ---- MX order, implicit MX, null MX -------------------------------------------- */

static const struct fake_zone zone_order[] = {
    {"order.test", DNS_TYPE_MX, DNS_OK, I, NULL,
        {{.text = "d.order.test.", .pref = 30}, {.text = "a.order.test.", .pref = 10},
            {.text = "b.order.test.", .pref = 20}, {.text = "c.order.test.", .pref = 10},
            {.text = "e.order.test.", .pref = 10}}},
    {"a.order.test", DNS_TYPE_A, DNS_OK, I, NULL, {{.text = "192.0.2.1"}}},
    {"b.order.test", DNS_TYPE_A, DNS_OK, I, NULL, {{.text = "192.0.2.2"}}},
    {"c.order.test", DNS_TYPE_A, DNS_OK, I, NULL, {{.text = "192.0.2.3"}}},
    {"c.order.test", DNS_TYPE_AAAA, DNS_OK, I, NULL, {{.text = "2001:db8::3"}}},
    {"d.order.test", DNS_TYPE_A, DNS_OK, I, NULL, {{.text = "192.0.2.4"}, {.text = "192.0.2.44"}}},
    {"e.order.test", DNS_TYPE_A, DNS_OK, I, NULL, {{.text = "192.0.2.5"}}},
};

static void
test_order(void **state)
{
	struct route_mx *mx = fake_mx(zone_order, NZ(zone_order));
	bool first_seen[3] = {false, false, false};
	char err[512];

	(void)state;
	for (uint32_t seed = 0; seed < 12; seed++) {
		struct route_mx_plan p;

		fk.rnd = seed;
		assert_int_equal(route_mx_resolve(mx, "Order.Test.", &p, err, sizeof(err)), 0);
		assert_string_equal(p.domain, "order.test");
		assert_int_equal(p.nhosts, 5);
		assert_false(p.implicit_mx);
		/* preference 10 first (any order), then 20, then 30 */
		for (size_t i = 0; i < 3; i++)
			assert_int_equal(p.hosts[i].pref, 10);
		first_seen[p.hosts[0].name[0] == 'a' ? 0
		        : p.hosts[0].name[0] == 'c'  ? 1
		                                     : 2] = true;
		assert_string_equal(p.hosts[3].name, "b.order.test");
		assert_string_equal(p.hosts[4].name, "d.order.test");
		assert_int_equal(p.hosts[4].naddrs, 2);
		/* the three of preference 10 are distinct */
		assert_true(strcmp(p.hosts[0].name, p.hosts[1].name) != 0 &&
		    strcmp(p.hosts[1].name, p.hosts[2].name) != 0 &&
		    strcmp(p.hosts[0].name, p.hosts[2].name) != 0);
		for (size_t i = 0; i < p.nhosts; i++) {
			assert_int_equal(p.hosts[i].tls, ROUTE_MX_TLS_OPPORTUNISTIC);
			assert_false(p.hosts[i].skip);
			if (strcmp(p.hosts[i].name, "c.order.test") == 0) {
				assert_int_equal(p.hosts[i].naddrs, 2);
				assert_string_equal(p.hosts[i].addrs[1].text, "2001:db8::3");
				assert_int_equal(p.hosts[i].addrs[1].ss.ss_family, AF_INET6);
			}
		}
		route_mx_plan_free(&p);
	}
	/* equal preferences are shuffled: each of a, c, e came first once */
	assert_true(first_seen[0] && first_seen[1] && first_seen[2]);
	route_mx_free(mx);
}

static const struct fake_zone zone_kinds[] = {
    {"implicit.test", DNS_TYPE_A, DNS_OK, I, NULL, {{.text = "192.0.2.7"}}},
    {"nullmx.test", DNS_TYPE_MX, DNS_OK, I, NULL, {{.text = ".", .pref = 0}}},
    {"nothing.test", DNS_TYPE_TXT, DNS_OK, I, NULL, {{.text = "v=spf1 -all"}}},
    {"broken.test", DNS_TYPE_MX, DNS_SERVFAIL, I, NULL, {{.text = NULL}}},
    {"bogus.test", DNS_TYPE_MX, DNS_BOGUS, DNS_SEC_BOGUS, NULL, {{.text = NULL}}},
    {"noaddr.test", DNS_TYPE_MX, DNS_OK, I, NULL, {{.text = "gone.noaddr.test.", .pref = 10}}},
    {"cname.test", DNS_TYPE_MX, DNS_OK, I, NULL, {{.text = "alias.cname.test.", .pref = 10}}},
    {"alias.cname.test", DNS_TYPE_A, DNS_OK, I, "real.cname.test.", {{.text = "192.0.2.9"}}},
};

static void
test_kinds(void **state)
{
	struct route_mx *mx = fake_mx(zone_kinds, NZ(zone_kinds));
	struct route_mx_plan p;
	char err[512];

	(void)state;
	/* RFC 5321 5.1: no MX -> the domain's own address */
	assert_int_equal(route_mx_resolve(mx, "implicit.test", &p, err, sizeof(err)), 0);
	assert_true(p.implicit_mx);
	assert_int_equal(p.nhosts, 1);
	assert_true(p.hosts[0].implicit);
	assert_string_equal(p.hosts[0].name, "implicit.test");
	assert_string_equal(p.hosts[0].addrs[0].text, "192.0.2.7");
	route_mx_plan_free(&p);

	/* RFC 7505: null MX is final */
	assert_int_equal(route_mx_resolve(mx, "nullmx.test", &p, err, sizeof(err)), -1);
	assert_true(p.permanent);
	assert_non_null(strstr(err, "does not accept mail"));
	route_mx_plan_free(&p);

	/* NXDOMAIN, and no MX with no address: permanent */
	assert_int_equal(route_mx_resolve(mx, "absent.test", &p, err, sizeof(err)), -1);
	assert_true(p.permanent);
	assert_non_null(strstr(err, "NXDOMAIN"));
	route_mx_plan_free(&p);
	assert_int_equal(route_mx_resolve(mx, "nothing.test", &p, err, sizeof(err)), -1);
	assert_true(p.permanent);
	assert_non_null(strstr(err, "no MX and no address"));
	route_mx_plan_free(&p);

	/* SERVFAIL, bogus, an MX without address: retry later */
	assert_int_equal(route_mx_resolve(mx, "broken.test", &p, err, sizeof(err)), -1);
	assert_false(p.permanent);
	route_mx_plan_free(&p);
	assert_int_equal(route_mx_resolve(mx, "bogus.test", &p, err, sizeof(err)), -1);
	assert_false(p.permanent);
	assert_non_null(strstr(err, "DNSSEC"));
	route_mx_plan_free(&p);
	assert_int_equal(route_mx_resolve(mx, "noaddr.test", &p, err, sizeof(err)), -1);
	assert_false(p.permanent);
	assert_non_null(strstr(err, "gone.noaddr.test: no address"));
	route_mx_plan_free(&p);

	/* a CNAME'd MX is followed, and noted */
	assert_int_equal(route_mx_resolve(mx, "cname.test", &p, err, sizeof(err)), 0);
	assert_true(p.hosts[0].cname);
	assert_non_null(strstr(p.notes, "CNAME"));
	assert_string_equal(p.hosts[0].addrs[0].text, "192.0.2.9");
	route_mx_plan_free(&p);

	/* not a domain */
	assert_int_equal(route_mx_resolve(mx, "bad..name", &p, err, sizeof(err)), -1);
	assert_true(p.permanent);
	route_mx_plan_free(&p);
	route_mx_free(mx);
}

/* ---- DANE ------------------------------------------------------------------------ */

#define HASH32 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct fake_zone zone_dane[] = {
    {"dane.test", DNS_TYPE_MX, DNS_OK, S, NULL,
        {{.text = "mx1.dane.test.", .pref = 10}, {.text = "mx2.dane.test.", .pref = 20},
            {.text = "mx3.dane.test.", .pref = 30}, {.text = "mx4.dane.test.", .pref = 40},
            {.text = "mx5.dane.test.", .pref = 50}}},
    {"mx1.dane.test", DNS_TYPE_A, DNS_OK, S, NULL, {{.text = "192.0.2.1"}}},
    {"_25._tcp.mx1.dane.test", DNS_TYPE_TLSA, DNS_OK, S, NULL,
        {{.text = HASH32, .usage = 3, .selector = 1, .mtype = 1},
            {.text = HASH32, .usage = 1, .selector = 1, .mtype = 1}}},
    {"mx2.dane.test", DNS_TYPE_A, DNS_OK, S, NULL, {{.text = "192.0.2.2"}}},
    {"_25._tcp.mx2.dane.test", DNS_TYPE_TLSA, DNS_OK, S, NULL,
        {{.text = HASH32, .usage = 0, .selector = 1, .mtype = 1}}},
    {"mx3.dane.test", DNS_TYPE_A, DNS_OK, S, NULL, {{.text = "192.0.2.3"}}},
    {"_25._tcp.mx3.dane.test", DNS_TYPE_TLSA, DNS_SERVFAIL, I, NULL, {{.text = NULL}}},
    {"mx4.dane.test", DNS_TYPE_A, DNS_OK, I, NULL, {{.text = "192.0.2.4"}}},
    {"_25._tcp.mx4.dane.test", DNS_TYPE_TLSA, DNS_OK, I, NULL,
        {{.text = HASH32, .usage = 3, .selector = 1, .mtype = 1}}},
    {"mx5.dane.test", DNS_TYPE_A, DNS_OK, S, NULL, {{.text = "192.0.2.5"}}},
    /* insecure MX answer: no DANE even with a secure TLSA */
    {"nodane.test", DNS_TYPE_MX, DNS_OK, I, NULL, {{.text = "mx1.dane.test.", .pref = 10}}},
};

static void
test_dane(void **state)
{
	struct route_mx *mx = fake_mx(zone_dane, NZ(zone_dane));
	struct route_mx_plan p;
	struct client_conf cc;
	char err[512];

	(void)state;
	assert_int_equal(route_mx_resolve(mx, "dane.test", &p, err, sizeof(err)), 0);
	assert_int_equal(p.mx_security, DNS_SECURE);
	assert_int_equal(p.nhosts, 5);
	/* mx1: one usable record (3 1 1), the PKIX-EE one dropped */
	assert_int_equal(p.hosts[0].tls, ROUTE_MX_TLS_DANE);
	assert_int_equal(p.hosts[0].ntlsa, 1);
	assert_int_equal(p.hosts[0].tlsa[0].usage, 3);
	assert_int_equal(p.hosts[0].tlsa[0].len, 32);
	assert_int_equal(p.hosts[0].tlsa[0].data[0], 0x01);
	assert_int_equal(p.hosts[0].tlsa[0].data[31], 0xef);
	route_mx_client_conf(mx, &p, &p.hosts[0], &cc);
	assert_int_equal(cc.verify, CLIENT_VERIFY_PEER_HOST);
	assert_int_equal(cc.ndane, 1);
	assert_string_equal(cc.dane_base, "mx1.dane.test");
	assert_string_equal(cc.port, "25");
	/* mx2: only PKIX-TA: encrypt without authentication */
	assert_int_equal(p.hosts[1].tls, ROUTE_MX_TLS_ENCRYPT);
	route_mx_client_conf(mx, &p, &p.hosts[1], &cc);
	assert_int_equal(cc.verify, CLIENT_VERIFY_NONE);
	assert_int_equal(cc.ndane, 0);
	/* mx3: TLSA look-up failed: not used */
	assert_true(p.hosts[2].skip);
	assert_non_null(strstr(p.hosts[2].reason, "TLSA"));
	/* mx4: insecure addresses: DANE does not apply */
	assert_int_equal(p.hosts[3].tls, ROUTE_MX_TLS_OPPORTUNISTIC);
	assert_int_equal(p.hosts[3].ntlsa, 0);
	/* mx5: secure, no TLSA */
	assert_int_equal(p.hosts[4].tls, ROUTE_MX_TLS_OPPORTUNISTIC);
	route_mx_plan_free(&p);

	assert_int_equal(route_mx_resolve(mx, "nodane.test", &p, err, sizeof(err)), 0);
	assert_int_equal(p.hosts[0].tls, ROUTE_MX_TLS_OPPORTUNISTIC);
	route_mx_plan_free(&p);
	route_mx_free(mx);
}

/* ---- decision table ------------------------------------------------------------ */

static void
test_decide(void **state)
{
	static const struct {
		bool mx_sec, addr_sec;
		enum route_mx_tlsa_state tlsa;
		enum route_mx_sts_mode sts;
		bool match;
		enum route_mx_tls want;
		bool skip;
	} cases[] = {
	    {false, false, ROUTE_MX_TLSA_NONE, ROUTE_MX_STS_NONE, false, ROUTE_MX_TLS_OPPORTUNISTIC,
	        false},
	    {true, true, ROUTE_MX_TLSA_USABLE, ROUTE_MX_STS_NONE, false, ROUTE_MX_TLS_DANE, false},
	    /* DANE wins over MTA-STS (RFC 8461 2), even a non-matching one */
	    {true, true, ROUTE_MX_TLSA_USABLE, ROUTE_MX_STS_ENFORCE, false, ROUTE_MX_TLS_DANE,
	        false},
	    {true, true, ROUTE_MX_TLSA_UNUSABLE, ROUTE_MX_STS_NONE, false, ROUTE_MX_TLS_ENCRYPT,
	        false},
	    {true, true, ROUTE_MX_TLSA_FAILED, ROUTE_MX_STS_NONE, false, ROUTE_MX_TLS_OPPORTUNISTIC,
	        true},
	    /* TLSA without a secure MX or address answer: ignored */
	    {false, true, ROUTE_MX_TLSA_USABLE, ROUTE_MX_STS_NONE, false,
	        ROUTE_MX_TLS_OPPORTUNISTIC, false},
	    {true, false, ROUTE_MX_TLSA_USABLE, ROUTE_MX_STS_NONE, false,
	        ROUTE_MX_TLS_OPPORTUNISTIC, false},
	    {true, false, ROUTE_MX_TLSA_FAILED, ROUTE_MX_STS_ENFORCE, true, ROUTE_MX_TLS_STS,
	        false},
	    {false, false, ROUTE_MX_TLSA_NONE, ROUTE_MX_STS_ENFORCE, true, ROUTE_MX_TLS_STS, false},
	    {false, false, ROUTE_MX_TLSA_NONE, ROUTE_MX_STS_ENFORCE, false,
	        ROUTE_MX_TLS_OPPORTUNISTIC, true},
	    {false, false, ROUTE_MX_TLSA_NONE, ROUTE_MX_STS_TESTING, false,
	        ROUTE_MX_TLS_OPPORTUNISTIC, false},
	    {false, false, ROUTE_MX_TLSA_NONE, ROUTE_MX_STS_TESTING, true,
	        ROUTE_MX_TLS_OPPORTUNISTIC, false},
	    {true, true, ROUTE_MX_TLSA_NONE, ROUTE_MX_STS_ENFORCE, true, ROUTE_MX_TLS_STS, false},
	};

	(void)state;
	for (size_t i = 0; i < NZ(cases); i++) {
		struct route_mx_decision d = route_mx_decide(cases[i].mx_sec, cases[i].addr_sec,
		    cases[i].tlsa, cases[i].sts, cases[i].match);

		if (d.skip != cases[i].skip || (!d.skip && d.tls != cases[i].want))
			fail_msg("case %zu: tls %s skip %d", i, route_mx_tls_name(d.tls), d.skip);
		assert_true(d.why != NULL && d.why[0] != '\0');
	}
	assert_true(route_mx_tlsa_is_usable(3, 1, 1, 32));
	assert_true(route_mx_tlsa_is_usable(2, 0, 2, 64));
	assert_true(route_mx_tlsa_is_usable(3, 0, 0, 800));
	assert_false(route_mx_tlsa_is_usable(1, 1, 1, 32));
	assert_false(route_mx_tlsa_is_usable(0, 1, 1, 32));
	assert_false(route_mx_tlsa_is_usable(3, 2, 1, 32));
	assert_false(route_mx_tlsa_is_usable(3, 1, 3, 32));
	assert_false(route_mx_tlsa_is_usable(3, 1, 1, 31));
}

/* ---- MTA-STS -------------------------------------------------------------------- */

static void
test_sts_patterns(void **state)
{
	static const struct {
		const char *pattern, *host;
		bool want;
	} cases[] = {
	    {"mx.example.com", "mx.example.com", true},
	    {"mx.example.com", "MX.Example.COM.", true},
	    {"mx.example.com.", "mx.example.com", true},
	    {"mx.example.com", "mx2.example.com", false},
	    {"*.example.com", "mx.example.com", true},
	    {"*.example.com", "a.b.example.com", false}, /* one label only */
	    {"*.example.com", "example.com", false},
	    {"*.example.com", "mx.example.org", false},
	    {"*.example.com", "xexample.com", false},
	};

	(void)state;
	for (size_t i = 0; i < NZ(cases); i++)
		if (mtasts_mx_matches(cases[i].pattern, cases[i].host) != cases[i].want)
			fail_msg("%s vs %s", cases[i].pattern, cases[i].host);
}

static struct fake_zone zone_sts[] = {
    {"sts.test", DNS_TYPE_MX, DNS_OK, I, NULL,
        {{.text = "mx1.sts.test.", .pref = 10}, {.text = "other.example.", .pref = 20}}},
    {"mx1.sts.test", DNS_TYPE_A, DNS_OK, I, NULL, {{.text = "192.0.2.1"}}},
    {"other.example", DNS_TYPE_A, DNS_OK, I, NULL, {{.text = "192.0.2.2"}}},
    {"_mta-sts.sts.test", DNS_TYPE_TXT, DNS_OK, I, NULL, {{.text = "v=STSv1; id=one;"}}},
};

#define POLICY_ENFORCE "version: STSv1\r\nmode: enforce\r\nmx: *.sts.test\r\nmax_age: 600\r\n"
#define POLICY_TESTING "version: STSv1\r\nmode: testing\r\nmx: *.sts.test\r\nmax_age: 600\r\n"

static void
sts_resolve(struct route_mx *mx, struct route_mx_plan *p)
{
	char err[512];

	assert_int_equal(route_mx_resolve(mx, "sts.test", p, err, sizeof(err)), 0);
}

static void
test_sts_cache(void **state)
{
	struct route_mx *mx = fake_mx(zone_sts, NZ(zone_sts));
	struct route_mx_plan p;

	(void)state;
	zone_sts[3].rr[0].text = "v=STSv1; id=one;";
	fk.policy = POLICY_ENFORCE;
	sts_resolve(mx, &p);
	assert_int_equal(fk.fetches, 1);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_ENFORCE);
	assert_string_equal(p.sts_id, "one");
	assert_false(p.sts_cached);
	/* enforce: the matching host verifies, the other one is left out */
	assert_int_equal(p.hosts[0].tls, ROUTE_MX_TLS_STS);
	assert_true(p.hosts[0].sts_match);
	assert_true(p.hosts[1].skip);
	assert_non_null(strstr(p.hosts[1].reason, "mx pattern"));
	route_mx_plan_free(&p);

	/* same id within max_age: from the cache */
	fk.now += 300;
	sts_resolve(mx, &p);
	assert_int_equal(fk.fetches, 1);
	assert_true(p.sts_cached);
	route_mx_plan_free(&p);

	/* past max_age: fetched again */
	fk.now += 301;
	sts_resolve(mx, &p);
	assert_int_equal(fk.fetches, 2);
	assert_false(p.sts_cached);
	route_mx_plan_free(&p);

	/* a new id: fetched again at once, here a testing policy */
	zone_sts[3].rr[0].text = "v=STSv1; id=two;";
	fk.policy = POLICY_TESTING;
	sts_resolve(mx, &p);
	assert_int_equal(fk.fetches, 3);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_TESTING);
	assert_string_equal(p.sts_id, "two");
	assert_int_equal(p.hosts[1].tls, ROUTE_MX_TLS_OPPORTUNISTIC);
	assert_false(p.hosts[1].skip);
	route_mx_plan_free(&p);

	/* a newer id that cannot be fetched: the cached policy still holds */
	zone_sts[3].rr[0].text = "v=STSv1; id=three;";
	fk.policy = NULL;
	sts_resolve(mx, &p);
	assert_int_equal(fk.fetches, 4);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_TESTING);
	assert_string_equal(p.sts_id, "two");
	assert_non_null(strstr(p.sts_note, "using the cached policy"));
	route_mx_plan_free(&p);

	/* the record gone: the cached policy holds until it expires */
	zone_sts[3].rr[0].text = "unrelated";
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_TESTING);
	assert_true(p.sts_cached);
	route_mx_plan_free(&p);
	fk.now += 601;
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_NONE);
	route_mx_plan_free(&p);

	/* published, nothing cached, fetch fails: no policy (RFC 8461 5) */
	zone_sts[3].rr[0].text = "v=STSv1; id=four;";
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_NONE);
	assert_non_null(strstr(p.sts_note, "delivering without MTA-STS"));
	assert_int_equal(p.hosts[0].tls, ROUTE_MX_TLS_OPPORTUNISTIC);
	assert_false(p.hosts[1].skip);
	route_mx_plan_free(&p);

	/* an invalid policy counts as a failed fetch */
	fk.policy = "version: STSv1\r\nmode: sometimes\r\n";
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_NONE);
	assert_non_null(strstr(p.sts_note, "policy line"));
	route_mx_plan_free(&p);
	zone_sts[3].rr[0].text = "v=STSv1; id=one;";
	route_mx_free(mx);
}

/* ---- MTA-STS: the disk cache (a restart is a new route_mx on the same folder) ------ */

struct sts_dir {
	char base[64]; /* a fresh folder under /tmp */
	char dir[128]; /* base/mta-sts: the cache folder (created on the first save) */
	char file[256]; /* dir/sts.test */
};

static void
sts_dir_make(struct sts_dir *d)
{
	snprintf(d->base, sizeof(d->base), "/tmp/test_route_mx.XXXXXX");
	if (mkdtemp(d->base) == NULL)
		fail_msg("mkdtemp: %s", strerror(errno));
	snprintf(d->dir, sizeof(d->dir), "%s/mta-sts", d->base);
	snprintf(d->file, sizeof(d->file), "%s/sts.test", d->dir);
}

static void
sts_dir_remove(struct sts_dir *d)
{
	DIR *dp = opendir(d->dir);
	struct dirent *de;

	while (dp != NULL && (de = readdir(dp)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			(void)unlinkat(dirfd(dp), de->d_name, 0);
	if (dp != NULL)
		closedir(dp);
	(void)rmdir(d->dir);
	(void)rmdir(d->base);
}

/* A route_mx on the fake DNS with the cache folder; keeps fk (clock, counts). */
static struct route_mx *
sts_mx(const struct sts_dir *d, const struct fake_zone *z, size_t n, size_t max_files)
{
	struct route_mx_conf rc;
	char err[256];
	struct route_mx *mx;

	fk.zones = z;
	fk.nzones = n;
	memset(&rc, 0, sizeof(rc));
	rc.ops = &fake_ops;
	rc.helo = "relay.test";
	rc.sts_cache_dir = d->dir;
	rc.sts_cache_files = max_files;
	mx = route_mx_new(&rc, err, sizeof(err));
	if (mx == NULL)
		fail_msg("route_mx_new: %s", err);
	return mx;
}

static bool
file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void
file_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0)
		fail_msg("%s: %s", path, strerror(errno));
}

/* Writes the policy file of sts.test as smtpgate would, fetched at `fetched`. */
static void
sts_file_write(const struct sts_dir *d, const char *domain, const char *id, long long fetched,
    const char *policy)
{
	json_t *o = json_pack("{s:i, s:s, s:s, s:I, s:s}", "smtpgate-mta-sts", 1, "domain", domain,
	    "id", id, "fetched", (json_int_t)fetched, "policy", policy);
	char *text = json_dumps(o, 0);

	(void)mkdir(d->dir, 0700);
	file_write(d->file, text);
	free(text);
	json_decref(o);
}

static void
test_sts_disk_restart(void **state)
{
	struct route_mx *mx = fake_mx(zone_sts, NZ(zone_sts));
	struct route_mx_plan p;
	struct sts_dir d;
	struct stat st;
	json_error_t je;
	json_t *o;

	(void)state;
	route_mx_free(mx); /* fake_mx: only for fk's reset */
	sts_dir_make(&d);
	zone_sts[3].rr[0].text = "v=STSv1; id=one;";
	fk.policy = POLICY_ENFORCE;
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	assert_false(file_exists(d.dir)); /* created when a policy is first saved */
	sts_resolve(mx, &p);
	assert_int_equal(fk.fetches, 1);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_ENFORCE);
	assert_false(p.sts_from_disk);
	assert_string_equal(p.sts_note, "");
	route_mx_plan_free(&p);

	/* the file: 0600 in a 0700 folder, the documented fields */
	assert_int_equal(stat(d.dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(d.file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	o = json_load_file(d.file, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "smtpgate-mta-sts")), 1);
	assert_string_equal(json_string_value(json_object_get(o, "domain")), "sts.test");
	assert_string_equal(json_string_value(json_object_get(o, "id")), "one");
	assert_int_equal(json_integer_value(json_object_get(o, "fetched")), fk.now);
	assert_string_equal(json_string_value(json_object_get(o, "policy")), POLICY_ENFORCE);
	json_decref(o);

	/* restart: the same id is not fetched again; the policy comes from disk */
	route_mx_free(mx);
	fk.now += 100;
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	sts_resolve(mx, &p);
	assert_int_equal(fk.fetches, 1);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_ENFORCE);
	assert_string_equal(p.sts_id, "one");
	assert_true(p.sts_cached);
	assert_true(p.sts_from_disk);
	assert_int_equal(p.hosts[0].tls, ROUTE_MX_TLS_STS);
	assert_true(p.hosts[1].skip);
	route_mx_plan_free(&p);
	/* ... and is then in memory */
	sts_resolve(mx, &p);
	assert_true(p.sts_cached);
	assert_false(p.sts_from_disk);
	route_mx_plan_free(&p);

	/* restart, the TXT record gone and the fetch failing (a downgrade):
	 * the stored enforce policy still applies (RFC 8461 5.1) */
	route_mx_free(mx);
	zone_sts[3].rr[0].text = "unrelated";
	fk.policy = NULL;
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	sts_resolve(mx, &p);
	assert_int_equal(fk.fetches, 1);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_ENFORCE);
	assert_true(p.sts_from_disk);
	assert_true(p.hosts[1].skip);
	assert_non_null(strstr(p.hosts[1].reason, "mx pattern"));
	assert_non_null(strstr(p.sts_note, "the cached policy holds"));
	route_mx_plan_free(&p);

	/* restart, a new id that cannot be fetched: the stored policy still applies */
	route_mx_free(mx);
	zone_sts[3].rr[0].text = "v=STSv1; id=two;";
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	sts_resolve(mx, &p);
	assert_int_equal(fk.fetches, 2);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_ENFORCE);
	assert_string_equal(p.sts_id, "one");
	assert_true(p.sts_from_disk);
	assert_non_null(strstr(p.sts_note, "using the cached policy"));
	route_mx_plan_free(&p);

	/* restart, the new id fetchable: fetched at once, the file replaced */
	route_mx_free(mx);
	fk.policy = POLICY_TESTING;
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	sts_resolve(mx, &p);
	assert_int_equal(fk.fetches, 3);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_TESTING);
	assert_string_equal(p.sts_id, "two");
	assert_false(p.sts_cached);
	assert_false(p.sts_from_disk);
	route_mx_plan_free(&p);
	route_mx_free(mx);
	o = json_load_file(d.file, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "id")), "two");
	assert_string_equal(json_string_value(json_object_get(o, "policy")), POLICY_TESTING);
	json_decref(o);

	/* restart past max_age (600 s): the file is expired, so no policy when the
	 * record is gone and nothing can be fetched; the scan removed it */
	fk.now += 601;
	zone_sts[3].rr[0].text = "unrelated";
	fk.policy = NULL;
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	assert_false(file_exists(d.file));
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_NONE);
	assert_false(p.sts_from_disk);
	assert_false(p.hosts[1].skip);
	route_mx_plan_free(&p);
	route_mx_free(mx);
	zone_sts[3].rr[0].text = "v=STSv1; id=one;";
	sts_dir_remove(&d);
}

/* Expired while the server runs: the file is read, found expired, ignored. */
static void
test_sts_disk_expiry(void **state)
{
	struct route_mx *mx = fake_mx(zone_sts, NZ(zone_sts));
	struct route_mx_plan p;
	struct sts_dir d;

	(void)state;
	route_mx_free(mx);
	sts_dir_make(&d);
	zone_sts[3].rr[0].text = "unrelated";
	fk.policy = NULL;
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	/* written after the start-up scan, fetched 599 s ago: one second left */
	sts_file_write(&d, "sts.test", "one", (long long)fk.now - 599, POLICY_ENFORCE);
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_ENFORCE);
	assert_true(p.sts_from_disk);
	route_mx_plan_free(&p);
	route_mx_free(mx);
	/* one second later, on a new instance: expired */
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	sts_file_write(&d, "sts.test", "one", (long long)fk.now - 600, POLICY_ENFORCE);
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_NONE);
	assert_false(p.sts_from_disk);
	route_mx_plan_free(&p);
	/* fetched more than a day in the future (the clock went back): unknown age */
	route_mx_free(mx);
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	sts_file_write(&d, "sts.test", "one", (long long)fk.now + 86401, POLICY_ENFORCE);
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_NONE);
	route_mx_plan_free(&p);
	route_mx_free(mx);
	zone_sts[3].rr[0].text = "v=STSv1; id=one;";
	sts_dir_remove(&d);
}

/* A corrupt file is ignored (never fatal), removed by the scan at start-up, and
 * overwritten by the next successful fetch. */
static void
test_sts_disk_corrupt(void **state)
{
	/* whole texts, or the good file with one field replaced (JSON text) or removed */
	static const struct {
		const char *text, *key, *value;
	} bad[] = {
	    {"", NULL, NULL},
	    {"garbage", NULL, NULL},
	    {"[1, 2]", NULL, NULL},
	    {"{\"smtpgate-mta-sts\": 1, \"domain\": \"sts.test\", \"id\": \"one\"", NULL, NULL},
	    {"{\"smtpgate-mta-sts\": 1, \"domain\": \"sts.test\", \"id\": \"one\", \"id\": "
	     "\"one\", \"fetched\": 1700000000, \"policy\": \"version: STSv1\\r\\nmode: "
	     "enforce\\r\\nmx: *.sts.test\\r\\nmax_age: 600\\r\\n\"}",
	        NULL, NULL}, /* a duplicate key */
	    {NULL, "smtpgate-mta-sts", "2"},
	    {NULL, "smtpgate-mta-sts", NULL},
	    {NULL, "domain", "\"other.test\""},
	    {NULL, "domain", NULL},
	    {NULL, "id", "\"o-n-e\""},
	    {NULL, "id", "\"\""},
	    {NULL, "id", "\"012345678901234567890123456789012\""}, /* 33 */
	    {NULL, "fetched", "\"1700000000\""},
	    {NULL, "fetched", "0"},
	    {NULL, "fetched", NULL},
	    {NULL, "policy", "\"version: STSv1\\r\\nmode: sometimes\\r\\n\""},
	    {NULL, "policy", "17"},
	    {NULL, "policy", NULL},
	};
	struct route_mx *mx = fake_mx(zone_sts, NZ(zone_sts));
	struct route_mx_plan p;
	struct sts_dir d;

	(void)state;
	route_mx_free(mx);
	sts_dir_make(&d);
	assert_int_equal(mkdir(d.dir, 0700), 0);
	zone_sts[3].rr[0].text = "unrelated";
	fk.policy = NULL;
	/* the control: the same file, well formed, is used */
	sts_file_write(&d, "sts.test", "one", (long long)fk.now, POLICY_ENFORCE);
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	assert_true(file_exists(d.file));
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_ENFORCE);
	route_mx_plan_free(&p);
	route_mx_free(mx);
	for (size_t i = 0; i < NZ(bad); i++) {
		/* read on a miss in memory: ignored */
		mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
		if (bad[i].text != NULL) {
			file_write(d.file, bad[i].text);
		} else {
			json_error_t je;
			json_t *o;
			char *text;

			sts_file_write(&d, "sts.test", "one", (long long)fk.now, POLICY_ENFORCE);
			o = json_load_file(d.file, 0, &je);
			assert_non_null(o);
			if (bad[i].value != NULL)
				json_object_set_new(
				    o, bad[i].key, json_loads(bad[i].value, JSON_DECODE_ANY, &je));
			else
				json_object_del(o, bad[i].key);
			text = json_dumps(o, 0);
			file_write(d.file, text);
			free(text);
			json_decref(o);
		}
		sts_resolve(mx, &p);
		if (p.sts_mode != ROUTE_MX_STS_NONE || p.sts_from_disk)
			fail_msg("bad file %zu was used", i);
		route_mx_plan_free(&p);
		route_mx_free(mx);
		/* at start-up: removed */
		mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
		if (file_exists(d.file))
			fail_msg("bad file %zu was not removed", i);
		route_mx_free(mx);
	}
	/* a corrupt file, then a successful fetch: overwritten */
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	file_write(d.file, "garbage");
	zone_sts[3].rr[0].text = "v=STSv1; id=one;";
	fk.policy = POLICY_ENFORCE;
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_ENFORCE);
	route_mx_plan_free(&p);
	route_mx_free(mx);
	fk.policy = NULL;
	zone_sts[3].rr[0].text = "unrelated";
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_ENFORCE);
	assert_true(p.sts_from_disk);
	route_mx_plan_free(&p);
	route_mx_free(mx);
	zone_sts[3].rr[0].text = "v=STSv1; id=one;";
	sts_dir_remove(&d);
}

/* Only regular files count: a symbolic link is not followed, a FIFO never
 * blocks a delivery; neither is removed (they are not the server's). */
static void
test_sts_disk_not_regular(void **state)
{
	struct route_mx *mx = fake_mx(zone_sts, NZ(zone_sts));
	struct route_mx_plan p;
	struct sts_dir d;
	char target[300];

	(void)state;
	route_mx_free(mx);
	sts_dir_make(&d);
	zone_sts[3].rr[0].text = "unrelated";
	fk.policy = NULL;
	/* a valid policy file, reached through a link */
	sts_file_write(&d, "sts.test", "one", (long long)fk.now, POLICY_ENFORCE);
	snprintf(target, sizeof(target), "%s/elsewhere", d.base);
	assert_int_equal(rename(d.file, target), 0);
	assert_int_equal(symlink(target, d.file), 0);
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_NONE);
	route_mx_plan_free(&p);
	route_mx_free(mx);
	assert_int_equal(unlink(d.file), 0);
	assert_int_equal(unlink(target), 0);
	/* a FIFO */
	assert_int_equal(mkfifo(d.file, 0600), 0);
	mx = sts_mx(&d, zone_sts, NZ(zone_sts), 0);
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_NONE);
	route_mx_plan_free(&p);
	route_mx_free(mx);
	assert_true(file_exists(d.file));
	zone_sts[3].rr[0].text = "v=STSv1; id=one;";
	sts_dir_remove(&d);
}

static const struct fake_zone zone_sts2[] = {
    {"sts.test", DNS_TYPE_MX, DNS_OK, I, NULL, {{.text = "mx1.sts.test.", .pref = 10}}},
    {"sts2.test", DNS_TYPE_MX, DNS_OK, I, NULL, {{.text = "mx1.sts.test.", .pref = 10}}},
    {"mx1.sts.test", DNS_TYPE_A, DNS_OK, I, NULL, {{.text = "192.0.2.1"}}},
    {"_mta-sts.sts.test", DNS_TYPE_TXT, DNS_OK, I, NULL, {{.text = "v=STSv1; id=one;"}}},
    {"_mta-sts.sts2.test", DNS_TYPE_TXT, DNS_OK, I, NULL, {{.text = "v=STSv1; id=one;"}}},
};

/* At most sts_cache_files files: a new domain beyond is kept in memory only;
 * a domain already on disk is still updated; expired files make room. Stale
 * temporary files are removed at start-up, fresh ones left alone. */
static void
test_sts_disk_bound(void **state)
{
	struct route_mx *mx = fake_mx(zone_sts2, NZ(zone_sts2));
	struct route_mx_plan p;
	struct sts_dir d;
	char path2[300], tmp_old[300], tmp_new[300];
	char err[512];
	struct timespec ts[2];

	(void)state;
	route_mx_free(mx);
	sts_dir_make(&d);
	snprintf(path2, sizeof(path2), "%s/sts2.test", d.dir);
	fk.policy = POLICY_ENFORCE;
	mx = sts_mx(&d, zone_sts2, NZ(zone_sts2), 1);
	assert_int_equal(route_mx_resolve(mx, "sts.test", &p, err, sizeof(err)), 0);
	assert_string_equal(p.sts_note, "");
	route_mx_plan_free(&p);
	assert_true(file_exists(d.file));
	assert_int_equal(route_mx_resolve(mx, "sts2.test", &p, err, sizeof(err)), 0);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_ENFORCE); /* in memory */
	assert_non_null(strstr(p.sts_note, "memory only (1 policy files on disk, the limit)"));
	route_mx_plan_free(&p);
	assert_false(file_exists(path2));
	route_mx_free(mx);

	/* the limit is counted at start-up too */
	mx = sts_mx(&d, zone_sts2, NZ(zone_sts2), 1);
	assert_int_equal(route_mx_resolve(mx, "sts2.test", &p, err, sizeof(err)), 0);
	assert_non_null(strstr(p.sts_note, "the limit"));
	route_mx_plan_free(&p);
	assert_false(file_exists(path2));
	route_mx_free(mx);

	/* sts.test expires while the server runs; a save more than
	 * ROUTE_MX_STS_RESCAN (600 s) after the last scan scans again: room */
	mx = sts_mx(&d, zone_sts2, NZ(zone_sts2), 1);
	fk.now += 300;
	assert_int_equal(route_mx_resolve(mx, "sts2.test", &p, err, sizeof(err)), 0);
	assert_non_null(strstr(p.sts_note, "the limit")); /* not expired yet */
	route_mx_plan_free(&p);
	assert_true(file_exists(d.file));
	fk.now += 700; /* sts.test and the memory entry of sts2.test expired */
	assert_int_equal(route_mx_resolve(mx, "sts2.test", &p, err, sizeof(err)), 0);
	assert_string_equal(p.sts_note, "");
	route_mx_plan_free(&p);
	assert_false(file_exists(d.file)); /* expired: removed by the scan */
	assert_true(file_exists(path2));
	route_mx_free(mx);

	/* temporary files: one from a crash an hour ago, one being written */
	snprintf(tmp_old, sizeof(tmp_old), "%s/.old.test.tmp-AAAAAA", d.dir);
	snprintf(tmp_new, sizeof(tmp_new), "%s/.new.test.tmp-BBBBBB", d.dir);
	file_write(tmp_old, "x");
	file_write(tmp_new, "x");
	ts[0].tv_sec = ts[1].tv_sec = fk.now - 3601;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, tmp_old, ts, 0), 0);
	ts[0].tv_sec = ts[1].tv_sec = fk.now - 60;
	assert_int_equal(utimensat(AT_FDCWD, tmp_new, ts, 0), 0);
	mx = sts_mx(&d, zone_sts2, NZ(zone_sts2), 1);
	assert_false(file_exists(tmp_old));
	assert_true(file_exists(tmp_new));
	assert_true(file_exists(path2)); /* valid: kept */
	route_mx_free(mx);
	sts_dir_remove(&d);
}

/* Without a cache folder nothing is written and a restart forgets. */
static void
test_sts_memory_only(void **state)
{
	struct route_mx *mx = fake_mx(zone_sts, NZ(zone_sts));
	struct route_mx_plan p;

	(void)state;
	zone_sts[3].rr[0].text = "v=STSv1; id=one;";
	fk.policy = POLICY_ENFORCE;
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_ENFORCE);
	route_mx_plan_free(&p);
	route_mx_free(mx);
	mx = fake_mx(zone_sts, NZ(zone_sts));
	zone_sts[3].rr[0].text = "unrelated";
	sts_resolve(mx, &p);
	assert_int_equal(p.sts_mode, ROUTE_MX_STS_NONE);
	route_mx_plan_free(&p);
	route_mx_free(mx);
	zone_sts[3].rr[0].text = "v=STSv1; id=one;";
}

/* ---- the driver for the integration tests ------------------------------------------ */

static int
driver(int argc, char **argv)
{
	struct route_mx_conf rc;
	const char *from = "sender@relay.test", *to = NULL, *domain;
	struct route_mx *mx;
	struct route_mx_plan p;
	struct route_mx_cursor cur = {0, 0, false};
	struct route_mx_attempt at;
	struct client *c;
	char err[1024], msg[512];
	json_t *o = json_object(), *hosts = json_array();
	int rc_exit = 1;

	memset(&rc, 0, sizeof(rc));
	rc.helo = "relay.test";
	rc.timeout_ms = 5000;
	rc.dns_timeout = 3;
	rc.sts_timeout = 3;
	if (argc < 3 || strcmp(argv[1], "deliver") != 0)
		return 3;
	domain = argv[2];
	for (int i = 3; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--resolver") == 0)
			rc.resolver = argv[i + 1];
		else if (strcmp(argv[i], "--anchor") == 0)
			rc.dnssec_anchor = argv[i + 1];
		else if (strcmp(argv[i], "--port") == 0)
			rc.port = argv[i + 1];
		else if (strcmp(argv[i], "--ca") == 0)
			rc.cafile = argv[i + 1];
		else if (strcmp(argv[i], "--sts-port") == 0)
			rc.sts_port = argv[i + 1];
		else if (strcmp(argv[i], "--from") == 0)
			from = argv[i + 1];
		else if (strcmp(argv[i], "--to") == 0)
			to = argv[i + 1];
		else if (strcmp(argv[i], "--timeout") == 0)
			rc.timeout_ms = atoi(argv[i + 1]);
		else
			return 3;
	}
	if (to == NULL) {
		snprintf(msg, sizeof(msg), "user@%s", domain);
		to = msg;
	}
	mx = route_mx_new(&rc, err, sizeof(err));
	if (mx == NULL) {
		fprintf(stderr, "%s\n", err);
		return 3;
	}
	if (route_mx_resolve(mx, domain, &p, err, sizeof(err)) == -1) {
		json_object_set_new(o, "result", json_string(p.permanent ? "failed" : "deferred"));
		json_object_set_new(o, "reason", json_string(err));
		rc_exit = p.permanent ? 2 : 1;
		goto out;
	}
	json_object_set_new(o, "sts_mode", json_string(route_mx_sts_mode_name(p.sts_mode)));
	json_object_set_new(o, "sts_note", json_string(p.sts_note));
	json_object_set_new(o, "notes", json_string(p.notes));
	json_object_set_new(o, "mx_security", json_string(dns_security_name(p.mx_security)));
	json_object_set_new(o, "implicit_mx", json_boolean(p.implicit_mx));
	for (size_t i = 0; i < p.nhosts; i++) {
		const struct route_mx_host *h = &p.hosts[i];
		json_t *addrs = json_array();

		for (size_t k = 0; k < h->naddrs; k++)
			json_array_append_new(addrs, json_string(h->addrs[k].text));
		json_array_append_new(hosts,
		    json_pack("{s:s, s:i, s:s, s:b, s:s, s:o, s:s, s:i}", "name", h->name, "pref",
		        (int)h->pref, "tls", route_mx_tls_name(h->tls), "skip", h->skip, "security",
		        dns_security_name(h->addr_security), "addrs", addrs, "reason", h->reason,
		        "ntlsa", (int)h->ntlsa));
	}
	json_object_set(o, "hosts", hosts);
	json_object_set_new(o, "result", json_string("deferred"));
	while ((c = route_mx_open(mx, &p, &cur, &at)) != NULL) {
		static const char body[] = "Subject: route_mx test\r\n\r\nhello\r\n";

		if (client_mail(c, from, sizeof(body) - 1, 0) == 0 && client_rcpt(c, to) == 0 &&
		    client_data(c, body, sizeof(body) - 1) == 0) {
			json_object_set_new(o, "result", json_string("delivered"));
			json_object_set_new(o, "host", json_string(at.host));
			json_object_set_new(o, "addr", json_string(at.addr));
			json_object_set_new(o, "tls", json_string(route_mx_tls_name(at.tls)));
			json_object_set_new(o, "tls_active", json_boolean(at.tls_active));
			json_object_set_new(o, "verified", json_boolean(at.verified));
			json_object_set_new(o, "dane_match", json_string(at.dane_match));
			json_object_set_new(o, "note", json_string(at.reason));
			client_quit(c);
			client_free(c);
			rc_exit = 0;
			goto out;
		}
		snprintf(at.reason, sizeof(at.reason), "%s[%s]: %s", at.host, at.addr,
		    client_reply(c)->line);
		json_object_set_new(o, "reason", json_string(at.reason));
		client_disconnect(c);
		client_free(c);
	}
	json_object_set_new(o, "reason", json_string(at.reason));
	json_object_set_new(o, "transient", json_boolean(at.transient));
out:
	json_decref(hosts);
	route_mx_plan_free(&p);
	route_mx_free(mx);
	json_dumpf(o, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(o);
	return rc_exit;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order),
	    cmocka_unit_test(test_kinds),
	    cmocka_unit_test(test_dane),
	    cmocka_unit_test(test_decide),
	    cmocka_unit_test(test_sts_patterns),
	    cmocka_unit_test(test_sts_cache),
	    cmocka_unit_test(test_sts_disk_restart),
	    cmocka_unit_test(test_sts_disk_expiry),
	    cmocka_unit_test(test_sts_disk_corrupt),
	    cmocka_unit_test(test_sts_disk_not_regular),
	    cmocka_unit_test(test_sts_disk_bound),
	    cmocka_unit_test(test_sts_memory_only),
	};

	if (argc > 1)
		return driver(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
