/*
 * client_caps: parses the EHLO/LHLO reply's extension lines (RFC 5321
 * 4.1.1.1) into struct client_caps. Pure: no I/O. Keywords are matched
 * case-insensitively; "AUTH=" (the pre-RFC 4954 form some servers still
 * send) counts as AUTH; mechanism names are kept upper case, unique, and
 * only when they are valid SASL names (RFC 4422 3.1).
 */
#include "client/client.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
client_caps_reset(struct client_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
}

bool
client_caps_has_mech(const struct client_caps *caps, const char *mech)
{
	for (size_t i = 0; i < caps->nmechs; i++) {
		if (strcasecmp(caps->mechs[i], mech) == 0)
			return true;
	}
	return false;
}

static void
client_caps_add_mech(struct client_caps *caps, const char *p, size_t n)
{
	char name[CLIENT_MECH_NAME_MAX + 1];

	if (n == 0 || n > CLIENT_MECH_NAME_MAX) {
		caps->mechs_truncated = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)toupper((unsigned char)p[i]);

		/* RFC 4422 3.1: upper-case letters, digits, '-', '_' */
		if (!(isupper(ch) || isdigit(ch) || ch == '-' || ch == '_')) {
			caps->mechs_truncated = true;
			return;
		}
		name[i] = (char)ch;
	}
	name[n] = '\0';
	if (client_caps_has_mech(caps, name))
		return;
	if (caps->nmechs == CLIENT_AUTH_MECHS_MAX) {
		caps->mechs_truncated = true;
		return;
	}
	memcpy(caps->mechs[caps->nmechs++], name, n + 1);
}

static bool
client_caps_kw(const char *kw, size_t kwlen, const char *name)
{
	return strlen(name) == kwlen && strncasecmp(kw, name, kwlen) == 0;
}

void
client_caps_parse_line(struct client_caps *caps, const char *line, size_t len)
{
	size_t kwlen = 0, i;
	const char *params;
	size_t plen;

	while (kwlen < len && line[kwlen] != ' ' && line[kwlen] != '=')
		kwlen++;
	params = line + kwlen;
	plen = len - kwlen;
	if (plen > 0) {
		params++;
		plen--;
	}
	if (client_caps_kw(line, kwlen, "STARTTLS"))
		caps->starttls = true;
	else if (client_caps_kw(line, kwlen, "PIPELINING"))
		caps->pipelining = true;
	else if (client_caps_kw(line, kwlen, "8BITMIME"))
		caps->eightbitmime = true;
	else if (client_caps_kw(line, kwlen, "SMTPUTF8"))
		caps->smtputf8 = true;
	else if (client_caps_kw(line, kwlen, "CHUNKING"))
		caps->chunking = true;
	else if (client_caps_kw(line, kwlen, "ENHANCEDSTATUSCODES"))
		caps->enhancedstatuscodes = true;
	else if (client_caps_kw(line, kwlen, "DSN"))
		caps->dsn = true;
	else if (client_caps_kw(line, kwlen, "SIZE")) {
		unsigned long long v = 0;
		bool ok = plen > 0 && plen <= 19;

		/* RFC 1870: SIZE [number]; 0 or absent means no fixed limit */
		for (i = 0; ok && i < plen; i++) {
			if (!isdigit((unsigned char)params[i]))
				ok = false;
			else
				v = v * 10 + (unsigned long long)(params[i] - '0');
		}
		caps->size = true;
		caps->size_max = ok ? v : 0;
	} else if (client_caps_kw(line, kwlen, "AUTH")) {
		caps->auth = true;
		i = 0;
		while (i < plen) {
			size_t start;

			while (i < plen && params[i] == ' ')
				i++;
			start = i;
			while (i < plen && params[i] != ' ')
				i++;
			if (i > start)
				client_caps_add_mech(caps, params + start, i - start);
		}
	}
}
