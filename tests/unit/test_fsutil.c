/*
 * Unit tests for lib/fsutil: fs_write_atomic replaces a file with the mode
 * asked for, leaves no temporary file behind, and stays correct when
 * several threads replace the same path at once (each writer has its own
 * temporary file: the file always holds one writer's whole content).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"

#define WRITERS 4
#define ROUNDS 200
#define CONTENT_LEN 4096

struct dir {
	char path[64];
	char file[96];
};

static void
dir_make(struct dir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/sg-fsutil-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	snprintf(d->file, sizeof(d->file), "%s/state.json", d->path);
}

/* Entries of the folder other than . and .. */
static size_t
dir_count(const struct dir *d)
{
	DIR *dh = opendir(d->path);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(dh);
	while ((de = readdir(dh)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(dh);
	return n;
}

static void
dir_remove(struct dir *d)
{
	unlink(d->file);
	assert_int_equal(rmdir(d->path), 0); /* fails if anything was left */
}

static void
test_replace_mode_no_leftover(void **state)
{
	struct dir d;
	struct stat st;
	size_t len;
	char *got;

	(void)state;
	dir_make(&d);
	assert_int_equal(fs_write_atomic(d.file, "one\n", 4, 0600), 0);
	assert_int_equal(fs_write_atomic(d.file, "two, longer\n", 12, 0640), 0);
	got = fs_read_file(d.file, 1024, &len);
	assert_non_null(got);
	assert_int_equal(len, 12);
	assert_memory_equal(got, "two, longer\n", 12);
	free(got);
	assert_int_equal(stat(d.file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(dir_count(&d), 1);
	dir_remove(&d);
}

static void
test_missing_folder_fails_cleanly(void **state)
{
	(void)state;
	assert_int_equal(fs_write_atomic("/tmp/sg-fsutil-none/x/state", "x", 1, 0600), -1);
}

struct writer {
	const char *file;
	char fill;
	int failures;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	char content[CONTENT_LEN];

	memset(content, w->fill, sizeof(content));
	for (int i = 0; i < ROUNDS; i++) {
		if (fs_write_atomic(w->file, content, sizeof(content), 0600) == -1)
			w->failures++;
	}
	return NULL;
}

static void
test_concurrent_writers(void **state)
{
	struct dir d;
	struct writer w[WRITERS];
	pthread_t t[WRITERS];
	size_t len;
	char *got;

	(void)state;
	dir_make(&d);
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.file = d.file, .fill = (char)('a' + i)};
		assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
	}
	/* every thread joined before any assertion can leave this frame */
	for (int i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < WRITERS; i++)
		assert_int_equal(w[i].failures, 0);
	/* whole: one writer's content, never a mix or a short file */
	got = fs_read_file(d.file, CONTENT_LEN * 2, &len);
	assert_non_null(got);
	assert_int_equal(len, CONTENT_LEN);
	for (size_t i = 1; i < len; i++)
		assert_int_equal(got[i], got[0]);
	assert_true(got[0] >= 'a' && got[0] < 'a' + WRITERS);
	free(got);
	assert_int_equal(dir_count(&d), 1); /* no temporary file left */
	dir_remove(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_replace_mode_no_leftover),
	    cmocka_unit_test(test_missing_folder_fails_cleanly),
	    cmocka_unit_test(test_concurrent_writers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
