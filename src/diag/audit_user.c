/*
 * audit_user: see audit_user.h.
 */
#include "diag/audit_user.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/conf.h"

#define AUDIT_USER_FILES_MAX 64

struct audit_user_file {
	const char *path;
	char what[160]; /* the config key that names it */
};

/* Every secret file the configuration names. */
static size_t
audit_user_files(const struct conf *c, struct audit_user_file *out, size_t max)
{
	size_t n = 0;
	const char *passwd = conf_backend_file(c);

#define AUDIT_USER_ADD(p, ...)                                                                     \
	do {                                                                                       \
		if ((p) != NULL && n < max) {                                                      \
			out[n].path = (p);                                                         \
			snprintf(out[n].what, sizeof(out[n].what), __VA_ARGS__);                   \
			n++;                                                                       \
		}                                                                                  \
	} while (0)
	AUDIT_USER_ADD(passwd, "[auth] backend");
	for (size_t i = 0; i < c->ncerts; i++)
		AUDIT_USER_ADD(c->certs[i].key, "[tls] key, %s:%d", c->path, c->certs[i].line);
	for (size_t i = 0; i < c->ndkims; i++)
		AUDIT_USER_ADD(c->dkims[i]->key_path, "[dkim %s] key", c->dkims[i]->domain);
	for (size_t i = 0; i <= c->nroutes; i++) {
		const struct conf_route *r = i < c->nroutes ? c->routes[i] : c->relay;

		if (r != NULL)
			AUDIT_USER_ADD(r->credentials, "[%s%s] credentials",
			    r->domain != NULL ? "route " : "relay",
			    r->domain != NULL ? r->domain : "");
	}
	AUDIT_USER_ADD(c->admin_token_file, "[admin] token_file");
	AUDIT_USER_ADD(c->oauth_introspection_secret_file, "[oauth] introspection secret");
	AUDIT_USER_ADD(c->sql_password_file, "[sql] password_file");
#undef AUDIT_USER_ADD
	return n;
}

/* Which of files[] pw can open for reading: a child takes pw's identity
 * and tries each (the kernel's answer, ACLs and folders included). A bit
 * per file in *readable. -1 when it could not tell. */
static int
audit_user_try(const struct passwd *pw, const struct audit_user_file *files, size_t n,
    unsigned long long *readable)
{
	int p[2], status;
	pid_t pid;
	ssize_t got;

	if (pipe(p) == -1)
		return -1;
	pid = fork();
	if (pid == -1) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		unsigned long long bits = 0;

		close(p[0]);
		if (initgroups(pw->pw_name, pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
		    setuid(pw->pw_uid) == -1 || getuid() != pw->pw_uid)
			_exit(1);
		for (size_t i = 0; i < n; i++) {
			int fd = open(files[i].path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

			if (fd != -1) {
				bits |= 1ULL << i;
				close(fd);
			}
		}
		_exit(write(p[1], &bits, sizeof(bits)) == (ssize_t)sizeof(bits) ? 0 : 1);
	}
	close(p[1]);
	got = read(p[0], readable, sizeof(*readable));
	close(p[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	return got == (ssize_t)sizeof(*readable) && WIFEXITED(status) && WEXITSTATUS(status) == 0
	    ? 0
	    : -1;
}

void
audit_user(const struct conf *c, struct findings *f)
{
	struct audit_user_file files[AUDIT_USER_FILES_MAX];
	unsigned long long readable = 0;
	struct passwd *pw;
	size_t n;

	if (geteuid() != 0) {
		struct passwd *me = getpwuid(geteuid());

		findings_add(f, "server-not-root",
		    "the audit runs as %s (uid %u): started as this user, every process of serve "
		    "runs as it and [server] user = %s is not used",
		    me != NULL ? me->pw_name : "?", (unsigned)geteuid(), c->user);
		return;
	}
	pw = getpwnam(c->user);
	if (pw == NULL) {
		findings_add(f, "server-user-missing", "[server] user = %s (%s): no such user",
		    c->user, c->path);
		return;
	}
	if (pw->pw_uid == 0) {
		findings_add(f, "server-user-root",
		    "[server] user = %s (%s): the process that reads the network keeps uid 0",
		    c->user, c->path);
		return;
	}
	n = audit_user_files(c, files, AUDIT_USER_FILES_MAX);
	if (n == 0 || audit_user_try(pw, files, n, &readable) == -1)
		return;
	for (size_t i = 0; i < n; i++) {
		if (readable & (1ULL << i))
			findings_add(f, "secret-readable-by-server-user",
			    "%s (%s) can be read by %s", files[i].path, files[i].what, pw->pw_name);
	}
}

uid_t
audit_user_spool_owner(const struct conf *c)
{
	struct passwd *pw;

	if (geteuid() != 0 || (pw = getpwnam(c->user)) == NULL)
		return geteuid();
	return pw->pw_uid;
}
