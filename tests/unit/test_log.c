/*
 * Unit tests for lib/log: the escaped form of strings that are not UTF-8
 * (a table of valid, overlong, surrogate, truncated and stray bytes, and a
 * round trip over random bytes), and whole events written to a file and
 * read back with jansson: every field kept whatever bytes a peer sent, one
 * line per event, NULL and over-long arguments costing one field only.
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

#include <jansson.h>

#include "lib/buf.h"
#include "lib/log.h"

#define S(x) x, sizeof(x) - 1

static const struct {
	const char *in;
	size_t inlen;
	const char *out;
	const char *what;
} escapes[] = {
    {S(""), "", "empty"},
    {S("alice@example.test"), "alice@example.test", "ASCII"},
    {S("j\xc3\xb6rg"), "j\xc3\xb6rg", "valid 2-byte (U+00F6)"},
    {S("\xe2\x82\xac"), "\xe2\x82\xac", "valid 3-byte (U+20AC)"},
    {S("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80", "valid 4-byte (U+1F600)"},
    {S("\xed\x9f\xbf"), "\xed\x9f\xbf", "U+D7FF, last before the surrogates"},
    {S("\xee\x80\x80"), "\xee\x80\x80", "U+E000, first after the surrogates"},
    {S("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf", "U+10FFFF, the last code point"},
    {S("\xef\xbf\xbd"), "\xef\xbf\xbd", "U+FFFD itself"},
    {S("j\xf6rg"), "j\\xf6rg", "Latin-1"},
    {S("\xff\xfe"
       "admin"),
        "\\xff\\xfeadmin", "0xFF 0xFE"},
    {S("\xff"), "\\xff", "0xFF"},
    {S("\xf5\x80\x80\x80"), "\\xf5\\x80\\x80\\x80", "F5: past U+10FFFF"},
    {S("\xf8\x88\x80\x80\x80"), "\\xf8\\x88\\x80\\x80\\x80", "5-byte form"},
    {S("\xc0\xaf"), "\\xc0\\xaf", "overlong '/' in 2 bytes"},
    {S("\xc1\xbf"), "\\xc1\\xbf", "overlong C1"},
    {S("\xc0\x80"), "\\xc0\\x80", "overlong NUL"},
    {S("\xe0\x80\xaf"), "\\xe0\\x80\\xaf", "overlong '/' in 3 bytes"},
    {S("\xe0\x9f\xbf"), "\\xe0\\x9f\\xbf", "overlong U+07FF"},
    {S("\xf0\x80\x80\xaf"), "\\xf0\\x80\\x80\\xaf", "overlong '/' in 4 bytes"},
    {S("\xf0\x8f\xbf\xbf"), "\\xf0\\x8f\\xbf\\xbf", "overlong U+FFFF"},
    {S("\xed\xa0\x80"), "\\xed\\xa0\\x80", "high surrogate U+D800"},
    {S("\xed\xbf\xbf"), "\\xed\\xbf\\xbf", "low surrogate U+DFFF"},
    {S("\xed\xa0\xbd\xed\xb8\x80"), "\\xed\\xa0\\xbd\\xed\\xb8\\x80", "CESU-8 surrogate pair"},
    {S("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80", "U+110000"},
    {S("\xe2\x82"), "\\xe2\\x82", "3-byte cut at the end"},
    {S("\xe2\x82"
       "a"),
        "\\xe2\\x82"
        "a",
        "3-byte cut by ASCII"},
    {S("\xf0\x9f\x98"), "\\xf0\\x9f\\x98", "4-byte cut at the end"},
    {S("\xc3"), "\\xc3", "lead byte alone"},
    {S("\xc3\xc3\xb6"), "\\xc3\xc3\xb6", "lead byte, then a valid sequence"},
    {S("\x80"), "\\x80", "lone continuation byte"},
    {S("a\xbf"
       "b"),
        "a\\xbf"
        "b",
        "continuation byte inside ASCII"},
    {S("\xb6\xc3\xb6\xb6"), "\\xb6\xc3\xb6\\xb6", "stray continuations around a valid one"},
    {S("a\0b"), "a\\x00b", "NUL"},
    {S("\0"), "\\x00", "NUL alone"},
    {S("a\nb\r\t\x1b[31m"), "a\nb\r\t\x1b[31m", "controls: JSON's to escape"},
    {S("DOMAIN\\user"), "DOMAIN\\user", "backslash kept"},
    {S("end\\"), "end\\", "backslash at the end"},
    {S("\\xff"), "\\x5cxff", "literal \\x: backslash escaped"},
    {S("\\\\x"), "\\\\x5cx", "backslash, backslash-x"},
    {S("\\\xff"), "\\\\xff", "backslash, then 0xFF"},
    {S("\\X41"), "\\X41", "upper-case X is not an escape"},
};

static int
test_hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The inverse of log_escape: every \xHH back to byte HH. */
static size_t
test_unescape(const char *p, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\' && i + 3 < n && p[i + 1] == 'x' && test_hex(p[i + 2]) >= 0 &&
		    test_hex(p[i + 3]) >= 0) {
			out[o++] = (char)(test_hex(p[i + 2]) * 16 + test_hex(p[i + 3]));
			i += 3;
		} else {
			out[o++] = p[i];
		}
	}
	return o;
}

static void
test_escape_table(void **state)
{
	for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
		struct buf b;
		char back[256];
		size_t n;

		buf_init(&b, 1024);
		assert_int_equal(log_escape(escapes[i].in, escapes[i].inlen, 1024, &b), 0);
		if (b.len != strlen(escapes[i].out) ||
		    memcmp(b.data != NULL ? b.data : "", escapes[i].out, b.len) != 0)
			fail_msg("%s: got \"%.*s\", want \"%s\"", escapes[i].what, (int)b.len,
			    b.data != NULL ? b.data : "", escapes[i].out);
		/* what jansson takes as a string, and gives back the input */
		json_t *j = json_stringn(b.data != NULL ? b.data : "", b.len);
		assert_non_null(j);
		json_decref(j);
		assert_null(memchr(b.data != NULL ? b.data : "", '\0', b.len));
		n = test_unescape(b.data != NULL ? b.data : "", b.len, back);
		assert_int_equal(n, escapes[i].inlen);
		assert_memory_equal(back, escapes[i].in, n);
		buf_free(&b);
	}
}

/* Byte at a time does not apply (one call, whole input); instead random
 * inputs: valid for jansson, no NUL, and the round trip gives the bytes. */
static void
test_escape_roundtrip_random(void **state)
{
	static const unsigned char pick[] = {0x00, 0x5c, 'x', 'a', 0x7f, 0x80, 0xbf, 0xc0, 0xc2,
	    0xc3, 0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x9f, 0xa0, 0x8f, 0x90};
	unsigned seed = 12345;

	for (int round = 0; round < 20000; round++) {
		unsigned char in[24];
		char back[24];
		size_t n = (size_t)(rand_r(&seed) % (int)sizeof(in));
		struct buf b;

		for (size_t i = 0; i < n; i++)
			in[i] = rand_r(&seed) % 2 ? pick[rand_r(&seed) % sizeof(pick)]
			                          : (unsigned char)rand_r(&seed);
		buf_init(&b, 4 * sizeof(in));
		assert_int_equal(log_escape((const char *)in, n, b.max, &b), 0);
		json_t *j = json_stringn(b.data != NULL ? b.data : "", b.len);
		assert_non_null(j);
		json_decref(j);
		assert_null(memchr(b.data != NULL ? b.data : "", '\0', b.len));
		assert_int_equal(test_unescape(b.data != NULL ? b.data : "", b.len, back), n);
		assert_memory_equal(back, in, n);
		buf_free(&b);
	}
}

static void
test_escape_max_whole_characters(void **state)
{
	struct buf b;

	buf_init(&b, 64);
	/* "\xff" needs 4 bytes: 6 holds one, not two */
	assert_int_equal(log_escape(S("\xff\xff"), 6, &b), -1);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "\\xff", 4);
	buf_reset(&b);
	/* a 4-byte character is not split */
	assert_int_equal(log_escape(S("ab\xf0\x9f\x98\x80"), 5, &b), -1);
	assert_int_equal(b.len, 2);
	buf_reset(&b);
	assert_int_equal(log_escape(S("ab\xf0\x9f\x98\x80"), 6, &b), 0);
	assert_int_equal(b.len, 6);
	buf_free(&b);
}

/* --- whole events ----------------------------------------------------------- */

static char log_file[] = "/tmp/test_log.XXXXXX";

static int
test_setup(void **state)
{
	int fd = mkstemp(log_file);

	if (fd == -1)
		return -1;
	close(fd);
	if (log_open(log_file) == -1)
		return -1;
	log_set_level(LOG_INFO);
	return 0;
}

static int
test_teardown(void **state)
{
	(void)!log_open("stderr");
	unlink(log_file);
	return 0;
}

/* The lines written since the last call, each parsed; returns how many. */
static size_t
test_read_lines(json_t **lines, size_t max)
{
	static long done;
	FILE *f = fopen(log_file, "r");
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;

	assert_non_null(f);
	assert_int_equal(fseek(f, done, SEEK_SET), 0);
	while ((len = getline(&line, &cap, f)) > 0) {
		json_error_t err;

		done += len;
		assert_true(line[len - 1] == '\n');
		/* no raw control byte or non-ASCII inside a line */
		for (ssize_t i = 0; i < len - 1; i++)
			assert_true(
			    (unsigned char)line[i] >= 0x20 && (unsigned char)line[i] < 0x80);
		assert_true(n < max);
		lines[n] = json_loads(line, JSON_REJECT_DUPLICATES, &err);
		if (lines[n] == NULL)
			fail_msg("not JSON: %s (%s)", line, err.text);
		n++;
	}
	free(line);
	fclose(f);
	return n;
}

static const char *
test_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_non_null(v);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static const struct {
	const char *user;
	size_t len;
	const char *logged;
} users[] = {
    {S("alice@example.test"), "alice@example.test"},
    {S("\xff\xfe"
       "admin"),
        "\\xff\\xfeadmin"},
    {S("j\xf6rg"), "j\\xf6rg"},
    {S("j\xc3\xb6rg"), "j\xc3\xb6rg"},
    {S("\xed\xa0\x80"), "\\xed\\xa0\\x80"},
    {S("\xc0\x80root"), "\\xc0\\x80root"},
    {S("a\nb"), "a\nb"},
};

/* The auth event as session.c writes it: every field whatever the user. */
static void
test_event_auth_keeps_every_field(void **state)
{
	json_t *lines[16];

	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		log_event(LOG_NOTICE, "auth", 7, "{s:s, s:s, s:s, s:i, s:s}", "mechanism", "PLAIN",
		    "user", users[i].user, "result", "fail", "code", 535, "client", "192.0.2.1");
		assert_int_equal(test_read_lines(lines, 16), 1);
		assert_string_equal(test_str(lines[0], "event"), "auth");
		assert_string_equal(test_str(lines[0], "mechanism"), "PLAIN");
		assert_string_equal(test_str(lines[0], "user"), users[i].logged);
		assert_string_equal(test_str(lines[0], "result"), "fail");
		assert_string_equal(test_str(lines[0], "client"), "192.0.2.1");
		assert_int_equal(json_integer_value(json_object_get(lines[0], "code")), 535);
		assert_int_equal(json_integer_value(json_object_get(lines[0], "session")), 7);
		assert_null(json_object_get(lines[0], "log_error"));
		json_decref(lines[0]);
	}
}

/* A peer string cannot add a line or a member: newlines and quotes stay
 * inside the one string (JSON escaping), a NUL given with a length is
 * escaped rather than cutting the value for a reader. */
static void
test_event_no_forged_lines(void **state)
{
	static const char evil[] =
	    "x\",\"client\":\"203.0.113.9\"}\n{\"ts\":\"2030-01-01T00:00:00Z\","
	    "\"event\":\"auth\",\"result\":\"fail\",\"code\":535,"
	    "\"client\":\"203.0.113.9\"}\r\n\0tail";
	json_t *lines[4];

	log_event(LOG_NOTICE, "auth", 1, "{s:s#, s:s%, s:s, s:s}", "user", evil,
	    (int)(sizeof(evil) - 1), "helo", evil, sizeof(evil) - 1, "result", "fail", "client",
	    "192.0.2.2");
	assert_int_equal(test_read_lines(lines, 4), 1);
	assert_string_equal(test_str(lines[0], "client"), "192.0.2.2");
	assert_non_null(strstr(test_str(lines[0], "user"), "\\x00tail"));
	assert_int_equal(strlen(test_str(lines[0], "user")), sizeof(evil) - 1 + 3);
	assert_string_equal(test_str(lines[0], "user"), test_str(lines[0], "helo"));
	json_decref(lines[0]);
}

/* NULL arguments and the other specifiers, with jansson's meaning; a NULL
 * for a plain s costs that field, not the event. */
static void
test_event_specifiers(void **state)
{
	json_t *lines[4], *o;

	log_event(LOG_INFO, "t", 0, "{s:s?, s:s*, s:s, s:b, s:I, s:f, s:n, s:o, s:O, s:s+%, s:o*}",
	    "opt", (const char *)NULL, "skipped", (const char *)NULL, "bad", (const char *)NULL,
	    "flag", 1, "big", (json_int_t)1 << 40, "real", 0.5, "none", "arr",
	    json_pack("[i, s]", 1, "a"), "kept", o = json_string("k"), "joined", "ab\\", "x\xff",
	    (size_t)2, "noobj", (json_t *)NULL);
	assert_int_equal(test_read_lines(lines, 4), 1);
	assert_true(json_is_null(json_object_get(lines[0], "opt")));
	assert_null(json_object_get(lines[0], "skipped"));
	assert_true(json_is_null(json_object_get(lines[0], "bad")));
	assert_string_equal(test_str(lines[0], "log_error"), "NULL string");
	assert_true(json_is_true(json_object_get(lines[0], "flag")));
	assert_int_equal(json_integer_value(json_object_get(lines[0], "big")), (json_int_t)1 << 40);
	assert_true(json_real_value(json_object_get(lines[0], "real")) == 0.5);
	assert_true(json_is_null(json_object_get(lines[0], "none")));
	assert_int_equal(json_array_size(json_object_get(lines[0], "arr")), 2);
	assert_string_equal(test_str(lines[0], "kept"), "k");
	/* pieces are joined before escaping: "\" + "x" is one \x */
	assert_string_equal(test_str(lines[0], "joined"), "ab\\x5cx\\xff");
	assert_null(json_object_get(lines[0], "noobj"));
	json_decref(lines[0]);
	json_decref(o);

	/* nested, and the caller's own escaped string */
	o = log_json_string(S("\xff"));
	log_event(LOG_INFO, "t", 0, "{s:{s:s, s:[s, i]}, s:o}", "in", "u", "\xc3\x28", "l", "ok", 3,
	    "own", o);
	assert_int_equal(test_read_lines(lines, 4), 1);
	assert_string_equal(test_str(json_object_get(lines[0], "in"), "u"), "\\xc3(");
	assert_string_equal(test_str(lines[0], "own"), "\\xff");
	json_decref(lines[0]);

	/* a broken format: what was read is kept, the error named */
	log_event(LOG_INFO, "t", 0, "{s:s, s:Q}", "a", "b", "c");
	assert_int_equal(test_read_lines(lines, 4), 1);
	assert_string_equal(test_str(lines[0], "a"), "b");
	assert_non_null(strstr(test_str(lines[0], "log_error"), "bad format"));
	json_decref(lines[0]);
}

static void
test_event_long_string_cut(void **state)
{
	size_t n = LOG_STRING_MAX + 100;
	char *big = malloc(n);
	json_t *lines[4];
	const char *v;

	assert_non_null(big);
	memset(big, 0xff, n);
	log_event(LOG_INFO, "t", 0, "{s:s#, s:s}", "big", big, (int)n, "client", "192.0.2.3");
	assert_int_equal(test_read_lines(lines, 4), 1);
	v = test_str(lines[0], "big");
	assert_true(strlen(v) <= LOG_STRING_MAX + 3);
	assert_int_equal(strlen(v) % 4, 3); /* whole "\xff" escapes, then "..." */
	assert_string_equal(v + strlen(v) - 3, "...");
	assert_string_equal(test_str(lines[0], "client"), "192.0.2.3");
	assert_non_null(strstr(test_str(lines[0], "log_error"), "cut"));
	json_decref(lines[0]);
	free(big);
}

/* Below the level nothing is written, and an o argument is still released
 * (LeakSanitizer would report it). */
static void
test_event_filtered_releases_objects(void **state)
{
	json_t *lines[2];

	log_set_level(LOG_ERR);
	log_event(LOG_INFO, "t", 0, "{s:s, s:o}", "a", "\xff", "ids", json_pack("[s]", "q1"));
	log_set_level(LOG_INFO);
	assert_int_equal(test_read_lines(lines, 2), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape_table),
	    cmocka_unit_test(test_escape_roundtrip_random),
	    cmocka_unit_test(test_escape_max_whole_characters),
	    cmocka_unit_test(test_event_auth_keeps_every_field),
	    cmocka_unit_test(test_event_no_forged_lines),
	    cmocka_unit_test(test_event_specifiers),
	    cmocka_unit_test(test_event_long_string_cut),
	    cmocka_unit_test(test_event_filtered_releases_objects),
	};

	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
