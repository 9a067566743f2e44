/*
 * lastuse (auth/lastuse.h): many credentials noted, each found again by its
 * (user, label) (one record each, the last time and client kept), through
 * a prune (the keep callback at the write) and a reopen from the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/lastuse.h"

#define USERS 3000

/* Keeps every credential but those of users whose number ends in 7. */
static bool
keep_cb(void *arg, const char *user, const char *label, const char *created)
{
	(void)arg;
	(void)label;
	(void)created;
	return user[strlen(user) - 1] != '7' || strncmp(user, "u", 1) != 0;
}

static void
note_all(struct lastuse *lu, int64_t when)
{
	char user[32], client[32];

	for (int i = 0; i < USERS; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		snprintf(client, sizeof(client), "192.0.2.%d", i % 250);
		lastuse_note(lu, user, NULL, NULL, client, when + i);
		/* an app password of the same user is a credential of its own */
		if (i % 3 == 0)
			lastuse_note(lu, user, "phone", "2026-12-01", NULL, when + i + 1);
	}
}

static void
test_many_credentials(void **state)
{
	char dir[] = "/tmp/sg-test-lastuse-XXXXXX", path[128], err[256], user[32];
	struct lastuse_rec *recs;
	const struct lastuse_rec *r;
	struct lastuse *lu;
	size_t n, want = USERS + USERS / 3 + (USERS % 3 != 0);

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/users.lastuse", dir);
	lu = lastuse_open(path, NULL, NULL);
	note_all(lu, 1000);
	note_all(lu, 5000); /* again: the same records, later times */
	lastuse_close(lu);
	assert_int_equal(lastuse_read(path, &recs, &n, err, sizeof(err)), 0);
	assert_int_equal(n, want);
	r = lastuse_find(recs, n, "u1234", NULL, NULL);
	assert_non_null(r);
	assert_int_equal(r->time, 5000 + 1234);
	assert_string_equal(r->client, "192.0.2.234");
	r = lastuse_find(recs, n, "u1233", "phone", "2026-12-01");
	assert_non_null(r);
	assert_int_equal(r->time, 5000 + 1233 + 1);
	assert_null(lastuse_find(recs, n, "u1234", "phone", "2026-12-01"));
	/* every credential is found (a binary search over the sorted records) */
	for (int i = 0; i < USERS; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		r = lastuse_find(recs, n, user, NULL, NULL);
		assert_non_null(r);
		assert_int_equal(r->time, 5000 + i);
		r = lastuse_find(recs, n, user, "phone", "2026-12-01");
		assert_true(i % 3 == 0 ? r != NULL : r == NULL);
	}
	assert_null(lastuse_find(recs, n, "u", NULL, NULL));
	assert_null(lastuse_find(recs, n, "zzz", NULL, NULL));
	assert_null(lastuse_find(recs, n, "", NULL, NULL));
	lastuse_recs_free(recs, n);

	/* reopened (the index made from the file), pruned at the write, noted
	 * again: still one record per credential */
	lu = lastuse_open(path, keep_cb, NULL);
	lastuse_note(lu, "u5", NULL, NULL, "198.51.100.5", 9000);
	lastuse_close(lu);
	assert_int_equal(lastuse_read(path, &recs, &n, err, sizeof(err)), 0);
	for (size_t i = 0; i < n; i++) {
		const char *u = recs[i].user;

		assert_true(u[strlen(u) - 1] != '7');
	}
	assert_true(n < want && n > want / 2);
	r = lastuse_find(recs, n, "u5", NULL, NULL);
	assert_non_null(r);
	assert_int_equal(r->time, 9000);
	lastuse_recs_free(recs, n);
	lu = lastuse_open(path, NULL, NULL);
	for (int i = 0; i < USERS; i += 7) {
		snprintf(user, sizeof(user), "u%d", i);
		lastuse_note(lu, user, NULL, NULL, NULL, 20000 + i);
	}
	lastuse_close(lu);
	assert_int_equal(lastuse_read(path, &recs, &n, err, sizeof(err)), 0);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++)
			assert_false(strcmp(recs[i].user, recs[j].user) == 0 &&
			    strcmp(recs[i].label, recs[j].label) == 0);
	}
	r = lastuse_find(recs, n, "u7", NULL, NULL); /* pruned, then noted anew */
	assert_non_null(r);
	assert_int_equal(r->time, 20007);
	lastuse_recs_free(recs, n);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* A file in no order, with a credential twice (damaged, or written by
 * hand): every record is found, and of the two the later use. */
static void
test_read_unsorted(void **state)
{
	char dir[] = "/tmp/sg-test-lastuse-XXXXXX", path[128], err[256];
	const char *text = "{\"credentials\": ["
	                   "{\"user\": \"zed\", \"time\": 5},"
	                   "{\"user\": \"amy\", \"label\": \"phone\", \"created\": \"2026-01-02\", "
	                   "\"time\": 7, \"client\": \"192.0.2.7\"},"
	                   "{\"user\": \"amy\", \"time\": 3},"
	                   "{\"user\": \"bob\", \"time\": 1},"
	                   "{\"user\": \"amy\", \"time\": 9, \"client\": \"192.0.2.9\"},"
	                   "{\"user\": \"amy\", \"time\": 4}"
	                   "]}";
	struct lastuse_rec *recs;
	const struct lastuse_rec *r;
	size_t n;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/users.lastuse", dir);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(lastuse_read(path, &recs, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 6);
	r = lastuse_find(recs, n, "amy", NULL, NULL);
	assert_non_null(r);
	assert_int_equal(r->time, 9);
	assert_string_equal(r->client, "192.0.2.9");
	r = lastuse_find(recs, n, "amy", "phone", "2026-01-02");
	assert_non_null(r);
	assert_int_equal(r->time, 7);
	assert_null(lastuse_find(recs, n, "amy", "phone", NULL));
	assert_int_equal(lastuse_find(recs, n, "bob", NULL, NULL)->time, 1);
	assert_int_equal(lastuse_find(recs, n, "zed", NULL, NULL)->time, 5);
	assert_null(lastuse_find(recs, n, "carl", NULL, NULL));
	lastuse_recs_free(recs, n);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_many_credentials),
	    cmocka_unit_test(test_read_unsorted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
