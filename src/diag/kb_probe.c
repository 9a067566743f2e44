/*
 * kb_probe: the knowledge base of `smtpgate probe` findings (see finding.h and
 * doc/findings.md). Ids are stable: scripts match on them.
 */
#include "diag/finding.h"

const struct finding_kb finding_kb_probe[] = {
    {NULL, FINDING_INFO, NULL, NULL},
};
