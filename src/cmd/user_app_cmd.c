/*
 * user_app_cmd: `smtpgate user app-password add|del USER LABEL`
 * (user_cmd_priv.h).
 *
 * App passwords are generated here (RAND_bytes, USER_APP_CMD_PW_CHARS
 * symbols of an alphabet without look-alikes, grouped with '-'), stored as
 * SCRAM keys that share the salt of the user's other credentials, printed
 * once as the last line of stdout after the file is durably written, and
 * wiped. --expires takes a date (valid through that day, UTC) or an
 * instant.
 */
#include "cmd/user_cmd_priv.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "auth/passwd_file.h"
#include "auth/pwscheme.h"
#include "lib/buf.h"

/* App passwords: 20 symbols of 32 (5 bits each: 100 bits), in groups of 4. */
#define USER_APP_CMD_PW_CHARS 20
#define USER_APP_CMD_PW_GROUP 4
#define USER_APP_CMD_PW_ALPHABET "abcdefghijkmnpqrstuvwxyz23456789" /* no l 1 o 0 */

/* Days since 1970-01-01 of a proleptic Gregorian date (no time zone). */
static int64_t
user_app_cmd_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/*
 * --expires: "YYYY-MM-DD" means valid through that day (UTC): it expires
 * at the following midnight UTC. "YYYY-MM-DDTHH:MM[:SS]" with an optional
 * "Z" or "+HH:MM"/"-HH:MM" (no zone: UTC) is that instant. -1 if malformed.
 */
static int
user_app_cmd_parse_expires(const char *s, int64_t *t_r)
{
	unsigned y, mo, d, h = 0, mi = 0, sec = 0, zh = 0, zm = 0;
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int n = 0, off = 0;
	const char *p;

	if (sscanf(s, "%4u-%2u-%2u%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || y < 1970 ||
	    (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
		return -1;
	p = s + 10;
	if (*p == '\0') {
		*t_r = (user_app_cmd_days_from_civil(y, mo, d) + 1) * 86400;
		return 0;
	}
	if ((*p != 'T' && *p != ' ') || sscanf(p + 1, "%2u:%2u%n", &h, &mi, &n) != 2 || n != 5)
		return -1;
	p += 6;
	if (*p == ':') {
		if (sscanf(p + 1, "%2u%n", &sec, &n) != 1 || n != 2)
			return -1;
		p += 3;
	}
	if (h > 23 || mi > 59 || sec > 60)
		return -1;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		if (sscanf(p + 1, "%2u:%2u%n", &zh, &zm, &n) != 2 || n != 5 || zh > 23 || zm > 59)
			return -1;
		off = (int)(zh * 3600 + zm * 60) * (*p == '-' ? -1 : 1);
		p += 6;
	}
	if (*p != '\0')
		return -1;
	*t_r = user_app_cmd_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	return 0;
}

/* A new app password into the secret buffer b: USER_APP_CMD_PW_CHARS symbols
 * (5 random bits each, no modulo bias), '-' every USER_APP_CMD_PW_GROUP. */
static int
user_app_cmd_make_password(struct buf *b)
{
	unsigned char rnd[USER_APP_CMD_PW_CHARS];
	static const char alphabet[] = USER_APP_CMD_PW_ALPHABET;
	int r = -1;

	_Static_assert(sizeof(alphabet) - 1 == 32, "5 bits per symbol");
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto fail;
	for (size_t i = 0; i < sizeof(rnd); i++) {
		char c = alphabet[rnd[i] & 31];

		if ((i > 0 && i % USER_APP_CMD_PW_GROUP == 0 && buf_append(b, "-", 1) == -1) ||
		    buf_append(b, &c, 1) == -1)
			goto fail;
	}
	r = 0;
fail:
	explicit_bzero(rnd, sizeof(rnd));
	return r;
}

static int
user_app_cmd_add(const struct user_cmd_opts *o)
{
	struct passwd_file *pf = NULL;
	struct passwd_entry *e;
	struct user_cmd_opts ho = *o;
	const char *errstr;
	struct buf pw, cred, scram1;
	int64_t expires = 0;
	char when[64], num[32];
	int r = USER_CMD_USAGE;

	buf_init(&pw, PWSCHEME_PASSWORD_MAX);
	buf_set_secret(&pw);
	buf_init(&cred, 4096);
	buf_init(&scram1, 4096);
	if (o->expires != NULL && user_app_cmd_parse_expires(o->expires, &expires) == -1) {
		user_cmd_err("--expires: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM], "
		             "not \"%s\"",
		    o->expires);
		goto fail;
	}
	if (user_cmd_lock_dir(o->file) == -1) {
		r = USER_CMD_FAILED;
		goto fail;
	}
	if ((pf = user_cmd_load(o, false)) == NULL)
		goto fail;
	r = USER_CMD_FAILED;
	if (!passwd_file_has_user(pf, o->user)) {
		user_cmd_err("%s: no such user (add the user before an app password)", o->user);
		goto fail;
	}
	for (size_t i = 0; i < pf->nentries; i++) {
		if (user_cmd_entry_matches(&pf->entries[i], o->user, o->label)) {
			user_cmd_err(
			    "%s: app password \"%s\" exists (del it first)", o->user, o->label);
			goto fail;
		}
	}
	ho.scheme_given = false; /* SCRAM-SHA-256 + scram1=: works with SCRAM and PLAIN */
	if (user_app_cmd_make_password(&pw) == -1 ||
	    user_password_cmd_hash(&ho, pf, NULL, &pw, &cred, &scram1) == -1) {
		user_cmd_err("cannot make the password");
		goto fail;
	}
	if ((e = passwd_file_add(pf, o->user, cred.data, &errstr)) == NULL) {
		user_cmd_err("%s", errstr);
		goto fail;
	}
	if (passwd_entry_set(e, "label", o->label, &errstr) == -1) {
		user_cmd_err("LABEL: %s", errstr);
		r = USER_CMD_USAGE;
		goto fail;
	}
	if (user_password_cmd_stamp(e, &scram1) == -1)
		goto fail;
	if (o->expires != NULL) {
		snprintf(num, sizeof(num), "%lld", (long long)expires);
		if (passwd_entry_set(e, "expires", num, &errstr) == -1) {
			user_cmd_err("--expires: %s", errstr);
			goto fail;
		}
	}
	if ((r = user_cmd_save(pf)) != USER_CMD_OK)
		goto fail;
	/* the file is durable: only now show the password, once */
	snprintf(num, sizeof(num), "%lld", (long long)expires);
	user_cmd_format_time(o->expires != NULL ? num : NULL, when, sizeof(when));
	printf("app password \"%s\" of %s, expires %s\n", o->label, o->user,
	    o->expires != NULL ? when : "never");
	if (o->expires != NULL && expires <= (int64_t)time(NULL))
		printf("warning: that is in the past: the password cannot be used\n");
	printf("It is shown only this once; the hyphens are part of it:\n");
	printf("%s\n", pw.data);
	if (fflush(stdout) != 0)
		r = USER_CMD_FAILED;
fail:
	buf_free(&pw);
	buf_free(&cred);
	buf_free(&scram1);
	passwd_file_free(pf);
	return r;
}

int
user_app_cmd_run(const struct user_cmd_opts *o)
{
	if (strcmp(o->args[0], "add") == 0)
		return user_app_cmd_add(o);
	/* del: the same as `del USER --label LABEL` */
	return user_cmd_del(o);
}
