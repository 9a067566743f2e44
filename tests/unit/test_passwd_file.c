/*
 * Unit tests for auth/passwd_file: good and bad lines (errors name
 * file:line), several lines per user, extra fields and comments preserved
 * on rewrite, atomic save keeping the mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "auth/passwd_file.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

/* "pencil" with the salt of RFC 7677 3 and RFC 5802 5 */
#define S256                                                                                       \
	"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define S1 "4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,D+CSWLOshSulAsxiupA+qs2/fTE="
#define SHA512                                                                                     \
	"{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
#define BLF "{BLF-CRYPT}$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"

static struct passwd_file *
parse(const char *text, char *err, size_t errlen)
{
	err[0] = '\0';
	return passwd_file_parse_text("/etc/smtpgate/passwd", text, strlen(text), err, errlen);
}

static void
test_good_lines(void **state)
{
	static const struct {
		const char *line;
		const char *user;
		enum pwscheme scheme;
		const char *label; /* NULL: none */
		bool locked;
	} good[] = {
	    {"alice:" S256, "alice", PWSCHEME_SCRAM_SHA256, NULL, false},
	    {"alice@example.org:" S256 "::::::scram1=" S1 " label=phone", "alice@example.org",
	        PWSCHEME_SCRAM_SHA256, "phone", false},
	    {"bob:" SHA512 ":1000:1000:Bob B:/home/bob:/bin/sh", "bob", PWSCHEME_SHA512_CRYPT, NULL,
	        false},
	    {"bob:" SHA512 ":locked=yes", "bob", PWSCHEME_SHA512_CRYPT, NULL, true},
	    {"carol:" BLF ":::::: locked=no  label=x ", "carol", PWSCHEME_BLF_CRYPT, "x", false},
	    {"dave:{ARGON2ID}$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4:::::::nopassword",
	        "dave", PWSCHEME_ARGON2ID, NULL, false},
	    {"erin:" S256 "\r", "erin", PWSCHEME_SCRAM_SHA256, NULL, false},
	    {"Ünïcode@例え.jp:" S256 ":created=1700000000 expires=1800000000", "Ünïcode@例え.jp",
	        PWSCHEME_SCRAM_SHA256, NULL, false},
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char err[256];
		struct passwd_file *pf = parse(good[i].line, err, sizeof(err));
		const char *label;

		if (pf == NULL)
			fail_msg("line %zu: %s", i, err);
		assert_int_equal(pf->nentries, 1);
		assert_string_equal(pf->entries[0].user, good[i].user);
		assert_int_equal(pf->entries[0].scheme, good[i].scheme);
		assert_int_equal(pf->entries[0].line, 1);
		label = passwd_entry_get(&pf->entries[0], "label");
		if (good[i].label == NULL)
			assert_null(label);
		else
			assert_string_equal(label, good[i].label);
		assert_int_equal(passwd_entry_is_locked(&pf->entries[0]), good[i].locked);
		passwd_file_free(pf);
	}
}

static void
test_bad_lines(void **state)
{
	static const struct {
		const char *text;
		const char *err;
	} bad[] = {
	    {"alice\n", "/etc/smtpgate/passwd:1: expected user:{SCHEME}data"},
	    {"# c\n\nalice:\n", "/etc/smtpgate/passwd:3: empty password field"},
	    {"alice:secret\n", "/etc/smtpgate/passwd:1: password must start with {SCHEME}"},
	    {"alice:{PLAIN}secret\n", "/etc/smtpgate/passwd:1: unsupported password scheme"},
	    {":" S256 "\n", "/etc/smtpgate/passwd:1: bad user name"},
	    {"al ice:" S256 "\n", "/etc/smtpgate/passwd:1: bad user name"},
	    {"ok:" S256 "\nal\tice:" S256 "\n", "/etc/smtpgate/passwd:2: control character"},
	    {"alice:{SCRAM-SHA-256}4096,xx,yy,zz\n", "/etc/smtpgate/passwd:1: bad SCRAM salt"},
	    {"alice:" S256 ":locked=maybe\n", "/etc/smtpgate/passwd:1: locked must be yes or no"},
	    {"alice:" S256 ":created=yesterday\n", "/etc/smtpgate/passwd:1: created and expires"},
	    {"alice:" S256 ":expires=\n", "/etc/smtpgate/passwd:1: created and expires"},
	    {"alice:" S256 ":label=\n", "/etc/smtpgate/passwd:1: label must have"},
	    {"alice:" S256 ":scram1=1,2,3\n", "/etc/smtpgate/passwd:1: scram1 must be"},
	    {"alice:" S256 "::::::label=a label=b\n", "/etc/smtpgate/passwd:1: duplicate extra"},
	    {"alice:" S256 "::::::=x\n", "/etc/smtpgate/passwd:1: empty extra field key"},
	    {"alice:" S256 ":10 00\n", "/etc/smtpgate/passwd:1: white space in a positional"},
	    {"alice:" SHA512 " x\n", "/etc/smtpgate/passwd:1: white space in password"},
	    {"a\0b:" S256 "\n", "/etc/smtpgate/passwd:1: NUL byte"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256];
		size_t len = strlen(bad[i].text);
		struct passwd_file *pf;

		/* the NUL case: measure past the embedded NUL */
		if (strncmp(bad[i].text, "a\0b", 3) == 0)
			len = 2 + strlen(bad[i].text + 2);
		err[0] = '\0';
		pf = passwd_file_parse_text(
		    "/etc/smtpgate/passwd", bad[i].text, len, err, sizeof(err));
		if (pf != NULL)
			fail_msg("case %zu accepted", i);
		if (strncmp(err, bad[i].err, strlen(bad[i].err)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err, bad[i].err);
	}
}

static void
test_several_lines_per_user(void **state)
{
	const char text[] = "# users\n"
	                    "alice:" S256 "\n"
	                    "bob:" BLF "\n"
	                    "alice:" SHA512 "::::::label=phone created=1700000000\n"
	                    "alice:" BLF "::::::label=old locked=yes\n"
	                    "alicex:" BLF "\n"
	                    "Alice:" BLF "\n";
	char err[256];
	struct passwd_file *pf = parse(text, err, sizeof(err));
	struct passwd_entry *e;
	size_t pos = 0, n = 0;
	int lines[3] = {2, 4, 5};

	assert_non_null(pf);
	/* exact match: neither "alicex" nor "Alice" */
	while ((e = passwd_file_next(pf, "alice", 5, &pos)) != NULL) {
		assert_string_equal(e->user, "alice");
		assert_int_equal(e->line, lines[n]);
		n++;
	}
	assert_int_equal(n, 3);
	assert_true(passwd_file_has_user(pf, "Alice"));
	assert_false(passwd_file_has_user(pf, "ALICE"));
	pos = 0;
	e = passwd_file_next(pf, "alice", 5, &pos);
	assert_true(passwd_entry_is_active(e, 0));
	e = passwd_file_next(pf, "alice", 5, &pos);
	e = passwd_file_next(pf, "alice", 5, &pos);
	assert_false(passwd_entry_is_active(e, 0));
	passwd_file_free(pf);
}

static void
test_expiry_and_scram_keys(void **state)
{
	char err[256];
	struct passwd_file *pf =
	    parse("a:" S256 "::::::expires=1000 scram1=" S1 "\n", err, sizeof(err));
	struct pwscheme_scram k;

	assert_non_null(pf);
	assert_false(passwd_entry_is_expired(&pf->entries[0], 999));
	assert_true(passwd_entry_is_expired(&pf->entries[0], 1000));
	assert_true(passwd_entry_is_active(&pf->entries[0], 999));
	assert_false(passwd_entry_is_active(&pf->entries[0], 1001));
	assert_int_equal(passwd_entry_scram_keys(&pf->entries[0], PWSCHEME_SCRAM_SHA256, &k), 0);
	assert_int_equal(k.keylen, 32);
	assert_int_equal(passwd_entry_scram_keys(&pf->entries[0], PWSCHEME_SCRAM_SHA1, &k), 0);
	assert_int_equal(k.keylen, 20);
	assert_int_equal(k.saltlen, 12);
	passwd_file_free(pf);
}

static void
test_rewrite_preserves(void **state)
{
	const char text[] = "# managed by smtpgate user\n"
	                    "\n"
	                    "alice:" S256 ":locked=no:future=1 nopassword\n"
	                    "bob:" SHA512 ":1000:1000:Bob B:/home/bob\n"
	                    "carol:" BLF ":::::::zz=1 label=x\n";
	const char want[] = "# managed by smtpgate user\n"
	                    "\n"
	                    "alice:" S256 "::::::locked=no future=1 nopassword\n"
	                    "bob:" SHA512 ":1000:1000:Bob B:/home/bob\n"
	                    "carol:" BLF "::::::zz=1 label=x\n";
	char err[256];
	struct passwd_file *pf = parse(text, err, sizeof(err)), *again;
	struct buf b, b2;
	const char *errstr;

	assert_non_null(pf);
	buf_init(&b, 1 << 20);
	assert_int_equal(passwd_file_format(pf, &b), 0);
	assert_string_equal(b.data, want);
	/* the canonical form is a fixed point */
	again = parse(b.data, err, sizeof(err));
	assert_non_null(again);
	buf_init(&b2, 1 << 20);
	assert_int_equal(passwd_file_format(again, &b2), 0);
	assert_string_equal(b2.data, want);
	/* edits keep unknown keys and their order */
	assert_int_equal(passwd_entry_set(&pf->entries[2], "locked", "yes", &errstr), 0);
	assert_int_equal(passwd_entry_set(&pf->entries[2], "label", "new", &errstr), 0);
	passwd_entry_unset(&pf->entries[4], "zz");
	assert_int_equal(passwd_entry_set(&pf->entries[4], "bad key", "v", &errstr), -1);
	assert_int_equal(passwd_entry_set(&pf->entries[4], "k", "a:b", &errstr), -1);
	buf_reset(&b);
	assert_int_equal(passwd_file_format(pf, &b), 0);
	assert_non_null(
	    strstr(b.data, "alice:" S256 "::::::locked=yes future=1 nopassword label=new\n"));
	assert_non_null(strstr(b.data, "carol:" BLF "::::::label=x\n"));
	buf_free(&b);
	buf_free(&b2);
	passwd_file_free(again);
	passwd_file_free(pf);
}

static void
test_add_remove_save(void **state)
{
	char dir[] = "/tmp/test_passwd_file.XXXXXX", path[256], err[256];
	struct passwd_file *pf;
	struct passwd_entry *e;
	const char *errstr;
	struct stat st;
	char *text;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/passwd", dir);
	assert_null(passwd_file_load(path, false, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot read"));
	pf = passwd_file_load(path, true, err, sizeof(err));
	assert_non_null(pf);
	assert_false(pf->exists);
	assert_null(passwd_file_add(pf, "bad user", S256, &errstr));
	assert_null(passwd_file_add(pf, "u", "{PLAIN}x", &errstr));
	assert_int_equal(pf->nentries, 0);
	e = passwd_file_add(pf, "u", S256, &errstr);
	assert_non_null(e);
	assert_int_equal(passwd_entry_set(e, "created", "1700000000", &errstr), 0);
	assert_non_null(passwd_file_add(pf, "v", BLF, &errstr));
	assert_int_equal(passwd_file_save(pf, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	passwd_file_free(pf);

	/* an existing file keeps its mode */
	assert_int_equal(chmod(path, 0640), 0);
	pf = passwd_file_load(path, false, err, sizeof(err));
	assert_non_null(pf);
	assert_int_equal(pf->nentries, 2);
	passwd_file_remove(pf, 0);
	assert_int_equal(passwd_file_save(pf, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	text = fs_read_file(path, 4096, NULL);
	assert_string_equal(text, "v:" BLF "\n");
	free(text);
	passwd_file_free(pf);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_lines),
	    cmocka_unit_test(test_bad_lines),
	    cmocka_unit_test(test_several_lines_per_user),
	    cmocka_unit_test(test_expiry_and_scram_keys),
	    cmocka_unit_test(test_rewrite_preserves),
	    cmocka_unit_test(test_add_remove_save),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
