/*
 * vault: files that a process may not open itself, opened for it by one
 * that may (DESIGN 2.1). The parent records every file it opens while it
 * loads a configuration (the config, its token, TLS and DKIM keys), each as
 * a sealed copy of the bytes it read, so that the child loads exactly what
 * the parent checked; it hands each copy, with its path, to the child,
 * which installs them: from then on vault_open() of one of those paths
 * gives a private copy, and fs_read_file() reads through it. Other paths are opened as usual, so a file the child
 * may read (a CA bundle) needs no recording.
 *
 * Without vault_record_begin() or vault_install(), vault_open() is open(2).
 */
#ifndef SG_LIB_VAULT_H
#define SG_LIB_VAULT_H

#include <stdbool.h>
#include <stddef.h>

#define VAULT_FILES_MAX 256 /* files one configuration may name */
#define VAULT_FILE_MAX (1024 * 1024) /* larger files are kept open, not copied */

struct vault;

/* open(2) for files that may come from the vault: flags as open(2),
 * without O_CREAT. A file from the vault comes as a private copy at
 * offset 0; the caller closes it. Readers that share a path across threads
 * use pread (fs_read_file does). */
int vault_open(const char *path, int flags);

/* Recording, in the parent: every vault_open from now on
 * is kept in a new vault, returned by vault_record_end (NULL when none was
 * recorded, i.e. nothing was opened). Not nested. */
void vault_record_begin(void);
struct vault *vault_record_end(void);

/* In the child: an empty vault to fill with vault_add, then installed in
 * place of the current one (which is returned, to be freed once nothing
 * loads from it). */
struct vault *vault_new(void);
/* Takes fd. -1 when full. */
int vault_add(struct vault *v, const char *path, int fd);
struct vault *vault_install(struct vault *v);

size_t vault_count(const struct vault *v);
/* The i-th entry (i < vault_count). */
void vault_entry(const struct vault *v, size_t i, const char **path_r, int *fd_r);
/* Closes every descriptor. */
void vault_free(struct vault *v);

#endif
