/*
 * user_cmd: `smtpgate user`, the passwd-file editor (DESIGN 5.1, 5.3).
 *
 *   smtpgate user add|passwd|del|list|lock|unlock USER -f FILE
 *                 [--password-stdin] [--scheme S] [--label NAME] [--json]
 *   smtpgate user verify USER -f FILE
 *   smtpgate user hash [--scheme S] [--password-stdin]
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
 * mix.
 *
 * This file holds the subcommand table, the command line, the helpers
 * every subcommand shares (user_cmd_priv.h) and the subcommands that only
 * edit fields: del, lock, unlock, senders. The others are split by family:
 * user_password_cmd.c reads and hashes passwords (add, passwd, verify),
 * user_app_cmd.c makes app passwords, user_list_cmd.c lists credentials.
 *
 * Exit status: 0 done, 1 failed (no such user, user exists, mismatch, write
 * error), 2 usage or an unreadable or invalid file.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "auth/passwd_file.h"
#include "auth/pwscheme.h"
#include "cluster/cluster_sync.h"
#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "net/admin.h"
#include "cmd/admin_cmd.h"
#include "cmd/user_cmd_priv.h"
#include "policy/sender.h"
#include "queue/spool.h"
#include "server/sendquota.h"

struct user_cmd_sub {
	const char *name;
	int (*fn)(const struct user_cmd_opts *o);
	bool needs_user;
	const char *usage;
	int extra_min, extra_max; /* words after USER; -1: any number */
};

static int user_cmd_lock(const struct user_cmd_opts *o);
static int user_cmd_unlock(const struct user_cmd_opts *o);
static int user_cmd_senders(const struct user_cmd_opts *o);

static const struct user_cmd_sub user_cmd_subs[] = {
    {"add", user_password_cmd_add, true,
        "add USER -f FILE [--password-stdin] [--scheme S] [--label NAME]\n"
        "    Adds USER (an error if USER exists: use passwd). With --label, adds an\n"
        "    app password: another credential line of USER named NAME.\n",
        0, 0},
    {"passwd", user_password_cmd_passwd, true,
        "passwd USER -f FILE [--password-stdin] [--scheme S] [--label NAME]\n"
        "    Sets the password of USER (the lines without a label), or of the app\n"
        "    password NAME. Keeps the lock and the other fields.\n",
        0, 0},
    {"del", user_cmd_del, true,
        "del USER -f FILE [--label NAME]\n"
        "    Deletes every line of USER, or only the app password NAME.\n",
        0, 0},
    {"list", user_list_cmd_run, false,
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
    {"verify", user_password_cmd_verify, true,
        "verify USER -f FILE\n"
        "    Reads a password on stdin; exit 0 if it matches an active credential\n"
        "    of USER, 1 if not.\n",
        0, 0},
    {"hash", user_password_cmd_print_hash, false,
        "hash [--scheme S] [--password-stdin]\n"
        "    Reads a password as add does and prints its credential string\n"
        "    ({SCHEME}data; default SCRAM-SHA-256) alone on the last line, for\n"
        "    the credential column of a pgsql backend (no file is read).\n",
        0, 0},
    {"app-password", user_app_cmd_run, true,
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

#define USER_CMD_NSUBS (sizeof(user_cmd_subs) / sizeof(user_cmd_subs[0]))

static const char user_cmd_options_help[] =
    "options:\n"
    "  -f, --file FILE       the passwd file (required but by hash)\n"
    "  -c, --config FILE     unlock: the server configuration (quota holds)\n"
    "      --password-stdin  read the password from stdin, not the terminal\n"
    "  -s, --scheme S        SCRAM-SHA-256, ARGON2ID, SHA512-CRYPT or BLF-CRYPT;\n"
    "                        default: SCRAM-SHA-256 with SCRAM-SHA-1 keys (scram1=),\n"
    "                        which serves SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN/LOGIN\n"
    "  -l, --label NAME      an app password of the user\n"
    "  -e, --expires DATE    app-password add: when it stops working\n"
    "      --json            list: one JSON document\n"
    "  -h, --help            this help\n"
    "\n"
    "Exit status: 0 done, 1 failed, 2 usage or invalid file.\n";

static void
user_cmd_usage(FILE *f, const struct user_cmd_sub *sub)
{
	if (sub != NULL) {
		fprintf(f, "usage: smtpgate user %s\n%s", sub->usage, user_cmd_options_help);
		return;
	}
	fprintf(f, "usage: smtpgate user COMMAND [USER] -f FILE [options]\n\ncommands:\n");
	for (size_t i = 0; i < USER_CMD_NSUBS; i++)
		fprintf(f, "  %s", user_cmd_subs[i].usage);
	fprintf(f, "\n%s", user_cmd_options_help);
}

void
user_cmd_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "smtpgate user: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Locks the folder of the file for a read-modify-write (released at exit
 * or on close). */
int
user_cmd_lock_dir(const char *file)
{
	char *dir = fs_dirname(file);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd == -1 || flock(fd, LOCK_EX) == -1) {
		user_cmd_err("%s: cannot lock: %s", dir, strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	free(dir);
	return fd;
}

struct passwd_file *
user_cmd_load(const struct user_cmd_opts *o, bool missing_ok)
{
	char err[1024];
	struct passwd_file *pf = passwd_file_load(o->file, missing_ok, err, sizeof(err));

	if (pf == NULL)
		user_cmd_err("%s", err);
	return pf;
}

int
user_cmd_save(const struct passwd_file *pf)
{
	char err[1024];

	if (passwd_file_save(pf, err, sizeof(err)) == -1) {
		user_cmd_err("%s", err);
		return USER_CMD_FAILED;
	}
	return USER_CMD_OK;
}

bool
user_cmd_entry_matches(const struct passwd_entry *e, const char *user, const char *label)
{
	const char *l;

	if (e->raw != NULL || strcmp(e->user, user) != 0)
		return false;
	if (label == NULL)
		return true;
	l = passwd_entry_get(e, "label");
	return l != NULL && strcmp(l, label) == 0;
}

int
user_cmd_del(const struct user_cmd_opts *o)
{
	struct passwd_file *pf;
	size_t n = 0;
	int r = USER_CMD_FAILED;

	if (user_cmd_lock_dir(o->file) == -1)
		return USER_CMD_FAILED;
	if ((pf = user_cmd_load(o, false)) == NULL)
		return USER_CMD_USAGE;
	for (size_t i = pf->nentries; i-- > 0;) {
		if (user_cmd_entry_matches(&pf->entries[i], o->user, o->label)) {
			passwd_file_remove(pf, i);
			n++;
		}
	}
	if (n == 0)
		user_cmd_err("%s: no such %s", o->user, o->label != NULL ? "app password" : "user");
	else
		r = user_cmd_save(pf);
	passwd_file_free(pf);
	return r;
}

static int
user_cmd_set_lock(const struct user_cmd_opts *o, bool lock)
{
	struct passwd_file *pf;
	const char *errstr;
	size_t n = 0;
	int r = USER_CMD_FAILED;

	if (user_cmd_lock_dir(o->file) == -1)
		return USER_CMD_FAILED;
	if ((pf = user_cmd_load(o, false)) == NULL)
		return USER_CMD_USAGE;
	for (size_t i = 0; i < pf->nentries; i++) {
		struct passwd_entry *e = &pf->entries[i];

		if (!user_cmd_entry_matches(e, o->user, o->label))
			continue;
		n++;
		if (!lock)
			passwd_entry_unset(e, "locked");
		else if (passwd_entry_set(e, "locked", "yes", &errstr) == -1)
			goto fail;
	}
	if (n == 0) {
		user_cmd_err("%s: no such %s", o->user, o->label != NULL ? "app password" : "user");
		goto fail;
	}
	r = user_cmd_save(pf);
fail:
	passwd_file_free(pf);
	return r;
}

static int
user_cmd_lock(const struct user_cmd_opts *o)
{
	return user_cmd_set_lock(o, true);
}

/* "/quota/unlock?user=" and user percent-encoded (RFC 3986 2.1) into out. */
static int
user_cmd_quota_target(const char *user, char *out, size_t outlen)
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
user_cmd_quota_unlock(const struct user_cmd_opts *o, const struct conf *c)
{
	char target[2048], err[1024];
	struct buf out;
	int status = 0, rc;

	/* the shared hold first: every node lifts it, this one too */
	if (c->cluster) {
		struct cluster_sync *cs = cluster_sync_open(c, err, sizeof(err));

		rc = cs != NULL ? cluster_sync_quota_unlock(cs, o->user, err, sizeof(err)) : -1;
		cluster_sync_close(cs);
		if (rc == -1)
			user_cmd_err("%s: the shared state is not reachable (%s); this node only",
			    o->user, err);
		else
			printf(
			    "%s: %s (shared state of the cluster %s: every node, counts reset)\n",
			    o->user, rc == 1 ? "sending quota hold removed" : "no shared hold",
			    c->cluster_redis);
	}
	if (c->admin) {
		if (user_cmd_quota_target(o->user, target, sizeof(target)) == -1) {
			user_cmd_err("%s: name too long", o->user);
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
			user_cmd_err("%s: %s", o->user, err);
			return USER_CMD_FAILED;
		}
		if (rc == 0) {
			user_cmd_err("%s: the admin listener answered %d", o->user, status);
			return USER_CMD_FAILED;
		}
		if (errno != ECONNREFUSED) {
			user_cmd_err("%s", err);
			return USER_CMD_FAILED;
		}
		/* nothing listens: the server is stopped; edit its state file */
	}
	rc = sendquota_file_unlock(c->spool, o->user);
	if (rc == -1) {
		user_cmd_err("%s/%s: %s", c->spool, SPOOL_QUOTA_LOCKS, strerror(errno));
		return USER_CMD_FAILED;
	}
	printf("%s: %s\n", o->user,
	    rc == 1 ? "sending quota hold removed from the state file (a running server "
	              "applies it within seconds)"
	            : "no sending quota hold");
	return USER_CMD_OK;
}

static int
user_cmd_unlock(const struct user_cmd_opts *o)
{
	char err[1024];
	struct user_cmd_opts fo = *o;
	struct conf *c = NULL;
	int r = USER_CMD_OK;

	if (o->config != NULL) {
		c = conf_load(o->config, err, sizeof(err));
		if (c == NULL) {
			user_cmd_err("%s", err);
			return USER_CMD_USAGE;
		}
		if (fo.file == NULL)
			fo.file = conf_backend_file(c); /* NULL: another backend */
	}
	if (fo.file != NULL)
		r = user_cmd_set_lock(&fo, false);
	if (r == USER_CMD_OK && c != NULL)
		r = user_cmd_quota_unlock(o, c);
	conf_free(c);
	return r;
}

void
user_cmd_format_time(const char *unix_time, char *out, size_t outlen)
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

static int
user_cmd_senders(const struct user_cmd_opts *o)
{
	struct passwd_file *pf;
	const char *errstr;
	struct buf v;
	size_t n = 0;
	int r = USER_CMD_USAGE;

	buf_init(&v, SENDER_PATTERNS_MAX);
	for (int i = 0; i < o->nargs; i++) {
		if (sender_pattern_check(o->args[i], &errstr) == -1) {
			user_cmd_err("\"%s\": %s", o->args[i], errstr);
			buf_free(&v);
			return USER_CMD_USAGE;
		}
		if ((v.len > 0 && buf_append(&v, ",", 1) == -1) ||
		    buf_append_str(&v, o->args[i]) == -1) {
			user_cmd_err("too many patterns (at most %d bytes)", SENDER_PATTERNS_MAX);
			buf_free(&v);
			return USER_CMD_USAGE;
		}
	}
	if (user_cmd_lock_dir(o->file) == -1) {
		buf_free(&v);
		return USER_CMD_FAILED;
	}
	if ((pf = user_cmd_load(o, false)) == NULL) {
		buf_free(&v);
		return USER_CMD_USAGE;
	}
	/* on every line of the user: the server uses the union of them */
	for (size_t i = 0; i < pf->nentries; i++) {
		struct passwd_entry *e = &pf->entries[i];

		if (!user_cmd_entry_matches(e, o->user, NULL))
			continue;
		n++;
		passwd_entry_unset(e, "senders");
		if (v.len > 0 && passwd_entry_set(e, "senders", v.data, &errstr) == -1) {
			user_cmd_err("%s", errstr);
			goto fail;
		}
	}
	r = USER_CMD_FAILED;
	if (n == 0) {
		user_cmd_err("%s: no such user", o->user);
		goto fail;
	}
	if ((r = user_cmd_save(pf)) == USER_CMD_OK) {
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

/* The options into o (GNU getopt_long permutes: options may follow USER);
 * optind is then the first word. -1 after a message on stderr. */
static int
user_cmd_parse(int argc, char **argv, struct user_cmd_opts *o, bool *help_r)
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
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:c:s:l:e:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->file = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case 'P':
			o->password_stdin = true;
			break;
		case 's':
			if (pwscheme_from_name(optarg, strlen(optarg), &o->scheme) == -1 ||
			    o->scheme == PWSCHEME_SCRAM_SHA1) {
				user_cmd_err(
				    "--scheme: expected SCRAM-SHA-256, ARGON2ID, SHA512-CRYPT "
				    "or BLF-CRYPT");
				return -1;
			}
			o->scheme_given = true;
			break;
		case 'l':
			o->label = optarg;
			break;
		case 'J':
			o->json = true;
			break;
		case 'e':
			o->expires = optarg;
			break;
		case 'h':
			*help_r = true;
			break;
		default:
			user_cmd_err("unknown or incomplete option \"%s\"", argv[optind - 1]);
			user_cmd_usage(stderr, NULL);
			return -1;
		}
	}
	return 0;
}

/* The nargs words of sub (words[0] is its name) into o: USER, and LABEL or
 * the further words. -1 after a message on stderr. */
static int
user_cmd_words(const struct user_cmd_sub *sub, char **words, int nargs, struct user_cmd_opts *o)
{
	if (sub->fn == user_app_cmd_run) {
		/* app-password add|del USER LABEL */
		if (nargs != 4 || (strcmp(words[1], "add") != 0 && strcmp(words[1], "del") != 0)) {
			user_cmd_err("app-password: expected add|del USER LABEL");
			user_cmd_usage(stderr, sub);
			return -1;
		}
		o->args = words + 1;
		o->nargs = 1;
		o->user = words[2];
		o->label = words[3];
		nargs = 2;
	} else if (sub->extra_max != 0) {
		if (nargs < 2 + sub->extra_min ||
		    (sub->extra_max > 0 && nargs > 2 + sub->extra_max)) {
			user_cmd_err("%s: expected USER and %s", sub->name,
			    sub->extra_min > 0 ? "more words" : "optional words");
			user_cmd_usage(stderr, sub);
			return -1;
		}
		o->args = words + 2;
		o->nargs = nargs - 2;
		nargs = 2;
	}
	if (sub->fn == user_password_cmd_print_hash && nargs != 1) {
		user_cmd_err("hash: takes no USER");
		user_cmd_usage(stderr, sub);
		return -1;
	}
	if (nargs > 2 || (sub->needs_user && nargs != 2)) {
		user_cmd_err(
		    "%s: expected %s", sub->name, sub->needs_user ? "USER" : "at most USER");
		user_cmd_usage(stderr, sub);
		return -1;
	}
	if (o->user == NULL)
		o->user = nargs == 2 ? words[1] : NULL;
	return 0;
}

/* Each option applies to sub. -1 after a message on stderr. */
static int
user_cmd_check(const struct user_cmd_sub *sub, const struct user_cmd_opts *o)
{
	if (o->expires != NULL && (sub->fn != user_app_cmd_run || strcmp(o->args[0], "add") != 0)) {
		user_cmd_err("--expires applies to app-password add only");
		return -1;
	}
	if (sub->fn == user_app_cmd_run && o->scheme_given) {
		user_cmd_err(
		    "app-password: --scheme does not apply (app passwords are SCRAM keys)");
		return -1;
	}
	if (sub->fn == user_password_cmd_print_hash) {
		if (o->file != NULL || o->config != NULL || o->label != NULL || o->json) {
			user_cmd_err("hash: only --scheme and --password-stdin apply");
			return -1;
		}
		return 0;
	}
	if (o->config != NULL && sub->fn != user_cmd_unlock) {
		user_cmd_err("-c applies to unlock only");
		return -1;
	}
	if (o->file == NULL && o->config == NULL) {
		user_cmd_err("%s: -f FILE is required", sub->name);
		user_cmd_usage(stderr, sub);
		return -1;
	}
	if (o->json && sub->fn != user_list_cmd_run) {
		user_cmd_err("--json applies to list only");
		return -1;
	}
	return 0;
}

int
user_main(int argc, char **argv)
{
	struct user_cmd_opts o;
	const struct user_cmd_sub *sub = NULL;
	bool help = false;
	int nargs;

	memset(&o, 0, sizeof(o));
	if (user_cmd_parse(argc, argv, &o, &help) == -1)
		return USER_CMD_USAGE;
	nargs = argc - optind;
	if (nargs >= 1) {
		for (size_t i = 0; i < USER_CMD_NSUBS; i++) {
			if (strcmp(argv[optind], user_cmd_subs[i].name) == 0)
				sub = &user_cmd_subs[i];
		}
	}
	if (help) {
		user_cmd_usage(stdout, sub);
		return USER_CMD_OK;
	}
	if (sub == NULL) {
		if (nargs >= 1)
			user_cmd_err("unknown command \"%s\"", argv[optind]);
		user_cmd_usage(stderr, NULL);
		return USER_CMD_USAGE;
	}
	if (user_cmd_words(sub, argv + optind, nargs, &o) == -1 || user_cmd_check(sub, &o) == -1)
		return USER_CMD_USAGE;
	return sub->fn(&o);
}
