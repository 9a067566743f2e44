/*
 * user_cmd: `smtpgate user`, the passwd-file editor (DESIGN 5.1, 5.3).
 *
 *   smtpgate user add|passwd|del|list|lock|unlock USER -f FILE
 *                 [--password-stdin] [--scheme S] [--label NAME] [--json]
 *   smtpgate user verify USER -f FILE
 *
 * Every change is read-modify-write of the whole file under an exclusive
 * flock(2) on the file's folder (so two concurrent commands cannot lose an
 * update), written with fs_write_atomic (temp file, fsync, rename, fsync
 * dir): readers such as the server see the old or the new file, never a
 * mix. Passwords are read from the terminal with echo off or from stdin
 * with read(2) (no stdio buffer keeps a copy), held in wiped buffers, and
 * never printed or logged; only one-way hashes reach the file.
 *
 * Exit status: 0 done, 1 failed (no such user, user exists, mismatch, write
 * error), 2 usage or an unreadable or invalid file.
 */
#include "server/cmd.h"

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

#include "auth/passwd_file.h"
#include "auth/pwscheme.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define USER_CMD_OK 0
#define USER_CMD_FAILED 1
#define USER_CMD_USAGE 2

struct user_opts {
	const char *file;
	const char *user;
	const char *label;
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
};

static int user_cmd_add(const struct user_opts *o);
static int user_cmd_passwd(const struct user_opts *o);
static int user_cmd_del(const struct user_opts *o);
static int user_cmd_list(const struct user_opts *o);
static int user_cmd_lock(const struct user_opts *o);
static int user_cmd_unlock(const struct user_opts *o);
static int user_cmd_verify(const struct user_opts *o);

static const struct user_sub user_subs[] = {
    {"add", user_cmd_add, true,
        "add USER -f FILE [--password-stdin] [--scheme S] [--label NAME]\n"
        "    Adds USER (an error if USER exists: use passwd). With --label, adds an\n"
        "    app password: another credential line of USER named NAME.\n"},
    {"passwd", user_cmd_passwd, true,
        "passwd USER -f FILE [--password-stdin] [--scheme S] [--label NAME]\n"
        "    Sets the password of USER (the lines without a label), or of the app\n"
        "    password NAME. Keeps the lock and the other fields.\n"},
    {"del", user_cmd_del, true,
        "del USER -f FILE [--label NAME]\n"
        "    Deletes every line of USER, or only the app password NAME.\n"},
    {"list", user_cmd_list, false,
        "list [USER] -f FILE [--json]\n"
        "    One line per credential: user, schemes, label, created, locked.\n"},
    {"lock", user_cmd_lock, true,
        "lock USER -f FILE [--label NAME]\n"
        "    Sets locked=yes on every line of USER (or on app password NAME).\n"},
    {"unlock", user_cmd_unlock, true,
        "unlock USER -f FILE [--label NAME]\n"
        "    Removes the lock from every line of USER (or from app password NAME).\n"},
    {"verify", user_cmd_verify, true,
        "verify USER -f FILE\n"
        "    Reads a password on stdin; exit 0 if it matches an active credential\n"
        "    of USER, 1 if not.\n"},
};

#define USER_NSUBS (sizeof(user_subs) / sizeof(user_subs[0]))

static const char user_options_help[] =
    "options:\n"
    "  -f, --file FILE       the passwd file (required)\n"
    "      --password-stdin  read the password from stdin, not the terminal\n"
    "  -s, --scheme S        SCRAM-SHA-256, ARGON2ID, SHA512-CRYPT or BLF-CRYPT;\n"
    "                        default: SCRAM-SHA-256 with SCRAM-SHA-1 keys (scram1=),\n"
    "                        which serves SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN/LOGIN\n"
    "  -l, --label NAME      an app password of the user\n"
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
 * Hashes the password in pw with the chosen scheme into cred ("{S}data")
 * and, by default (SCRAM-SHA-256 primary), SCRAM-SHA-1 keys into scram1.
 */
static int
user_hash(const struct user_opts *o, const struct buf *pw, struct buf *cred, struct buf *scram1)
{
	enum pwscheme s = o->scheme_given ? o->scheme : PWSCHEME_SCRAM_SHA256;

	if (pwscheme_generate(s, pw->data, pw->len, cred) == -1 ||
	    (!o->scheme_given &&
	        pwscheme_generate_data(PWSCHEME_SCRAM_SHA1, pw->data, pw->len, scram1) == -1)) {
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
	if (user_hash(o, &pw, &cred, &scram1) == -1)
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
	if (user_hash(o, &pw, &cred, &scram1) == -1)
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

static int
user_cmd_unlock(const struct user_opts *o)
{
	return user_set_lock(o, false);
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

static int
user_cmd_list(const struct user_opts *o)
{
	struct passwd_file *pf = user_load(o, false);
	json_t *doc = NULL, *arr = NULL;
	int r = USER_CMD_FAILED;

	if (pf == NULL)
		return USER_CMD_USAGE;
	if (o->json) {
		arr = json_array();
		doc = json_pack("{s:s, s:o}", "file", o->file, "credentials", arr);
	}
	for (size_t i = 0; i < pf->nentries; i++) {
		const struct passwd_entry *e = &pf->entries[i];
		const char *label, *created, *expires;
		bool scram1;
		char when[64];

		if (e->raw != NULL || (o->user != NULL && strcmp(e->user, o->user) != 0))
			continue;
		label = passwd_entry_get(e, "label");
		created = passwd_entry_get(e, "created");
		expires = passwd_entry_get(e, "expires");
		scram1 = passwd_entry_get(e, "scram1") != NULL;
		if (o->json) {
			json_t *schemes = json_pack("[s]", pwscheme_name(e->scheme));

			if (scram1)
				json_array_append_new(schemes, json_string("SCRAM-SHA-1"));
			json_array_append_new(arr,
			    json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:b, s:i}", "user",
			        e->user, "scheme", pwscheme_name(e->scheme), "schemes", schemes,
			        "label", label != NULL ? json_string(label) : json_null(),
			        "created", user_json_time(created), "expires",
			        user_json_time(expires), "locked", passwd_entry_is_locked(e),
			        "active", passwd_entry_is_active(e, (int64_t)time(NULL)), "line",
			        e->line));
			continue;
		}
		user_format_time(created, when, sizeof(when));
		printf("%s\t%s%s\t%s\t%s\t%s\n", e->user, pwscheme_name(e->scheme),
		    scram1 ? ",SCRAM-SHA-1" : "", label != NULL ? label : "-", when,
		    passwd_entry_is_locked(e) ? "locked" : "-");
	}
	if (doc != NULL) {
		if (json_dumpf(doc, stdout, JSON_INDENT(2)) == -1)
			goto fail;
		putchar('\n');
	}
	r = fflush(stdout) == 0 ? USER_CMD_OK : USER_CMD_FAILED;
fail:
	json_decref(doc);
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

int
user_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"password-stdin", no_argument, NULL, 'P'},
	    {"scheme", required_argument, NULL, 's'},
	    {"label", required_argument, NULL, 'l'},
	    {"json", no_argument, NULL, 'J'},
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
	while ((c = getopt_long(argc, argv, "f:s:l:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o.file = optarg;
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
	if (nargs > 2 || (sub->needs_user && nargs != 2)) {
		user_err("%s: expected %s", sub->name, sub->needs_user ? "USER" : "at most USER");
		user_usage(stderr, sub);
		return USER_CMD_USAGE;
	}
	o.user = nargs == 2 ? argv[optind + 1] : NULL;
	if (o.file == NULL) {
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
