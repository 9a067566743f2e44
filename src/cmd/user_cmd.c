/*
 * user_cmd: `smtpgate user`, the passwd-file editor (DESIGN 5.1, 5.3).
 *
 *   smtpgate user add|passwd|del|list|lock|unlock USER -f FILE
 *                 [--password-stdin] [--scheme S] [--label NAME] [--json]
 *   smtpgate user verify USER -f FILE
 *   smtpgate user app-password add USER LABEL [--expires DATE] -f FILE
 *   smtpgate user app-password del USER LABEL -f FILE
 *   smtpgate user senders USER [PATTERN...] -f FILE
 *   smtpgate user unlock USER -c CONFIG [-f FILE]
 *
 * unlock with -c also ends a sending-quota hold (server/sendquota.h): through
 * the running server's [admin] listener (POST /quota/unlock?user=USER), or,
 * without [admin] or with the server stopped, by removing USER from the
 * SPOOL/quota-locks state file (a running server applies that within
 * SENDQUOTA_POLL_S seconds). -f defaults to the config's passwd file.
 *
 * Every change is read-modify-write of the whole file under an exclusive
 * flock(2) on the file's folder (so two concurrent commands cannot lose an
 * update), written with fs_write_atomic (temp file, fsync, rename, fsync
 * dir): readers such as the server see the old or the new file, never a
 * mix. Passwords are read from the terminal with echo off or from stdin
 * with read(2) (no stdio buffer keeps a copy), held in wiped buffers, and
 * never printed or logged; only one-way hashes reach the file.
 *
 * App passwords are generated here (RAND_bytes, USER_APP_PW_CHARS symbols
 * of an alphabet without look-alikes, grouped with '-'), printed once as
 * the last line of stdout after the file is durably written, and wiped.
 * `list` joins each credential with its last use from the server's state
 * file (`FILE.lastuse`, auth/lastuse.h), matched by user, label and
 * created, so a re-made app password does not inherit an old last use.
 *
 * Exit status: 0 done, 1 failed (no such user, user exists, mismatch, write
 * error), 2 usage or an unreadable or invalid file.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "auth/lastuse.h"
#include "auth/passwd_file.h"
#include "auth/pwscheme.h"
#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "net/admin.h"
#include "cmd/admin_cmd.h"
#include "policy/sender.h"
#include "queue/spool.h"
#include "server/sendquota.h"

#define USER_CMD_OK 0
#define USER_CMD_FAILED 1
#define USER_CMD_USAGE 2

/* App passwords: 20 symbols of 32 (5 bits each: 100 bits), in groups of 4. */
#define USER_APP_PW_CHARS 20
#define USER_APP_PW_GROUP 4
#define USER_APP_PW_ALPHABET "abcdefghijkmnpqrstuvwxyz23456789" /* no l 1 o 0 */

struct user_opts {
	const char *file;
	const char *config; /* unlock -c: also end a sending-quota hold */
	const char *user;
	const char *label;
	const char *expires; /* app-password add --expires, as given */
	char **args; /* the words after USER (app-password: LABEL; senders: PATTERNs) */
	int nargs;
	bool password_stdin;
	bool json;
	bool scheme_given;
	enum pwscheme scheme;
};

struct user_sub {
	const char *name;
	int (*fn)(const struct user_opts *o);
	bool needs_user;
	const char *usage;
	int extra_min, extra_max; /* words after USER; -1: any number */
};

static int user_cmd_add(const struct user_opts *o);
static int user_cmd_passwd(const struct user_opts *o);
static int user_cmd_del(const struct user_opts *o);
static int user_cmd_list(const struct user_opts *o);
static int user_cmd_lock(const struct user_opts *o);
static int user_cmd_unlock(const struct user_opts *o);
static int user_cmd_verify(const struct user_opts *o);
static int user_cmd_app_password(const struct user_opts *o);
static int user_cmd_senders(const struct user_opts *o);

static const struct user_sub user_subs[] = {
    {"add", user_cmd_add, true,
        "add USER -f FILE [--password-stdin] [--scheme S] [--label NAME]\n"
        "    Adds USER (an error if USER exists: use passwd). With --label, adds an\n"
        "    app password: another credential line of USER named NAME.\n",
        0, 0},
    {"passwd", user_cmd_passwd, true,
        "passwd USER -f FILE [--password-stdin] [--scheme S] [--label NAME]\n"
        "    Sets the password of USER (the lines without a label), or of the app\n"
        "    password NAME. Keeps the lock and the other fields.\n",
        0, 0},
    {"del", user_cmd_del, true,
        "del USER -f FILE [--label NAME]\n"
        "    Deletes every line of USER, or only the app password NAME.\n",
        0, 0},
    {"list", user_cmd_list, false,
        "list [USER] -f FILE [--json]\n"
        "    One line per credential, tab-separated: user, schemes, label, created,\n"
        "    state (locked, expired or -), expires, last use, last client address.\n",
        0, 0},
    {"lock", user_cmd_lock, true,
        "lock USER -f FILE [--label NAME]\n"
        "    Sets locked=yes on every line of USER (or on app password NAME).\n",
        0, 0},
    {"unlock", user_cmd_unlock, true,
        "unlock USER -f FILE [--label NAME] [-c CONFIG]\n"
        "    Removes the lock from every line of USER (or from app password NAME).\n"
        "    With -c, also ends a sending-quota hold of USER in the server of CONFIG\n"
        "    (its [admin] listener, else its spool's quota-locks file); -f then\n"
        "    defaults to the passwd file of CONFIG.\n",
        0, 0},
    {"verify", user_cmd_verify, true,
        "verify USER -f FILE\n"
        "    Reads a password on stdin; exit 0 if it matches an active credential\n"
        "    of USER, 1 if not.\n",
        0, 0},
    {"app-password", user_cmd_app_password, true,
        "app-password add USER LABEL -f FILE [--expires DATE]\n"
        "    Generates a password for USER named LABEL, stores it as SCRAM keys\n"
        "    and prints it once, alone on the last line. DATE: YYYY-MM-DD (valid\n"
        "    through that day, UTC) or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM|-HH:MM].\n"
        "  app-password del USER LABEL -f FILE\n"
        "    Revokes it (a running server notices at the next login).\n",
        2, 2},
    {"senders", user_cmd_senders, true,
        "senders USER [PATTERN...] -f FILE\n"
        "    Sets the addresses USER may send as besides the login: full addresses\n"
        "    (bob@example.org) or domains (@example.org). None given: clears them.\n",
        0, -1},
};

#define USER_NSUBS (sizeof(user_subs) / sizeof(user_subs[0]))

static const char user_options_help[] =
    "options:\n"
    "  -f, --file FILE       the passwd file (required)\n"
    "  -c, --config FILE     unlock: the server configuration (quota holds)\n"
    "      --password-stdin  read the password from stdin, not the terminal\n"
    "  -s, --scheme S        SCRAM-SHA-256, ARGON2ID, SHA512-CRYPT or BLF-CRYPT;\n"
    "                        default: SCRAM-SHA-256 with SCRAM-SHA-1 keys (scram1=),\n"
    "                        which serves SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN/LOGIN\n"
    "  -l, --label NAME      an app password of the user\n"
    "  -e, --expires DATE    app-password add: when it stops working\n"
    "      --json            list: one JSON document\n"
    "  -h, --help            this help\n"
    "exit status: 0 done, 1 failed, 2 usage or invalid file\n";

static void
user_usage(FILE *f, const struct user_sub *sub)
{
	if (sub != NULL) {
		fprintf(f, "usage: smtpgate user %s\n%s", sub->usage, user_options_help);
		return;
	}
	fprintf(f, "usage: smtpgate user COMMAND [USER] -f FILE [options]\n\ncommands:\n");
	for (size_t i = 0; i < USER_NSUBS; i++)
		fprintf(f, "  %s", user_subs[i].usage);
	fprintf(f, "\n%s", user_options_help);
}

static void user_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
user_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "smtpgate user: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Reads one line from fd with read(2) into the secret buffer b (without
 * the line end). -1 on a read error or an over-long line. */
static int
user_read_line(int fd, struct buf *b)
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
user_read_tty(const char *prompt, struct buf *b)
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
	r = user_read_line(STDIN_FILENO, b);
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	return r;
}

/* The new or checked password into b (secret, limited). confirm: ask twice
 * on a terminal. Returns an exit status. */
static int
user_get_password(const struct user_opts *o, bool confirm, struct buf *b)
{
	struct buf again;
	int r = USER_CMD_FAILED;

	buf_init(&again, PWSCHEME_PASSWORD_MAX);
	buf_set_secret(&again);
	if (!o->password_stdin && isatty(STDIN_FILENO)) {
		if (user_read_tty("Password: ", b) == -1) {
			user_err("cannot read the password: %s",
			    errno != 0 ? strerror(errno) : "too long");
			goto fail;
		}
		if (confirm) {
			if (user_read_tty("Again: ", &again) == -1) {
				user_err("cannot read the password");
				goto fail;
			}
			if (again.len != b->len ||
			    (b->len > 0 && memcmp(again.data, b->data, b->len) != 0)) {
				user_err("the passwords do not match");
				goto fail;
			}
		}
	} else if (user_read_line(STDIN_FILENO, b) == -1) {
		user_err("cannot read the password from stdin (at most %d bytes)",
		    PWSCHEME_PASSWORD_MAX);
		goto fail;
	}
	if (b->len == 0) {
		user_err("empty password");
		goto fail;
	}
	r = USER_CMD_OK;
fail:
	buf_free(&again);
	return r;
}

/* Locks the folder of the file for a read-modify-write (released at exit
 * or on close). */
static int
user_lock_dir(const char *file)
{
	char *dir = fs_dirname(file);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd == -1 || flock(fd, LOCK_EX) == -1) {
		user_err("%s: cannot lock: %s", dir, strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	free(dir);
	return fd;
}

static struct passwd_file *
user_load(const struct user_opts *o, bool missing_ok)
{
	char err[1024];
	struct passwd_file *pf = passwd_file_load(o->file, missing_ok, err, sizeof(err));

	if (pf == NULL)
		user_err("%s", err);
	return pf;
}

static int
user_save(const struct passwd_file *pf)
{
	char err[1024];

	if (passwd_file_save(pf, err, sizeof(err)) == -1) {
		user_err("%s", err);
		return USER_CMD_FAILED;
	}
	return USER_CMD_OK;
}

static bool
user_entry_matches(const struct passwd_entry *e, const char *user, const char *label)
{
	const char *l;

	if (e->raw != NULL || strcmp(e->user, user) != 0)
		return false;
	if (label == NULL)
		return true;
	l = passwd_entry_get(e, "label");
	return l != NULL && strcmp(l, label) == 0;
}

/*
 * The salt and iteration count that user's SCRAM credentials of scheme s
 * share (doc/passwd.5.md): those of the main line (the first unlabelled
 * line with such keys), else of the first line with such keys; skip (the
 * line being replaced, or NULL) does not count. Locked and expired lines
 * count: they may come back. -1 when there is none.
 */
static int
user_scram_salt(const struct passwd_file *pf, const char *user, enum pwscheme s,
    const struct passwd_entry *skip, struct pwscheme_scram *k_r)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < pf->nentries; i++) {
			const struct passwd_entry *e = &pf->entries[i];

			if (e == skip || !user_entry_matches(e, user, NULL) ||
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
user_scram_data(const struct passwd_file *pf, const char *user, const struct passwd_entry *skip,
    enum pwscheme s, const struct buf *pw, struct buf *out)
{
	struct pwscheme_scram shared, k;
	int r = -1;

	if (pf == NULL || user_scram_salt(pf, user, s, skip, &shared) == -1) {
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
 * excepted; pf NULL: none) share, per hash (user_scram_data).
 */
static int
user_hash(const struct user_opts *o, const struct passwd_file *pf, const struct passwd_entry *skip,
    const struct buf *pw, struct buf *cred, struct buf *scram1)
{
	enum pwscheme s = o->scheme_given ? o->scheme : PWSCHEME_SCRAM_SHA256;
	int r;

	if (s == PWSCHEME_SCRAM_SHA256 || s == PWSCHEME_SCRAM_SHA1)
		r = buf_printf(cred, "{%s}", pwscheme_name(s)) == -1 ||
		        user_scram_data(pf, o->user, skip, s, pw, cred) == -1
		    ? -1
		    : 0;
	else
		r = pwscheme_generate(s, pw->data, pw->len, cred);
	if (r == -1 ||
	    (!o->scheme_given &&
	        user_scram_data(pf, o->user, skip, PWSCHEME_SCRAM_SHA1, pw, scram1) == -1)) {
		user_err("cannot hash the password");
		return -1;
	}
	return 0;
}

/* Sets scram1= (or removes it) and created=now on e. */
static int
user_stamp(struct passwd_entry *e, const struct buf *scram1)
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
	user_err("%s", errstr);
	return -1;
}

static int
user_cmd_add(const struct user_opts *o)
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
		user_err("bad user name (1 to 320 bytes, no ':', white space or control "
		         "characters, not starting with '#')");
		r = USER_CMD_USAGE;
		goto fail;
	}
	if (user_lock_dir(o->file) == -1)
		goto fail;
	if ((pf = user_load(o, true)) == NULL) {
		r = USER_CMD_USAGE;
		goto fail;
	}
	if (o->label == NULL && passwd_file_has_user(pf, o->user)) {
		user_err("%s: user exists (use passwd to change the password)", o->user);
		goto fail;
	}
	if (o->label != NULL) {
		if (!passwd_file_has_user(pf, o->user)) {
			user_err("%s: no such user (add the user before an app password)", o->user);
			goto fail;
		}
		for (size_t i = 0; i < pf->nentries; i++) {
			if (user_entry_matches(&pf->entries[i], o->user, o->label)) {
				user_err("%s: app password \"%s\" exists", o->user, o->label);
				goto fail;
			}
		}
	}
	if ((r = user_get_password(o, true, &pw)) != USER_CMD_OK)
		goto fail;
	r = USER_CMD_FAILED;
	if (user_hash(o, pf, NULL, &pw, &cred, &scram1) == -1)
		goto fail;
	if ((e = passwd_file_add(pf, o->user, cred.data, &errstr)) == NULL) {
		user_err("%s", errstr);
		goto fail;
	}
	if (o->label != NULL && passwd_entry_set(e, "label", o->label, &errstr) == -1) {
		user_err("--label: %s", errstr);
		r = USER_CMD_USAGE;
		goto fail;
	}
	if (user_stamp(e, &scram1) == -1)
		goto fail;
	r = user_save(pf);
fail:
	buf_free(&pw);
	buf_free(&cred);
	buf_free(&scram1);
	passwd_file_free(pf);
	return r;
}

static int
user_cmd_passwd(const struct user_opts *o)
{
	struct passwd_file *pf;
	struct passwd_entry *target = NULL;
	const char *errstr;
	struct buf pw, cred, scram1;
	bool any = false;
	int r = USER_CMD_FAILED;

	if (user_lock_dir(o->file) == -1)
		return USER_CMD_FAILED;
	if ((pf = user_load(o, false)) == NULL)
		return USER_CMD_USAGE;
	buf_init(&pw, PWSCHEME_PASSWORD_MAX);
	buf_set_secret(&pw);
	buf_init(&cred, 4096);
	buf_init(&scram1, 4096);
	for (size_t i = 0; i < pf->nentries && target == NULL; i++) {
		struct passwd_entry *e = &pf->entries[i];

		if (!user_entry_matches(e, o->user, o->label))
			continue;
		any = true;
		/* without --label: the primary password, the unlabelled line */
		if (o->label != NULL || passwd_entry_get(e, "label") == NULL)
			target = e;
	}
	if (!any) {
		user_err("%s: no such %s", o->user, o->label != NULL ? "app password" : "user");
		goto fail;
	}
	if ((r = user_get_password(o, true, &pw)) != USER_CMD_OK)
		goto fail;
	r = USER_CMD_FAILED;
	if (user_hash(o, pf, target, &pw, &cred, &scram1) == -1)
		goto fail;
	if (target == NULL) {
		/* only app passwords so far: add the primary line */
		target = passwd_file_add(pf, o->user, cred.data, &errstr);
	} else if (passwd_entry_set_password(target, cred.data, &errstr) == -1) {
		target = NULL;
	}
	if (target == NULL) {
		user_err("%s", errstr);
		goto fail;
	}
	if (user_stamp(target, &scram1) == -1)
		goto fail;
	/* further unlabelled lines were older primaries: one primary remains */
	for (size_t i = pf->nentries; o->label == NULL && i-- > 0;) {
		struct passwd_entry *e = &pf->entries[i];

		if (e != target && user_entry_matches(e, o->user, NULL) &&
		    passwd_entry_get(e, "label") == NULL) {
			if (e < target)
				target--;
			passwd_file_remove(pf, i);
		}
	}
	r = user_save(pf);
fail:
	buf_free(&pw);
	buf_free(&cred);
	buf_free(&scram1);
	passwd_file_free(pf);
	return r;
}

static int
user_cmd_del(const struct user_opts *o)
{
	struct passwd_file *pf;
	size_t n = 0;
	int r = USER_CMD_FAILED;

	if (user_lock_dir(o->file) == -1)
		return USER_CMD_FAILED;
	if ((pf = user_load(o, false)) == NULL)
		return USER_CMD_USAGE;
	for (size_t i = pf->nentries; i-- > 0;) {
		if (user_entry_matches(&pf->entries[i], o->user, o->label)) {
			passwd_file_remove(pf, i);
			n++;
		}
	}
	if (n == 0)
		user_err("%s: no such %s", o->user, o->label != NULL ? "app password" : "user");
	else
		r = user_save(pf);
	passwd_file_free(pf);
	return r;
}

static int
user_set_lock(const struct user_opts *o, bool lock)
{
	struct passwd_file *pf;
	const char *errstr;
	size_t n = 0;
	int r = USER_CMD_FAILED;

	if (user_lock_dir(o->file) == -1)
		return USER_CMD_FAILED;
	if ((pf = user_load(o, false)) == NULL)
		return USER_CMD_USAGE;
	for (size_t i = 0; i < pf->nentries; i++) {
		struct passwd_entry *e = &pf->entries[i];

		if (!user_entry_matches(e, o->user, o->label))
			continue;
		n++;
		if (!lock)
			passwd_entry_unset(e, "locked");
		else if (passwd_entry_set(e, "locked", "yes", &errstr) == -1)
			goto fail;
	}
	if (n == 0) {
		user_err("%s: no such %s", o->user, o->label != NULL ? "app password" : "user");
		goto fail;
	}
	r = user_save(pf);
fail:
	passwd_file_free(pf);
	return r;
}

static int
user_cmd_lock(const struct user_opts *o)
{
	return user_set_lock(o, true);
}

/* "/quota/unlock?user=" and user percent-encoded (RFC 3986 2.1) into out. */
static int
user_quota_target(const char *user, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = (size_t)snprintf(out, outlen, "/quota/unlock?user=");

	for (const unsigned char *p = (const unsigned char *)user; *p != '\0'; p++) {
		if (n + 4 >= outlen)
			return -1;
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	out[n] = '\0';
	return 0;
}

/* Ends a sending-quota hold of o->user in the server of c: the running
 * server through [admin], else its state file. */
static int
user_quota_unlock(const struct user_opts *o, const struct conf *c)
{
	char target[2048], err[1024];
	struct buf out;
	int status = 0, rc;

	if (c->admin) {
		if (user_quota_target(o->user, target, sizeof(target)) == -1) {
			user_err("%s: name too long", o->user);
			return USER_CMD_FAILED;
		}
		buf_init(&out, 64 * 1024);
		rc = admin_cmd_call(c, "POST", target, NULL, 0, &out, &status, err, sizeof(err));
		if (rc == 0 && status == 200) {
			printf("%s: %s (running server; counts reset)\n", o->user,
			    strstr(out.data, "\"was_locked\":true") != NULL
			        ? "sending quota hold removed"
			        : "no sending quota hold");
			buf_free(&out);
			return USER_CMD_OK;
		}
		buf_free(&out);
		if (rc == 0 && status == 401) {
			admin_cmd_explain_401(c, err, sizeof(err));
			user_err("%s: %s", o->user, err);
			return USER_CMD_FAILED;
		}
		if (rc == 0) {
			user_err("%s: the admin listener answered %d", o->user, status);
			return USER_CMD_FAILED;
		}
		if (errno != ECONNREFUSED) {
			user_err("%s", err);
			return USER_CMD_FAILED;
		}
		/* nothing listens: the server is stopped; edit its state file */
	}
	rc = sendquota_file_unlock(c->spool, o->user);
	if (rc == -1) {
		user_err("%s/%s: %s", c->spool, SPOOL_QUOTA_LOCKS, strerror(errno));
		return USER_CMD_FAILED;
	}
	printf("%s: %s\n", o->user,
	    rc == 1 ? "sending quota hold removed from the state file (a running server "
	              "applies it within seconds)"
	            : "no sending quota hold");
	return USER_CMD_OK;
}

static int
user_cmd_unlock(const struct user_opts *o)
{
	char err[1024];
	struct user_opts fo = *o;
	struct conf *c = NULL;
	int r = USER_CMD_OK;

	if (o->config != NULL) {
		c = conf_load(o->config, err, sizeof(err));
		if (c == NULL) {
			user_err("%s", err);
			return USER_CMD_USAGE;
		}
		if (fo.file == NULL)
			fo.file = conf_backend_file(c); /* NULL: another backend */
	}
	if (fo.file != NULL)
		r = user_set_lock(&fo, false);
	if (r == USER_CMD_OK && c != NULL)
		r = user_quota_unlock(o, c);
	conf_free(c);
	return r;
}

static void
user_format_time(const char *unix_time, char *out, size_t outlen)
{
	time_t t;
	struct tm tm;

	if (unix_time == NULL) {
		snprintf(out, outlen, "-");
		return;
	}
	t = (time_t)strtoll(unix_time, NULL, 10);
	if (gmtime_r(&t, &tm) == NULL || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "%s", unix_time);
}

static json_t *
user_json_time(const char *unix_time)
{
	return unix_time != NULL ? json_integer(strtoll(unix_time, NULL, 10)) : json_null();
}

/* FILE.lastuse, written by the server (auth/lastuse.h). */
static struct lastuse_rec *
user_read_lastuse(const char *file, size_t *n_r)
{
	struct lastuse_rec *recs = NULL;
	char err[1024], *path = xmalloc(strlen(file) + sizeof(LASTUSE_SUFFIX));

	memcpy(path, file, strlen(file));
	memcpy(path + strlen(file), LASTUSE_SUFFIX, sizeof(LASTUSE_SUFFIX));
	if (lastuse_read(path, &recs, n_r, err, sizeof(err)) == -1) {
		user_err("%s (last use not shown)", err);
		recs = NULL;
		*n_r = 0;
	}
	free(path);
	return recs;
}

static int
user_cmd_list(const struct user_opts *o)
{
	struct passwd_file *pf = user_load(o, false);
	json_t *doc = NULL, *arr = NULL;
	struct lastuse_rec *uses = NULL;
	size_t nuses = 0;
	int64_t now = (int64_t)time(NULL);
	int r = USER_CMD_FAILED;

	if (pf == NULL)
		return USER_CMD_USAGE;
	uses = user_read_lastuse(o->file, &nuses);
	if (o->json) {
		arr = json_array();
		doc = json_pack("{s:s, s:o}", "file", o->file, "credentials", arr);
	}
	for (size_t i = 0; i < pf->nentries; i++) {
		const struct passwd_entry *e = &pf->entries[i];
		const char *label, *created, *expires, *senders, *state = "-";
		const struct lastuse_rec *use;
		bool scram1;
		char when[64], until[64], used[64], usetime[32];

		if (e->raw != NULL || (o->user != NULL && strcmp(e->user, o->user) != 0))
			continue;
		label = passwd_entry_get(e, "label");
		created = passwd_entry_get(e, "created");
		expires = passwd_entry_get(e, "expires");
		scram1 = passwd_entry_get(e, "scram1") != NULL;
		senders = passwd_entry_get(e, "senders");
		use = lastuse_find(uses, nuses, e->user, label, created);
		if (passwd_entry_is_locked(e))
			state = "locked";
		else if (passwd_entry_is_expired(e, now))
			state = "expired";
		if (o->json) {
			json_t *schemes = json_pack("[s]", pwscheme_name(e->scheme)), *sl;
			json_t *obj;

			if (scram1)
				json_array_append_new(schemes, json_string("SCRAM-SHA-1"));
			sl = json_array();
			for (const char *p = senders; p != NULL && *p != '\0';) {
				size_t k = strcspn(p, ",");

				if (k > 0)
					json_array_append_new(sl, json_stringn(p, k));
				p += k + (p[k] == ',');
			}
			obj = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:b, s:b, s:i, s:o}",
			    "user", e->user, "scheme", pwscheme_name(e->scheme), "schemes", schemes,
			    "label", label != NULL ? json_string(label) : json_null(), "created",
			    user_json_time(created), "expires", user_json_time(expires), "locked",
			    passwd_entry_is_locked(e), "expired", passwd_entry_is_expired(e, now),
			    "active", passwd_entry_is_active(e, now), "line", e->line, "senders",
			    sl);
			json_object_set_new(obj, "last_use",
			    use != NULL ? json_pack("{s:I, s:s}", "time", (json_int_t)use->time,
			                      "client", use->client)
			                : json_null());
			json_array_append_new(arr, obj);
			continue;
		}
		user_format_time(created, when, sizeof(when));
		user_format_time(expires, until, sizeof(until));
		if (use != NULL)
			snprintf(usetime, sizeof(usetime), "%lld", (long long)use->time);
		user_format_time(use != NULL ? usetime : NULL, used, sizeof(used));
		printf("%s\t%s%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e->user, pwscheme_name(e->scheme),
		    scram1 ? ",SCRAM-SHA-1" : "", label != NULL ? label : "-", when, state, until,
		    used, use != NULL && use->client[0] != '\0' ? use->client : "-");
	}
	if (doc != NULL) {
		if (json_dumpf(doc, stdout, JSON_INDENT(2)) == -1)
			goto fail;
		putchar('\n');
	}
	r = fflush(stdout) == 0 ? USER_CMD_OK : USER_CMD_FAILED;
fail:
	json_decref(doc);
	lastuse_recs_free(uses, nuses);
	passwd_file_free(pf);
	return r;
}

static int
user_cmd_verify(const struct user_opts *o)
{
	struct passwd_file *pf;
	struct passwd_entry *e;
	struct buf pw;
	size_t pos = 0;
	bool match = false;
	int r;

	if ((pf = user_load(o, false)) == NULL)
		return USER_CMD_USAGE;
	buf_init(&pw, PWSCHEME_PASSWORD_MAX);
	buf_set_secret(&pw);
	/* an unreadable or empty password is a mismatch */
	if (user_get_password(o, false, &pw) == USER_CMD_OK) {
		while (
		    !match && (e = passwd_file_next(pf, o->user, strlen(o->user), &pos)) != NULL) {
			if (!passwd_entry_is_active(e, (int64_t)time(NULL)))
				continue;
			if (pwscheme_verify(e->scheme, e->data, pw.data, pw.len, &match) == -1)
				user_err("%s:%d: cannot verify this credential", o->file, e->line);
		}
	}
	r = match ? USER_CMD_OK : USER_CMD_FAILED;
	if (!match)
		user_err("%s: no match", o->user);
	buf_free(&pw);
	passwd_file_free(pf);
	return r;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (no time zone). */
static int64_t
user_days_from_civil(int64_t y, unsigned m, unsigned d)
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
user_parse_expires(const char *s, int64_t *t_r)
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
		*t_r = (user_days_from_civil(y, mo, d) + 1) * 86400;
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
	*t_r = user_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	return 0;
}

/* A new app password into the secret buffer b: USER_APP_PW_CHARS symbols
 * (5 random bits each, no modulo bias), '-' every USER_APP_PW_GROUP. */
static int
user_make_app_password(struct buf *b)
{
	unsigned char rnd[USER_APP_PW_CHARS];
	static const char alphabet[] = USER_APP_PW_ALPHABET;
	int r = -1;

	_Static_assert(sizeof(alphabet) - 1 == 32, "5 bits per symbol");
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto fail;
	for (size_t i = 0; i < sizeof(rnd); i++) {
		char c = alphabet[rnd[i] & 31];

		if ((i > 0 && i % USER_APP_PW_GROUP == 0 && buf_append(b, "-", 1) == -1) ||
		    buf_append(b, &c, 1) == -1)
			goto fail;
	}
	r = 0;
fail:
	explicit_bzero(rnd, sizeof(rnd));
	return r;
}

static int
user_app_password_add(const struct user_opts *o)
{
	struct passwd_file *pf = NULL;
	struct passwd_entry *e;
	struct user_opts ho = *o;
	const char *errstr;
	struct buf pw, cred, scram1;
	int64_t expires = 0;
	char when[64], num[32];
	int r = USER_CMD_USAGE;

	buf_init(&pw, PWSCHEME_PASSWORD_MAX);
	buf_set_secret(&pw);
	buf_init(&cred, 4096);
	buf_init(&scram1, 4096);
	if (o->expires != NULL && user_parse_expires(o->expires, &expires) == -1) {
		user_err("--expires: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM], "
		         "not \"%s\"",
		    o->expires);
		goto fail;
	}
	if (user_lock_dir(o->file) == -1) {
		r = USER_CMD_FAILED;
		goto fail;
	}
	if ((pf = user_load(o, false)) == NULL)
		goto fail;
	r = USER_CMD_FAILED;
	if (!passwd_file_has_user(pf, o->user)) {
		user_err("%s: no such user (add the user before an app password)", o->user);
		goto fail;
	}
	for (size_t i = 0; i < pf->nentries; i++) {
		if (user_entry_matches(&pf->entries[i], o->user, o->label)) {
			user_err(
			    "%s: app password \"%s\" exists (del it first)", o->user, o->label);
			goto fail;
		}
	}
	ho.scheme_given = false; /* SCRAM-SHA-256 + scram1=: works with SCRAM and PLAIN */
	if (user_make_app_password(&pw) == -1 ||
	    user_hash(&ho, pf, NULL, &pw, &cred, &scram1) == -1) {
		user_err("cannot make the password");
		goto fail;
	}
	if ((e = passwd_file_add(pf, o->user, cred.data, &errstr)) == NULL) {
		user_err("%s", errstr);
		goto fail;
	}
	if (passwd_entry_set(e, "label", o->label, &errstr) == -1) {
		user_err("LABEL: %s", errstr);
		r = USER_CMD_USAGE;
		goto fail;
	}
	if (user_stamp(e, &scram1) == -1)
		goto fail;
	if (o->expires != NULL) {
		snprintf(num, sizeof(num), "%lld", (long long)expires);
		if (passwd_entry_set(e, "expires", num, &errstr) == -1) {
			user_err("--expires: %s", errstr);
			goto fail;
		}
	}
	if ((r = user_save(pf)) != USER_CMD_OK)
		goto fail;
	/* the file is durable: only now show the password, once */
	snprintf(num, sizeof(num), "%lld", (long long)expires);
	user_format_time(o->expires != NULL ? num : NULL, when, sizeof(when));
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

static int
user_cmd_app_password(const struct user_opts *o)
{
	if (strcmp(o->args[0], "add") == 0)
		return user_app_password_add(o);
	/* del: the same as `del USER --label LABEL` */
	return user_cmd_del(o);
}

static int
user_cmd_senders(const struct user_opts *o)
{
	struct passwd_file *pf;
	const char *errstr;
	struct buf v;
	size_t n = 0;
	int r = USER_CMD_USAGE;

	buf_init(&v, SENDER_PATTERNS_MAX);
	for (int i = 0; i < o->nargs; i++) {
		if (sender_pattern_check(o->args[i], &errstr) == -1) {
			user_err("\"%s\": %s", o->args[i], errstr);
			buf_free(&v);
			return USER_CMD_USAGE;
		}
		if ((v.len > 0 && buf_append(&v, ",", 1) == -1) ||
		    buf_append_str(&v, o->args[i]) == -1) {
			user_err("too many patterns (at most %d bytes)", SENDER_PATTERNS_MAX);
			buf_free(&v);
			return USER_CMD_USAGE;
		}
	}
	if (user_lock_dir(o->file) == -1) {
		buf_free(&v);
		return USER_CMD_FAILED;
	}
	if ((pf = user_load(o, false)) == NULL) {
		buf_free(&v);
		return USER_CMD_USAGE;
	}
	/* on every line of the user: the server uses the union of them */
	for (size_t i = 0; i < pf->nentries; i++) {
		struct passwd_entry *e = &pf->entries[i];

		if (!user_entry_matches(e, o->user, NULL))
			continue;
		n++;
		passwd_entry_unset(e, "senders");
		if (v.len > 0 && passwd_entry_set(e, "senders", v.data, &errstr) == -1) {
			user_err("%s", errstr);
			goto fail;
		}
	}
	r = USER_CMD_FAILED;
	if (n == 0) {
		user_err("%s: no such user", o->user);
		goto fail;
	}
	if ((r = user_save(pf)) == USER_CMD_OK) {
		printf("%s may send as: %s", o->user, o->user);
		for (int i = 0; i < o->nargs; i++)
			printf(", %s", o->args[i]);
		printf("\n");
		r = fflush(stdout) == 0 ? USER_CMD_OK : USER_CMD_FAILED;
	}
fail:
	buf_free(&v);
	passwd_file_free(pf);
	return r;
}

int
user_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"config", required_argument, NULL, 'c'},
	    {"password-stdin", no_argument, NULL, 'P'},
	    {"scheme", required_argument, NULL, 's'},
	    {"label", required_argument, NULL, 'l'},
	    {"json", no_argument, NULL, 'J'},
	    {"expires", required_argument, NULL, 'e'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct user_opts o;
	const struct user_sub *sub = NULL;
	bool help = false;
	int c, nargs;

	memset(&o, 0, sizeof(o));
	optind = 1;
	opterr = 0;
	/* GNU getopt_long permutes: options may follow USER */
	while ((c = getopt_long(argc, argv, "f:c:s:l:e:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o.file = optarg;
			break;
		case 'c':
			o.config = optarg;
			break;
		case 'P':
			o.password_stdin = true;
			break;
		case 's':
			if (pwscheme_from_name(optarg, strlen(optarg), &o.scheme) == -1 ||
			    o.scheme == PWSCHEME_SCRAM_SHA1) {
				user_err("--scheme: expected SCRAM-SHA-256, ARGON2ID, SHA512-CRYPT "
				         "or BLF-CRYPT");
				return USER_CMD_USAGE;
			}
			o.scheme_given = true;
			break;
		case 'l':
			o.label = optarg;
			break;
		case 'J':
			o.json = true;
			break;
		case 'e':
			o.expires = optarg;
			break;
		case 'h':
			help = true;
			break;
		default:
			user_err("unknown or incomplete option \"%s\"", argv[optind - 1]);
			user_usage(stderr, NULL);
			return USER_CMD_USAGE;
		}
	}
	nargs = argc - optind;
	if (nargs >= 1) {
		for (size_t i = 0; i < USER_NSUBS; i++) {
			if (strcmp(argv[optind], user_subs[i].name) == 0)
				sub = &user_subs[i];
		}
	}
	if (help) {
		user_usage(stdout, sub);
		return USER_CMD_OK;
	}
	if (sub == NULL) {
		if (nargs >= 1)
			user_err("unknown command \"%s\"", argv[optind]);
		user_usage(stderr, NULL);
		return USER_CMD_USAGE;
	}
	if (sub->fn == user_cmd_app_password) {
		/* app-password add|del USER LABEL */
		if (nargs != 4 ||
		    (strcmp(argv[optind + 1], "add") != 0 &&
		        strcmp(argv[optind + 1], "del") != 0)) {
			user_err("app-password: expected add|del USER LABEL");
			user_usage(stderr, sub);
			return USER_CMD_USAGE;
		}
		o.args = argv + optind + 1;
		o.nargs = 1;
		o.user = argv[optind + 2];
		o.label = argv[optind + 3];
		nargs = 2;
	} else if (sub->extra_max != 0) {
		if (nargs < 2 + sub->extra_min ||
		    (sub->extra_max > 0 && nargs > 2 + sub->extra_max)) {
			user_err("%s: expected USER and %s", sub->name,
			    sub->extra_min > 0 ? "more words" : "optional words");
			user_usage(stderr, sub);
			return USER_CMD_USAGE;
		}
		o.args = argv + optind + 2;
		o.nargs = nargs - 2;
		nargs = 2;
	}
	if (nargs > 2 || (sub->needs_user && nargs != 2)) {
		user_err("%s: expected %s", sub->name, sub->needs_user ? "USER" : "at most USER");
		user_usage(stderr, sub);
		return USER_CMD_USAGE;
	}
	if (o.expires != NULL &&
	    (sub->fn != user_cmd_app_password || strcmp(o.args[0], "add") != 0)) {
		user_err("--expires applies to app-password add only");
		return USER_CMD_USAGE;
	}
	if (sub->fn == user_cmd_app_password && o.scheme_given) {
		user_err("app-password: --scheme does not apply (app passwords are SCRAM keys)");
		return USER_CMD_USAGE;
	}
	if (o.user == NULL)
		o.user = nargs == 2 ? argv[optind + 1] : NULL;
	if (o.config != NULL && sub->fn != user_cmd_unlock) {
		user_err("-c applies to unlock only");
		return USER_CMD_USAGE;
	}
	if (o.file == NULL && o.config == NULL) {
		user_err("%s: -f FILE is required", sub->name);
		user_usage(stderr, sub);
		return USER_CMD_USAGE;
	}
	if (o.json && sub->fn != user_cmd_list) {
		user_err("--json applies to list only");
		return USER_CMD_USAGE;
	}
	return sub->fn(&o);
}
