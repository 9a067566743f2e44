/*
 * creds: route credentials (creds.h). The file is re-read for every
 * delivery that needs it (it is small), so rotating a password needs no
 * reload; its mode is checked again each time (0600 or stricter, as
 * conf_route_validate does at start) because a secret must never come from
 * a file others can read. Token commands run through /bin/sh -c with a
 * deadline (here, or where creds_set_runner says); their output is cached
 * per route, with the time it was made.
 */
#include "relay/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "conf/conf.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

extern char **environ;

#define CREDS_FILE_MAX 65536
#define CREDS_CACHE_MAX 64

struct creds_token {
	const struct conf_route *route;
	struct buf token;
	time_t made;
};

struct creds {
	pthread_mutex_t lock;
	struct creds_token cache[CREDS_CACHE_MAX];
	size_t n;
};

struct creds *
creds_new(void)
{
	struct creds *cr = xcalloc(1, sizeof(*cr));

	pthread_mutex_init(&cr->lock, NULL);
	return cr;
}

void
creds_free(struct creds *cr)
{
	if (cr == NULL)
		return;
	for (size_t i = 0; i < cr->n; i++)
		buf_free(&cr->cache[i].token);
	pthread_mutex_destroy(&cr->lock);
	free(cr);
}

const char *
creds_mech(const struct conf_route *r)
{
	const char *env;

	if (r->auth_set)
		return r->auth;
	if (r->kind == CONF_ROUTE_SMARTHOST && (env = getenv("SMTPAUTHMETHOD")) != NULL &&
	    *env != '\0' && strcasecmp(env, "none") != 0 && client_sasl_is_supported(env))
		return env;
	if (r->kind == CONF_ROUTE_SMARTHOST && r->credentials == NULL &&
	    getenv("SMTPACCOUNT") != NULL && getenv("SMTPPASSWORD") != NULL)
		return "PLAIN";
	return NULL;
}

int
creds_parse_line(
    const char *p, size_t len, char **user_r, const char **secret_r, size_t *secretlen_r)
{
	const char *sp, *s;

	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	sp = memchr(p, ' ', len);
	if (sp == NULL || sp == p)
		return -1;
	s = sp + 1;
	if (s >= p + len)
		return -1;
	*user_r = xstrndup(p, (size_t)(sp - p));
	*secret_r = s;
	*secretlen_r = (size_t)(p + len - s);
	return 0;
}

/* Runs cmd with /bin/sh -c; its stdout (at most CLIENT_SECRET_MAX bytes,
 * trailing white space dropped) goes to out. */
int
creds_run_command(const char *cmd, struct buf *out, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
	int pfd[2], status = 0;
	pid_t pid;
	time_t deadline = time(NULL) + CREDS_COMMAND_TIMEOUT;
	char chunk[1024];
	bool timed_out = false;

	if (pipe2(pfd, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "token command: pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if ((errno = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ)) != 0) {
		snprintf(err, errlen, "token command: cannot start /bin/sh: %s", strerror(errno));
		posix_spawn_file_actions_destroy(&fa);
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	for (;;) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		long left = (long)(deadline - time(NULL));
		ssize_t n;

		if (left <= 0) {
			timed_out = true;
			break;
		}
		if (poll(&p, 1, (int)(left * 1000)) <= 0) {
			if (errno == EINTR)
				continue;
			timed_out = true;
			break;
		}
		n = read(pfd[0], chunk, sizeof(chunk));
		if (n <= 0)
			break;
		if (buf_append(out, chunk, (size_t)n) == -1) {
			close(pfd[0]);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			snprintf(err, errlen, "token command: output longer than %d bytes",
			    CLIENT_SECRET_MAX);
			return -1;
		}
	}
	explicit_bzero(chunk, sizeof(chunk));
	close(pfd[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) == -1 || timed_out || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		snprintf(err, errlen, "token command %s",
		    timed_out ? "timed out" : "failed (non-zero exit status)");
		return -1;
	}
	while (out->len > 0 && strchr(" \t\r\n", out->data[out->len - 1]) != NULL)
		out->len--;
	if (out->len == 0) {
		snprintf(err, errlen, "token command printed nothing");
		return -1;
	}
	return 0;
}

static int
creds_run_here(
    const struct conf_route *r, const char *cmd, struct buf *out, char *err, size_t errlen)
{
	(void)r;
	return creds_run_command(cmd, out, err, errlen);
}

static creds_runner_fn *creds_runner = creds_run_here;

char *
creds_read_file(const struct conf_route *r, size_t *len_r, char *err, size_t errlen)
{
	struct stat st;
	char *text;

	/* checked each time: a secret must never come from a file others can read */
	if (stat(r->credentials, &st) == -1) {
		snprintf(err, errlen, "credentials %s: %s", r->credentials, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 0177) != 0) {
		snprintf(err, errlen, "credentials %s: must be a file of mode 0600 or stricter",
		    r->credentials);
		return NULL;
	}
	text = fs_read_file(r->credentials, CREDS_FILE_MAX, len_r);
	if (text == NULL)
		snprintf(err, errlen, "credentials %s: %s", r->credentials, strerror(errno));
	return text;
}

static creds_reader_fn *creds_reader = creds_read_file;

void
creds_set_reader(creds_reader_fn *fn)
{
	creds_reader = fn != NULL ? fn : creds_read_file;
}

void
creds_set_runner(creds_runner_fn *fn)
{
	creds_runner = fn != NULL ? fn : creds_run_here;
}

/* The token for route r from its command, cached for token_ttl. */
static int
creds_token(struct creds *cr, const struct conf_route *r, const char *cmd, struct buf *secret,
    char *err, size_t errlen)
{
	struct creds_token *t = NULL;
	time_t now = time(NULL);
	int rc = -1;

	pthread_mutex_lock(&cr->lock);
	for (size_t i = 0; i < cr->n; i++) {
		if (cr->cache[i].route == r)
			t = &cr->cache[i];
	}
	if (t == NULL && cr->n < CREDS_CACHE_MAX) {
		t = &cr->cache[cr->n++];
		t->route = r;
		buf_init(&t->token, CLIENT_SECRET_MAX);
		buf_set_secret(&t->token);
	}
	if (t == NULL) {
		snprintf(err, errlen, "too many token routes");
		goto out;
	}
	if (t->token.len == 0 || now - t->made >= (time_t)r->token_ttl) {
		buf_reset(&t->token);
		/* the lock is held while the command runs: one run per route */
		if (creds_runner(r, cmd, &t->token, err, errlen) == -1) {
			buf_reset(&t->token);
			goto out;
		}
		t->made = now;
	}
	rc = buf_append(secret, t->token.data, t->token.len);
	if (rc == -1)
		snprintf(err, errlen, "token too long");
out:
	pthread_mutex_unlock(&cr->lock);
	return rc;
}

void
creds_invalidate(struct creds *cr, const struct conf_route *r)
{
	pthread_mutex_lock(&cr->lock);
	for (size_t i = 0; i < cr->n; i++) {
		if (cr->cache[i].route == r)
			buf_reset(&cr->cache[i].token);
	}
	pthread_mutex_unlock(&cr->lock);
}

char *
creds_command(const struct conf_route *r, char *err, size_t errlen)
{
	const char *s;
	size_t slen, len;
	char *text, *nl, *user = NULL, *cmd = NULL;

	if (r->credentials == NULL) {
		snprintf(err, errlen, "no credentials file");
		return NULL;
	}
	text = creds_read_file(r, &len, err, errlen);
	if (text == NULL)
		return NULL;
	nl = memchr(text, '\n', len);
	if (creds_parse_line(text, nl != NULL ? (size_t)(nl - text) : len, &user, &s, &slen) == 0 &&
	    s[0] == '!')
		cmd = xstrndup(s + 1, slen - 1);
	else
		snprintf(err, errlen, "credentials %s: not \"USER !COMMAND\"", r->credentials);
	free(user);
	explicit_bzero(text, len);
	free(text);
	return cmd;
}

int
creds_get(struct creds *cr, const struct conf_route *r, char **user_r, struct buf *secret,
    char *err, size_t errlen)
{
	const char *env_user = getenv("SMTPACCOUNT"), *env_pass = getenv("SMTPPASSWORD");
	const char *s;
	size_t slen, len;
	char *text, *nl;
	int rc = -1;

	*user_r = NULL;
	if (r->credentials == NULL) {
		if (r->kind == CONF_ROUTE_SMARTHOST && env_user != NULL && *env_user != '\0' &&
		    env_pass != NULL) {
			*user_r = xstrdup(env_user);
			if (buf_append_str(secret, env_pass) == 0)
				return 0;
			snprintf(err, errlen, "SMTPPASSWORD is too long");
			free(*user_r);
			*user_r = NULL;
			return -1;
		}
		snprintf(err, errlen,
		    "auth is set but there are no credentials (credentials = FILE, or "
		    "SMTPACCOUNT and SMTPPASSWORD for a smarthost)");
		return -1;
	}
	text = creds_reader(r, &len, err, errlen);
	if (text == NULL)
		return -1;
	nl = memchr(text, '\n', len);
	if (creds_parse_line(text, nl != NULL ? (size_t)(nl - text) : len, user_r, &s, &slen) ==
	    -1) {
		snprintf(err, errlen,
		    "credentials %s: expected \"USER PASSWORD\" or \"USER !COMMAND\"",
		    r->credentials);
		goto out;
	}
	if (s[0] == '!' && r->auth != NULL && client_sasl_is_oauth(r->auth)) {
		char *cmd = xstrndup(s + 1, slen - 1);

		rc = creds_token(cr, r, cmd, secret, err, errlen);
		explicit_bzero(cmd, strlen(cmd));
		free(cmd);
	} else {
		rc = buf_append(secret, s, slen);
		if (rc == -1)
			snprintf(err, errlen, "credentials %s: secret too long", r->credentials);
	}
	if (rc == -1) {
		free(*user_r);
		*user_r = NULL;
	}
out:
	explicit_bzero(text, len);
	free(text);
	return rc;
}
