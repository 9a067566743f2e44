/* Unit tests for lib/vault: what the parent records is a copy of the bytes
 * it read (a later change of the file does not reach the child), with the
 * file's mode, sealed against writes; an installed vault serves those
 * paths, each open a private copy at offset 0 (two readers do not share an
 * offset); other paths open as usual; without a vault, vault_open is
 * open(2). */
#include <errno.h>
#include <fcntl.h>
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

#include "lib/fsutil.h"
#include "lib/vault.h"

static char dir[] = "/tmp/test_vault.XXXXXX";

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void
read_all(int fd, char *out, size_t max)
{
	ssize_t n = read(fd, out, max - 1);

	assert_true(n >= 0);
	out[n] = '\0';
}

static void
test_record_install_serve(void **state)
{
	char key[128], other[128], buf[64];
	struct vault *v;
	struct stat st;
	int a, b;
	size_t len;
	char *text;

	(void)state;
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	write_file(key, "secret one", 0600);
	write_file(other, "plain", 0644);

	/* nothing recorded without a read */
	vault_record_begin();
	assert_null(vault_record_end());

	vault_record_begin();
	a = vault_open(key, O_RDONLY | O_CLOEXEC);
	assert_true(a != -1);
	close(a);
	v = vault_record_end();
	assert_non_null(v);
	assert_int_equal(vault_count(v), 1);

	/* the file changes after the parent checked it: the copy does not */
	write_file(key, "secret two, longer", 0600);
	assert_null(vault_install(v));
	a = vault_open(key, O_RDONLY | O_CLOEXEC);
	b = vault_open(key, O_RDONLY | O_CLOEXEC);
	assert_true(a != -1 && b != -1);
	read_all(a, buf, sizeof(buf));
	assert_string_equal(buf, "secret one");
	/* b has an offset of its own */
	read_all(b, buf, sizeof(buf));
	assert_string_equal(buf, "secret one");
	/* the mode is the file's, and the copy cannot be written */
	assert_int_equal(fstat(a, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(write(a, "x", 1), -1);
	close(a);
	close(b);
	text = fs_read_file(key, 1024, &len);
	assert_non_null(text);
	assert_int_equal(len, 10);
	assert_string_equal(text, "secret one");
	free(text);

	/* a path the vault does not hold opens as usual */
	a = vault_open(other, O_RDONLY | O_CLOEXEC);
	assert_true(a != -1);
	read_all(a, buf, sizeof(buf));
	assert_string_equal(buf, "plain");
	close(a);

	/* uninstalled: the file itself again */
	vault_free(vault_install(NULL));
	text = fs_read_file(key, 1024, &len);
	assert_string_equal(text, "secret two, longer");
	free(text);
	unlink(key);
	unlink(other);
}

static void
test_missing_file(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/none", dir);
	vault_record_begin();
	assert_int_equal(vault_open(path, O_RDONLY), -1);
	assert_int_equal(errno, ENOENT);
	assert_null(vault_record_end());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_record_install_serve),
	    cmocka_unit_test(test_missing_file),
	};
	int rc;

	if (mkdtemp(dir) == NULL)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return rc;
}
