/*
 * kb_audit: the knowledge base of `smtpgate audit` findings (see finding.h and
 * doc/findings.md). Ids are stable: scripts match on them.
 */
#include "diag/finding.h"

const struct finding_kb finding_kb_audit[] = {
    {NULL, FINDING_INFO, NULL, NULL},
};
