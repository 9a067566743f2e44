/*
 * fsutil: file helpers with the durability rules spelled out: write_all
 * retries short writes; fsync_dir makes a rename or unlink durable; and
 * fs_write_atomic replaces a file (temp file, fsync, rename, fsync dir).
 */
#ifndef SG_LIB_FSUTIL_H
#define SG_LIB_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

int fs_write_all(int fd, const void *p, size_t n) __attribute__((warn_unused_result));
int fs_fsync_dir(const char *dir) __attribute__((warn_unused_result));
#define FS_TMP_MARK ".tmp-" /* in fs_write_atomic's temporary names */
/* Replaces path with the n bytes at p, created with mode: a unique temporary
 * file "DIR/.NAME" FS_TMP_MARK "XXXXXX" (a crash may leave one behind),
 * fsync, rename over path, fsync of DIR. Durable on return; concurrent
 * writers of one path never share a temporary file (the last rename wins). */
int fs_write_atomic(const char *path, const void *p, size_t n, mode_t mode)
    __attribute__((warn_unused_result));
/* Reads a whole file (up to max bytes) into a malloc'd NUL-terminated string. */
char *fs_read_file(const char *path, size_t max, size_t *len_r);
/* The directory part of path in a malloc'd string ("." when there is none). */
char *fs_dirname(const char *path);
/* base if path is relative, else path: malloc'd "base/path" or a copy. */
char *fs_path_join(const char *base, const char *path);

#endif
