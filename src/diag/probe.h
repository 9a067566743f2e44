/*
 * probe: `smtpgate probe` (DESIGN 5.1): connects to an SMTP server
 * with the shared client (src/client/), walks the session as far as it can
 * (greeting, EHLO, STARTTLS, EHLO, AUTH, a test message, QUIT) and turns
 * what goes wrong into findings (finding.h, kb_probe.c, reply_map.h).
 */
#ifndef SG_DIAG_PROBE_H
#define SG_DIAG_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum probe_mode {
	PROBE_MODE_AUTO, /* by port: 465 implicit, 25 STARTTLS if offered, else STARTTLS */
	PROBE_MODE_PLAIN, /* no TLS at all */
	PROBE_MODE_STARTTLS, /* STARTTLS required */
	PROBE_MODE_STARTTLS_OPT, /* STARTTLS if offered (port 25) */
	PROBE_MODE_TLS, /* implicit TLS (RFC 8314) */
};

#define PROBE_TRIES_MAX 3 /* for 421 and 454: tries in all */
#define PROBE_BACKOFF_MS 1000 /* first wait; doubles */
#define PROBE_CERT_SOON_DAYS 14

struct probe_opts {
	const char *host;
	const char *port; /* NULL: by mode (587, or 465 for --tls) */
	enum probe_mode mode;
	const char *user; /* NULL: no authentication */
	const char *secret; /* password or bearer token */
	size_t secretlen;
	const char *mech; /* NULL: each offered one this client knows */
	const char *from, *to; /* both or none: send a test message */
	const char *cafile;
	const char *sni; /* NULL: the host */
	const char *helo; /* NULL: "probe.smtpgate.invalid" */
	int timeout_s; /* per step */
	const char *resolver; /* "ADDR[:PORT]" or NULL: the system's */
	bool verify_none; /* SMTPOPENSSLVERIFYMODE=none: report, do not fail */
	bool json;
	bool quiet; /* text report: the findings alone */
	unsigned backoff_ms; /* 0: PROBE_BACKOFF_MS (tests make it shorter) */
};

/* Runs the probe, prints the transcript and the findings (or one JSON
 * object) to out. Returns the exit status: 0 when no finding has severity
 * error, 1 otherwise. */
int probe_run(const struct probe_opts *o, FILE *out);

/* "starttls", "tls", ... */
const char *probe_mode_name(enum probe_mode m);

#endif
