/*
 * ipc_sock: frames (net/ipc_frame.h) over a socketpair between two of
 * smtpgate's processes. SOCK_SEQPACKET keeps each frame one message, so a
 * send is atomic (threads may send on one socket without a lock) and a
 * receive never sees half a frame; a frame may carry one descriptor
 * (SCM_RIGHTS), which is how the parent hands a new channel to a child.
 */
#ifndef SG_NET_IPC_SOCK_H
#define SG_NET_IPC_SOCK_H

#include "net/ipc_frame.h"

/* A connected pair, close-on-exec. 0 / -1 with errno. */
int ipc_sock_pair(int fds[2]);
/* Sends the frame (after ipc_out_end) and, when pass_fd >= 0, that
 * descriptor with it. 0, or -1 with errno (EAGAIN on a full non-blocking
 * socket, EPIPE when the peer is gone). */
int ipc_sock_send(int fd, const struct ipc_out *o, int pass_fd);
/* The same without a descriptor, never waiting even on a blocking socket
 * (an event-loop thread on a socket another thread reads): -1 with EAGAIN
 * when it is full. */
int ipc_sock_send_nowait(int fd, const struct ipc_out *o);
/*
 * Receives one frame into buf (IPC_FRAME_MAX bytes) and parses it: 1 with
 * *f pointing into buf, 0 at end of file, -1 with errno (EAGAIN: nothing
 * to read; EBADMSG: a frame that does not parse, is cut, or is not one
 * whole message; the channel is then to be closed). A descriptor that came
 * with it goes to *fd_r (close-on-exec; -1 when none); fd_r NULL closes any.
 */
int ipc_sock_recv(int fd, unsigned char *buf, struct ipc_frame *f, int *fd_r);

#endif
