/*
 * landlock: see landlock.h. The system calls are made directly (glibc has
 * no wrappers); the structures are the kernel's, defined here to the newest
 * layout used, since the build machine's headers may be older than the
 * kernel the server runs on (the kernel takes the size it is given).
 */
#include "server/landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1

#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_REMOVE_DIR (1ULL << 4)
#define LL_FS_REMOVE_FILE (1ULL << 5)
#define LL_FS_MAKE_CHAR (1ULL << 6)
#define LL_FS_MAKE_DIR (1ULL << 7)
#define LL_FS_MAKE_REG (1ULL << 8)
#define LL_FS_MAKE_SOCK (1ULL << 9)
#define LL_FS_MAKE_FIFO (1ULL << 10)
#define LL_FS_MAKE_BLOCK (1ULL << 11)
#define LL_FS_MAKE_SYM (1ULL << 12)
#define LL_FS_REFER (1ULL << 13) /* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1) /* ABI 6 */

/* The rights that apply to a file (not only to a folder's entries). */
#define LL_FS_FILE                                                                                 \
	(LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)
#define LL_FS_READ (LL_FS_READ_FILE | LL_FS_READ_DIR)
#define LL_FS_SPOOL                                                                                \
	(LL_FS_READ | LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR |   \
	    LL_FS_MAKE_REG | LL_FS_REFER | LL_FS_TRUNCATE)

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped; /* ABI 6 */
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

static const struct {
	const char *path;
	uint64_t access;
} landlock_system[] = {
    {"/usr", LL_FS_READ | LL_FS_EXECUTE},
    {"/lib", LL_FS_READ | LL_FS_EXECUTE},
    {"/lib64", LL_FS_READ | LL_FS_EXECUTE},
    {"/etc", LL_FS_READ},
    {"/proc", LL_FS_READ},
    {"/sys/devices/system/cpu", LL_FS_READ},
    {"/dev/null", LL_FS_READ_FILE | LL_FS_WRITE_FILE},
    {"/dev/zero", LL_FS_READ_FILE | LL_FS_WRITE_FILE},
    {"/dev/urandom", LL_FS_READ_FILE | LL_FS_WRITE_FILE},
    {"/dev/random", LL_FS_READ_FILE | LL_FS_WRITE_FILE},
};

/* What the kernel of this ABI knows of. */
static uint64_t
landlock_handled(int abi)
{
	uint64_t h = LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_READ_DIR |
	    LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_CHAR | LL_FS_MAKE_DIR |
	    LL_FS_MAKE_REG | LL_FS_MAKE_SOCK | LL_FS_MAKE_FIFO | LL_FS_MAKE_BLOCK | LL_FS_MAKE_SYM;

	if (abi >= 2)
		h |= LL_FS_REFER;
	if (abi >= 3)
		h |= LL_FS_TRUNCATE;
	if (abi >= 5)
		h |= LL_FS_IOCTL_DEV;
	return h;
}

/* Allows access (within handled) beneath path; a path that does not exist
 * is skipped. 0, or -1 with err. */
static int
landlock_allow(
    int ruleset, const char *path, uint64_t access, uint64_t handled, char *err, size_t errlen)
{
	struct ll_path_beneath_attr rule;
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd == -1 && (errno == ENOENT || errno == ENOTDIR || errno == EACCES))
		return 0;
	if (fd == -1) {
		snprintf(err, errlen, "landlock: %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "landlock: %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	memset(&rule, 0, sizeof(rule));
	rule.allowed_access = access & handled & (S_ISDIR(st.st_mode) ? ~0ULL : LL_FS_FILE);
	rule.parent_fd = fd;
	if (rule.allowed_access != 0 &&
	    syscall(__NR_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &rule, 0) == -1) {
		snprintf(err, errlen, "landlock: a rule for %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
landlock_enter(const char *spool, const char *const *dirs, size_t ndirs, char *err, size_t errlen)
{
	struct ll_ruleset_attr attr;
	size_t attrlen;
	long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	int ruleset, probe, rc = -1;

	if (abi < 0 && (errno == ENOSYS || errno == EOPNOTSUPP || errno == EPERM)) {
		snprintf(err, errlen, "%s",
		    errno == ENOSYS           ? "the kernel has no Landlock"
		        : errno == EOPNOTSUPP ? "Landlock is turned off in the kernel (lsm=)"
		                              : "a system call filter refuses Landlock (the unit's "
		                                "SystemCallFilter?)");
		return 0;
	}
	if (abi < 0) {
		snprintf(err, errlen, "landlock: %s", strerror(errno));
		return -1;
	}
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = landlock_handled((int)abi);
	attrlen = sizeof(attr.handled_access_fs);
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
		attrlen = sizeof(attr);
	}
	ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr, attrlen, 0);
	if (ruleset == -1) {
		snprintf(err, errlen, "landlock: a ruleset: %s", strerror(errno));
		return -1;
	}
	if (landlock_allow(ruleset, spool, LL_FS_SPOOL, attr.handled_access_fs, err, errlen) == -1)
		goto out;
	for (size_t i = 0; i < sizeof(landlock_system) / sizeof(landlock_system[0]); i++) {
		if (landlock_allow(ruleset, landlock_system[i].path, landlock_system[i].access,
		        attr.handled_access_fs, err, errlen) == -1)
			goto out;
	}
	for (size_t i = 0; i < ndirs; i++) {
		/* "/" would open everything (a configuration at the root) */
		if (dirs[i] != NULL && strcmp(dirs[i], "/") != 0 &&
		    landlock_allow(
		        ruleset, dirs[i], LL_FS_READ, attr.handled_access_fs, err, errlen) == -1)
			goto out;
	}
	if (syscall(__NR_landlock_restrict_self, ruleset, 0) == -1) {
		snprintf(err, errlen, "landlock: restrict_self: %s", strerror(errno));
		goto out;
	}
	/* the kernel's word, not ours: the root folder is out of reach now */
	probe = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (probe != -1 || errno != EACCES) {
		snprintf(err, errlen, "landlock: the rules do not hold (/ is %s)",
		    probe != -1 ? "readable" : strerror(errno));
		if (probe != -1)
			close(probe);
		goto out;
	}
	rc = (int)abi;
out:
	close(ruleset);
	return rc;
}
