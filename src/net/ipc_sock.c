/*
 * ipc_sock: see ipc_sock.h.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/ipc_sock.h"

int
ipc_sock_pair(int fds[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
}

static int
ipc_sock_sendmsg(int fd, const struct ipc_out *o, int pass_fd, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = (void *)o->buf, .iov_len = o->len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (pass_fd >= 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL | flags);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != o->len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

int
ipc_sock_send(int fd, const struct ipc_out *o, int pass_fd)
{
	return ipc_sock_sendmsg(fd, o, pass_fd, 0);
}

int
ipc_sock_send_nowait(int fd, const struct ipc_out *o)
{
	return ipc_sock_sendmsg(fd, o, -1, MSG_DONTWAIT);
}

/* The descriptors that came with a message: the first to *fd_r, any other
 * closed (a peer may send more than we take). */
static void
ipc_sock_take_fds(struct msghdr *msg, int *fd_r)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd_r != NULL && *fd_r == -1)
				*fd_r = got;
			else
				close(got);
		}
	}
}

int
ipc_sock_recv(int fd, unsigned char *buf, struct ipc_frame *f, int *fd_r)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = buf, .iov_len = IPC_FRAME_MAX};
	struct msghdr msg = {.msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cm.buf,
	    .msg_controllen = sizeof(cm.buf)};
	ssize_t n;

	if (fd_r != NULL)
		*fd_r = -1;
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n <= 0)
		return (int)n;
	ipc_sock_take_fds(&msg, fd_r);
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
	    ipc_frame_parse(buf, (size_t)n, f) != IPC_PARSE_OK ||
	    IPC_FRAME_HDR + f->len != (size_t)n) {
		if (fd_r != NULL && *fd_r != -1) {
			close(*fd_r);
			*fd_r = -1;
		}
		errno = EBADMSG;
		return -1;
	}
	return 1;
}
