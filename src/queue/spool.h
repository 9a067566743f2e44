/*
 * spool: where things are in the spool directory and who may touch them
 * (doc/spool.md "Layout"). The one module that knows the folder and file
 * names, how a message file is locked while it is delivered or moved, and
 * how the server's ownership of the spool is told from outside. Everything
 * else names a message by (spool fd, folder, id) and lets this module build
 * the path.
 *
 * Locks: the server holds flock(LOCK_EX) on SPOOL/lock for its life (one
 * server per spool). Whoever works on a message (a delivery, `smtpgate
 * queue del|hold`, the quota hold) holds flock(LOCK_EX) on its file. A
 * delivery rewrite renames a new, already locked file over the old name, so
 * a lock is only good once the name is seen to still be the locked file
 * (same st_dev and st_ino): spool_msg_open_locked() checks that.
 */
#ifndef SG_QUEUE_SPOOL_H
#define SG_QUEUE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Folders of the spool directory. */
#define SPOOL_INCOMING "incoming" /* being received; never acknowledged */
#define SPOOL_QUEUE "queue" /* committed, waiting for delivery */
#define SPOOL_HOLD "hold" /* committed, held by the operator */
#define SPOOL_CORRUPT "corrupt" /* failed validation at start-up; kept for inspection */
#define SPOOL_MTA_STS "mta-sts" /* route = mx: the MTA-STS policy cache */
/* Files of the spool directory. */
#define SPOOL_LOCK "lock" /* flock()ed by the server that owns the spool */
#define SPOOL_PID "pid" /* the pid of the server delivering from it (`queue flush`) */
#define SPOOL_BANS "bans.json" /* the limiter's bans, kept across restarts */
#define SPOOL_QUOTA_LOCKS "quota-locks" /* accounts locked by a sending quota */

#define SPOOL_LOCK_POLL_MS 100 /* a waiting spool_msg_open_locked looks this often */
#define SPOOL_LOCK_REPLACED_MAX 4 /* rewrites seen in a row before it counts as busy */

/* "SPOOL/name" (a file or folder above), malloc'd. */
char *spool_path(const char *spool, const char *name);
/* Opens the spool directory. -1 with errno (ENOENT: no spool yet). */
int spool_open(const char *spool) __attribute__((warn_unused_result));
/* Opens a folder of the spool, first creating it (0700) when create is
 * set. -1 with errno. */
int spool_folder_open(int spool_fd, const char *folder, bool create)
    __attribute__((warn_unused_result));
/* Makes renames and unlinks in folder durable (fsync). */
int spool_folder_sync(int spool_fd, const char *folder) __attribute__((warn_unused_result));
/* Creates, writes and removes a file in folder ("" : the spool itself):
 * the spool takes new files. -1 with errno. */
int spool_probe_writable(int spool_fd, const char *folder) __attribute__((warn_unused_result));

/* The ids (names with the shape of a queue id) in folder, sorted, so in
 * arrival order. *ids_r is NULL when there are none. -1 with errno. */
int spool_list(int spool_fd, const char *folder, char ***ids_r, size_t *n_r)
    __attribute__((warn_unused_result));
void spool_list_free(char **ids, size_t n);

/* Opens folder/name read-only, unlocked (a symbolic link is not followed).
 * -1 with errno. */
int spool_msg_open(int spool_fd, const char *folder, const char *name)
    __attribute__((warn_unused_result));
/* Opens message id in queue/ or hold/ (its folder to folder_r), unlocked.
 * -1 with errno: ENOENT in neither, EINVAL id is not an id. */
int spool_msg_find(int spool_fd, const char *id, const char **folder_r)
    __attribute__((warn_unused_result));
/* Creates folder/name (0600, truncated if it exists) for writing; with
 * locked it also takes its flock (a rewrite's new file is locked before it
 * takes the message's name). -1 with errno. */
int spool_msg_create(int spool_fd, const char *folder, const char *name, bool locked)
    __attribute__((warn_unused_result));
/*
 * Opens message id in folder and takes its flock, waiting up to wait_ms
 * for whoever holds it (0: not at all; it sleeps, so never on a loop), and
 * returns the fd, open and locked; closing it unlocks. A file that a
 * rewrite replaced meanwhile is let go and the new one opened. -1 with
 * errno: ENOENT gone (deleted, moved), EBUSY still locked (or replaced time
 * and again) after wait_ms, EINVAL id is not an id.
 */
int spool_msg_open_locked(int spool_fd, const char *folder, const char *id, unsigned wait_ms)
    __attribute__((warn_unused_result));
/* One step of it, for a file already open at fd: takes fd's flock without
 * waiting and checks that folder/id still is fd's file (same device and
 * inode). -1 with errno: EWOULDBLOCK locked elsewhere, ESTALE replaced
 * (folder/id is another file now), ENOENT gone; fd may then be locked. */
int spool_msg_lock(int spool_fd, const char *folder, const char *id, int fd)
    __attribute__((warn_unused_result));
/* Whether folder/id still is the file open at fd. */
bool spool_msg_is_current(int spool_fd, const char *folder, const char *id, int fd);
/* lstat of folder/id (a rename or a replacement changes its st_ctim). */
int spool_msg_stat(int spool_fd, const char *folder, const char *id, struct stat *st_r)
    __attribute__((warn_unused_result));
/* Renames from/from_name to to/to_name; nothing is synced. */
int spool_msg_rename(int spool_fd, const char *from, const char *from_name, const char *to,
    const char *to_name) __attribute__((warn_unused_result));
/* Moves message id from one folder to another durably (hold, release):
 * the rename, then an fsync of the new folder and of the old one. */
int spool_msg_move(int spool_fd, const char *id, const char *from, const char *to)
    __attribute__((warn_unused_result));
/* Unlinks folder/name; nothing is synced. -1 with errno (callers that
 * clean up after a failure may ignore it). */
int spool_msg_unlink(int spool_fd, const char *folder, const char *name);
/* Removes message id from folder durably: unlink, then fsync of folder. */
int spool_msg_remove(int spool_fd, const char *folder, const char *id)
    __attribute__((warn_unused_result));

/* The server's lock: opens (creating) SPOOL/lock and takes its flock
 * without waiting. The fd, held open for the server's life, or -1 with
 * errno (EWOULDBLOCK: another process owns the spool). */
int spool_lock_server(int spool_fd) __attribute__((warn_unused_result));
/* Writes SPOOL/pid (this process), for spool_server_pid. */
int spool_pid_write(const char *spool) __attribute__((warn_unused_result));
void spool_pid_remove(const char *spool);
/* The pid in SPOOL/pid of the server running on spool, or 0 when none
 * runs (nobody holds SPOOL/lock) or it wrote no pid. */
pid_t spool_server_pid(const char *spool);

#endif
