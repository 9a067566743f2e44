/*
 * tokenc: the relay routes' credentials (relay/creds.h) for the relay
 * process, which may neither open the credentials files nor start a
 * program (server/sandbox.h): the parent (server/parent.h) reads the
 * route's file at each delivery (mode checked) and runs its token command,
 * found in its own read of that file, so this process can only ask for a
 * route's secret, never name a file or a command. A delivery thread
 * asks over the control socket and waits for the answer (at most
 * CREDS_COMMAND_TIMEOUT and a margin), which the main thread hands over.
 */
#ifndef SG_SERVER_TOKENC_H
#define SG_SERVER_TOKENC_H

#include "net/ipc_frame.h"

/* Runs the relay's token commands through the parent on ctl. */
void tokenc_start(int ctl);
/* On the main thread: an answer frame (CHILD_MSG_TOKEN_ANSWER). */
void tokenc_answer(const struct ipc_frame *f);
/* Every waiting request fails (the parent is gone); later ones too. */
void tokenc_stop(void);

#endif
