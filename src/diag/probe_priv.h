/*
 * probe_priv: the state of one probe run, shared by probe.c (the
 * connections, the checks and the findings) and probe_report.c (the text
 * and JSON reports). Not for use outside src/diag/probe*.c.
 */
#ifndef SG_DIAG_PROBE_PRIV_H
#define SG_DIAG_PROBE_PRIV_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

#include <jansson.h>

#include "client/client.h"
#include "diag/probe.h"
#include "explain/finding.h"

#define PROBE_ADDRS_MAX 16
#define PROBE_EVIDENCE_MAX 600

struct probe {
	const struct probe_opts *o;
	enum probe_mode mode;
	char port[16];
	struct sockaddr_storage addrs[PROBE_ADDRS_MAX];
	socklen_t addrlens[PROBE_ADDRS_MAX];
	size_t naddrs;
	struct client_transcript t;
	struct findings f;
	int conns; /* connections opened, for the transcript */
	bool local_error; /* a usage/configuration problem (exit 2) */
	bool retry; /* this attempt ended in something worth retrying */
	char banner[CLIENT_REPLY_LINE_MAX];
	json_t *tls, *caps_before, *caps_after, *auth, *message;
};

/* probe.c */
const char *probe_mode_name(enum probe_mode m);
/* Adds a finding once per id (the first evidence is the telling one). */
void probe_add(struct probe *p, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* probe_resolve.c: fills p->addrs; -1 after a finding (or a usage error:
 * p->local_error) when there is no address */
int probe_resolve(struct probe *p);

/* probe_report.c: the report of a finished run, readable or one JSON
 * document (DESIGN 5.1: --json) */
void probe_report_text(struct probe *p, FILE *out);
void probe_report_json(struct probe *p, FILE *out);

#endif
