/*
 * conf_secret: the one reader of the files that hold a secret named by the
 * configuration ([admin] token_file, [cluster] redis_password_file): read
 * once per load, from the parent's copy in the children (lib/vault.h).
 */
#include "conf/conf_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/vault.h"

int
conf_secret_read(
    struct conf_parse *p, const char *what, const char *path, char *buf, size_t cap, size_t *len_r)
{
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd, rc = -1;

	/* one open without blocking on a FIFO, then fstat: what is checked is
	 * what is read */
	fd = vault_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1 || fstat(fd, &st) == -1) {
		conf_error(p, "%s: %s: %s", what, path, strerror(errno));
		goto out;
	}
	/* a secret never comes from a file others can read */
	if (!S_ISREG(st.st_mode) || (st.st_mode & 0177) != 0) {
		conf_error(p,
		    "%s: %s must be a regular file of mode 0600 or stricter (it is %s%04o): chmod "
		    "600 %s",
		    what, path, S_ISREG(st.st_mode) ? "" : "not a regular file, mode ",
		    (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	while (len < cap && (n = read(fd, buf + len, cap - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			conf_error(p, "%s: %s: %s", what, path, strerror(errno));
			explicit_bzero(buf, len);
			goto out;
		}
		len += (size_t)n;
	}
	*len_r = len;
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	return rc;
}
