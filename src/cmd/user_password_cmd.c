/*
 * user_password_cmd: the subcommands of `smtpgate user` that take a
 * password (add, passwd, verify) and the hashing that app passwords use
 * too (user_cmd_priv.h).
 *
 * Passwords are read from the terminal with echo off or from stdin with
 * read(2) (no stdio buffer keeps a copy), held in wiped buffers, and never
 * printed or logged; only one-way hashes reach the file. A user's SCRAM
 * credentials of one hash share a salt and an iteration count, so that one
 * server-first message serves them all (doc/passwd.5.md).
 */
#include "cmd/user_cmd_priv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "auth/passwd_file.h"
#include "auth/pwscheme.h"
#include "lib/buf.h"

/* Reads one line from fd with read(2) into the secret buffer b (without
 * the line end). -1 on a read error or an over-long line. */
static int
user_password_cmd_read_line(int fd, struct buf *b)
{
	char c;
	ssize_t r;

	for (;;) {
		r = read(fd, &c, 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0 || c == '\n')
			break;
		if (buf_append(b, &c, 1) == -1) {
			c = 0;
			return -1;
		}
	}
	c = 0;
	if (b->len > 0 && b->data[b->len - 1] == '\r')
		b->data[--b->len] = '\0';
	return 0;
}

/* Prompts on the terminal (stdin) with echo off. */
static int
user_password_cmd_read_tty(const char *prompt, struct buf *b)
{
	struct termios old, quiet;
	int r;

	if (tcgetattr(STDIN_FILENO, &old) == -1)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	/* echo off before the prompt, so nothing typed after it is shown */
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == -1)
		return -1;
	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	r = user_password_cmd_read_line(STDIN_FILENO, b);
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	return r;
}

/* The new or checked password into b (secret, limited). confirm: ask twice
 * on a terminal. Returns an exit status. */
static int
user_password_cmd_get_password(const struct user_cmd_opts *o, bool confirm, struct buf *b)
{
	struct buf again;
	int r = USER_CMD_FAILED;

	buf_init(&again, PWSCHEME_PASSWORD_MAX);
	buf_set_secret(&again);
	if (!o->password_stdin && isatty(STDIN_FILENO)) {
		if (user_password_cmd_read_tty("Password: ", b) == -1) {
			user_cmd_err("cannot read the password: %s",
			    errno != 0 ? strerror(errno) : "too long");
			goto fail;
		}
		if (confirm) {
			if (user_password_cmd_read_tty("Again: ", &again) == -1) {
				user_cmd_err("cannot read the password");
				goto fail;
			}
			if (again.len != b->len ||
			    (b->len > 0 && memcmp(again.data, b->data, b->len) != 0)) {
				user_cmd_err("the passwords do not match");
				goto fail;
			}
		}
	} else if (user_password_cmd_read_line(STDIN_FILENO, b) == -1) {
		user_cmd_err("cannot read the password from stdin (at most %d bytes)",
		    PWSCHEME_PASSWORD_MAX);
		goto fail;
	}
	if (b->len == 0) {
		user_cmd_err("empty password");
		goto fail;
	}
	r = USER_CMD_OK;
fail:
	buf_free(&again);
	return r;
}

/*
 * The salt and iteration count that user's SCRAM credentials of scheme s
 * share (doc/passwd.5.md): those of the main line (the first unlabelled
 * line with such keys), else of the first line with such keys; skip (the
 * line being replaced, or NULL) does not count. Locked and expired lines
 * count: they may come back. -1 when there is none.
 */
static int
user_password_cmd_scram_salt(const struct passwd_file *pf, const char *user, enum pwscheme s,
    const struct passwd_entry *skip, struct pwscheme_scram *k_r)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < pf->nentries; i++) {
			const struct passwd_entry *e = &pf->entries[i];

			if (e == skip || !user_cmd_entry_matches(e, user, NULL) ||
			    (pass == 0 && passwd_entry_get(e, "label") != NULL))
				continue;
			if (passwd_entry_scram_keys(e, s, k_r) == 0)
				return 0;
		}
	}
	return -1;
}

/*
 * SCRAM data "ITER,SALT,STOREDKEY,SERVERKEY" of scheme s for pw into out,
 * with the salt and iterations the user's other SCRAM credentials share,
 * so that one server-first serves them all (SCRAM with app passwords);
 * a new random salt when the user has none.
 */
static int
user_password_cmd_scram_data(const struct passwd_file *pf, const char *user,
    const struct passwd_entry *skip, enum pwscheme s, const struct buf *pw, struct buf *out)
{
	struct pwscheme_scram shared, k;
	int r = -1;

	if (pf == NULL || user_password_cmd_scram_salt(pf, user, s, skip, &shared) == -1) {
		explicit_bzero(&shared, sizeof(shared));
		return pwscheme_generate_data(s, pw->data, pw->len, out);
	}
	if (pwscheme_scram_derive(
	        s, pw->data, pw->len, shared.salt, shared.saltlen, shared.iter, &k, NULL) == 0)
		r = pwscheme_scram_format(&k, out);
	explicit_bzero(&shared, sizeof(shared));
	explicit_bzero(&k, sizeof(k));
	return r;
}

/*
 * Hashes the password in pw with the chosen scheme into cred ("{S}data")
 * and, by default (SCRAM-SHA-256 primary), SCRAM-SHA-1 keys into scram1.
 * SCRAM keys take the salt the user's other credentials in pf (skip
 * excepted; pf NULL: none) share, per hash (user_password_cmd_scram_data).
 */
int
user_password_cmd_hash(const struct user_cmd_opts *o, const struct passwd_file *pf,
    const struct passwd_entry *skip, const struct buf *pw, struct buf *cred, struct buf *scram1)
{
	enum pwscheme s = o->scheme_given ? o->scheme : PWSCHEME_SCRAM_SHA256;
	int r;

	if (s == PWSCHEME_SCRAM_SHA256 || s == PWSCHEME_SCRAM_SHA1)
		r = buf_printf(cred, "{%s}", pwscheme_name(s)) == -1 ||
		        user_password_cmd_scram_data(pf, o->user, skip, s, pw, cred) == -1
		    ? -1
		    : 0;
	else
		r = pwscheme_generate(s, pw->data, pw->len, cred);
	if (r == -1 ||
	    (!o->scheme_given &&
	        user_password_cmd_scram_data(pf, o->user, skip, PWSCHEME_SCRAM_SHA1, pw, scram1) ==
	            -1)) {
		user_cmd_err("cannot hash the password");
		return -1;
	}
	return 0;
}

/* Sets scram1= (or removes it) and created=now on e. */
int
user_password_cmd_stamp(struct passwd_entry *e, const struct buf *scram1)
{
	const char *errstr;
	char now[32];

	passwd_entry_unset(e, "scram1");
	if (scram1->len > 0 && passwd_entry_set(e, "scram1", scram1->data, &errstr) == -1)
		goto fail;
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	if (passwd_entry_set(e, "created", now, &errstr) == -1)
		goto fail;
	return 0;
fail:
	user_cmd_err("%s", errstr);
	return -1;
}

int
user_password_cmd_add(const struct user_cmd_opts *o)
{
	struct passwd_file *pf = NULL;
	struct passwd_entry *e;
	const char *errstr;
	struct buf pw, cred, scram1;
	int r = USER_CMD_FAILED;

	buf_init(&pw, PWSCHEME_PASSWORD_MAX);
	buf_set_secret(&pw);
	buf_init(&cred, 4096);
	buf_init(&scram1, 4096);
	if (!passwd_user_is_valid(o->user, strlen(o->user))) {
		user_cmd_err("bad user name (1 to 320 bytes, no ':', white space or control "
		             "characters, not starting with '#')");
		r = USER_CMD_USAGE;
		goto fail;
	}
	if (user_cmd_lock_dir(o->file) == -1)
		goto fail;
	if ((pf = user_cmd_load(o, true)) == NULL) {
		r = USER_CMD_USAGE;
		goto fail;
	}
	if (o->label == NULL && passwd_file_has_user(pf, o->user)) {
		user_cmd_err("%s: user exists (use passwd to change the password)", o->user);
		goto fail;
	}
	if (o->label != NULL) {
		if (!passwd_file_has_user(pf, o->user)) {
			user_cmd_err(
			    "%s: no such user (add the user before an app password)", o->user);
			goto fail;
		}
		for (size_t i = 0; i < pf->nentries; i++) {
			if (user_cmd_entry_matches(&pf->entries[i], o->user, o->label)) {
				user_cmd_err("%s: app password \"%s\" exists", o->user, o->label);
				goto fail;
			}
		}
	}
	if ((r = user_password_cmd_get_password(o, true, &pw)) != USER_CMD_OK)
		goto fail;
	r = USER_CMD_FAILED;
	if (user_password_cmd_hash(o, pf, NULL, &pw, &cred, &scram1) == -1)
		goto fail;
	if ((e = passwd_file_add(pf, o->user, cred.data, &errstr)) == NULL) {
		user_cmd_err("%s", errstr);
		goto fail;
	}
	if (o->label != NULL && passwd_entry_set(e, "label", o->label, &errstr) == -1) {
		user_cmd_err("--label: %s", errstr);
		r = USER_CMD_USAGE;
		goto fail;
	}
	if (user_password_cmd_stamp(e, &scram1) == -1)
		goto fail;
	r = user_cmd_save(pf);
fail:
	buf_free(&pw);
	buf_free(&cred);
	buf_free(&scram1);
	passwd_file_free(pf);
	return r;
}

int
user_password_cmd_passwd(const struct user_cmd_opts *o)
{
	struct passwd_file *pf;
	struct passwd_entry *target = NULL;
	const char *errstr;
	struct buf pw, cred, scram1;
	bool any = false;
	int r = USER_CMD_FAILED;

	if (user_cmd_lock_dir(o->file) == -1)
		return USER_CMD_FAILED;
	if ((pf = user_cmd_load(o, false)) == NULL)
		return USER_CMD_USAGE;
	buf_init(&pw, PWSCHEME_PASSWORD_MAX);
	buf_set_secret(&pw);
	buf_init(&cred, 4096);
	buf_init(&scram1, 4096);
	for (size_t i = 0; i < pf->nentries && target == NULL; i++) {
		struct passwd_entry *e = &pf->entries[i];

		if (!user_cmd_entry_matches(e, o->user, o->label))
			continue;
		any = true;
		/* without --label: the primary password, the unlabelled line */
		if (o->label != NULL || passwd_entry_get(e, "label") == NULL)
			target = e;
	}
	if (!any) {
		user_cmd_err("%s: no such %s", o->user, o->label != NULL ? "app password" : "user");
		goto fail;
	}
	if ((r = user_password_cmd_get_password(o, true, &pw)) != USER_CMD_OK)
		goto fail;
	r = USER_CMD_FAILED;
	if (user_password_cmd_hash(o, pf, target, &pw, &cred, &scram1) == -1)
		goto fail;
	if (target == NULL) {
		/* only app passwords so far: add the primary line */
		target = passwd_file_add(pf, o->user, cred.data, &errstr);
	} else if (passwd_entry_set_password(target, cred.data, &errstr) == -1) {
		target = NULL;
	}
	if (target == NULL) {
		user_cmd_err("%s", errstr);
		goto fail;
	}
	if (user_password_cmd_stamp(target, &scram1) == -1)
		goto fail;
	/* further unlabelled lines were older primaries: one primary remains */
	for (size_t i = pf->nentries; o->label == NULL && i-- > 0;) {
		struct passwd_entry *e = &pf->entries[i];

		if (e != target && user_cmd_entry_matches(e, o->user, NULL) &&
		    passwd_entry_get(e, "label") == NULL) {
			if (e < target)
				target--;
			passwd_file_remove(pf, i);
		}
	}
	r = user_cmd_save(pf);
fail:
	buf_free(&pw);
	buf_free(&cred);
	buf_free(&scram1);
	passwd_file_free(pf);
	return r;
}

int
user_password_cmd_verify(const struct user_cmd_opts *o)
{
	struct passwd_file *pf;
	struct passwd_entry *e;
	struct buf pw;
	size_t pos = 0;
	bool match = false;
	int r;

	if ((pf = user_cmd_load(o, false)) == NULL)
		return USER_CMD_USAGE;
	buf_init(&pw, PWSCHEME_PASSWORD_MAX);
	buf_set_secret(&pw);
	/* an unreadable or empty password is a mismatch */
	if (user_password_cmd_get_password(o, false, &pw) == USER_CMD_OK) {
		while (
		    !match && (e = passwd_file_next(pf, o->user, strlen(o->user), &pos)) != NULL) {
			if (!passwd_entry_is_active(e, (int64_t)time(NULL)))
				continue;
			if (pwscheme_verify(e->scheme, e->data, pw.data, pw.len, &match) == -1)
				user_cmd_err(
				    "%s:%d: cannot verify this credential", o->file, e->line);
		}
	}
	r = match ? USER_CMD_OK : USER_CMD_FAILED;
	if (!match)
		user_cmd_err("%s: no match", o->user);
	buf_free(&pw);
	passwd_file_free(pf);
	return r;
}

/* user hash: the credential string alone on stdout's last line. */
int
user_password_cmd_print_hash(const struct user_cmd_opts *o)
{
	struct user_cmd_opts h = *o;
	struct buf pw, cred, scram1;
	int r;

	/* one credential, for one column: no scram1= (SCRAM-SHA-1) besides */
	h.scheme = o->scheme_given ? o->scheme : PWSCHEME_SCRAM_SHA256;
	h.scheme_given = true;
	buf_init(&pw, PWSCHEME_PASSWORD_MAX);
	buf_set_secret(&pw);
	buf_init(&cred, 4096);
	buf_init(&scram1, 4096);
	if ((r = user_password_cmd_get_password(o, true, &pw)) != USER_CMD_OK)
		goto fail;
	r = USER_CMD_FAILED;
	if (user_password_cmd_hash(&h, NULL, NULL, &pw, &cred, &scram1) == -1)
		goto fail;
	if (printf("%s\n", cred.data) < 0 || fflush(stdout) == EOF) {
		user_cmd_err("cannot write: %s", strerror(errno));
		goto fail;
	}
	r = USER_CMD_OK;
fail:
	buf_free(&pw);
	buf_free(&cred);
	buf_free(&scram1);
	return r;
}
