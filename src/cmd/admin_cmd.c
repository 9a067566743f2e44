/*
 * admin_cmd: calls to the running server's [admin] API (admin_cmd.h). The
 * token comes from the same token_file the server reads (conf_load read it
 * and checked its mode), so the command must run as a user who may read it.
 */
#include "cmd/admin_cmd.h"

#include <stdio.h>

#include "conf/conf.h"
#include "net/admin.h"

int
admin_cmd_call(const struct conf *c, const char *method, const char *target, const char *body,
    size_t bodylen, struct buf *out, int *status_r, char *err, size_t errlen)
{
	return admin_call((const struct sockaddr *)&c->admin_addr, c->admin_addrlen, c->admin_token,
	    method, target, body, bodylen, out, status_r, err, errlen);
}

void
admin_cmd_explain_401(const struct conf *c, char *msg, size_t msglen)
{
	if (c->admin_token == NULL)
		snprintf(msg, msglen,
		    "the admin API at %s requires a token, but %s has no [admin] token_file: "
		    "run the command with -c and the configuration file the server runs with",
		    c->admin_address, c->path);
	else
		snprintf(msg, msglen,
		    "the admin API at %s refused the token of %s: check that [admin] token_file "
		    "is the same file the server read, and if the file was changed since the "
		    "server started, reload the server (SIGHUP) so it reads it again",
		    c->admin_address, c->admin_token_file);
}
