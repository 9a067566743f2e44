/*
 * kb_dns: the knowledge base of `smtpgate dns` findings (see finding.h and
 * doc/findings.md). Ids are stable: scripts match on them.
 */
#include "explain/finding.h"

const struct finding_kb finding_kb_dns[] = {
    /* the domain itself */
    {"domain-not-found", FINDING_ERROR,
        "The domain does not exist in DNS (NXDOMAIN): it is misspelt, not registered (or "
        "expired), or not delegated to name servers that serve it. Mail to it bounces, and no "
        "record of it (MX, SPF, DMARC, ...) can be published or checked.",
        "Check the spelling; for your own domain check its registration (whois) and that the "
        "registrar delegates it to your name servers (dig +trace DOMAIN NS), and that they "
        "serve the zone."},
    /* MX */
    {"mx-missing", FINDING_ERROR,
        "The domain has no MX record. Senders then try the domain's own A/AAAA address "
        "(implicit MX, RFC 5321 5.1), which is rarely a mail server; with no address either, "
        "mail to the domain bounces.",
        "Publish an MX record naming your mail server, e.g. \"example.com. MX 10 "
        "mail.example.com.\". If the domain sends and receives no mail, publish a null MX "
        "(\"MX 0 .\", RFC 7505)."},
    {"mx-null", FINDING_INFO,
        "The domain publishes a null MX (\"MX 0 .\", RFC 7505): it says it accepts no mail, "
        "so mail to it bounces at once. Mixed with other MX records it is an error.",
        "Nothing to do if the domain really receives no mail (also publish \"v=spf1 -all\"). "
        "Otherwise remove the null MX and publish your real MX records."},
    {"mx-cname", FINDING_WARNING,
        "An MX record names a host that is an alias (CNAME). RFC 2181 10.3 and RFC 5321 5.1 "
        "forbid it; most senders cope, some refuse, and DANE/MTA-STS checks may fail.",
        "Point the MX at the canonical host name (the CNAME's target), which has its own "
        "A/AAAA records."},
    {"mx-ip-literal", FINDING_ERROR,
        "An MX record holds an IP address instead of a host name. MX data is a domain name "
        "(RFC 5321 5.1), so \"192.0.2.1\" is looked up as a name with labels 192, 0, 2 and 1, "
        "which does not exist: senders cannot deliver.",
        "Give the mail server a name with an A/AAAA record (e.g. mail.example.com) and use that "
        "name in the MX record."},
    {"mx-no-address", FINDING_ERROR,
        "An MX host has neither an A nor an AAAA record, so senders cannot connect to it and "
        "move on to the next MX, or bounce the mail if none works.",
        "Add A (and AAAA if the server has IPv6) records for the MX host, or correct the host "
        "name in the MX record (a missing trailing dot in a zone file appends the origin)."},
    {"mx-no-ptr", FINDING_WARNING,
        "An address of an MX host has no reverse DNS (PTR) record. Outgoing mail is usually sent "
        "from the same address, and many receivers reject or downgrade mail from addresses "
        "without a PTR that resolves back (forward-confirmed reverse DNS).",
        "Ask whoever owns the address (your hosting provider or ISP) to set its PTR record to "
        "the server's host name, and make that name resolve to the address."},
    /* SPF */
    {"spf-missing", FINDING_ERROR,
        "The domain publishes no SPF record (a TXT record starting with \"v=spf1\"). Receivers "
        "cannot tell authorized servers from forgers; large providers reject or junk "
        "unauthenticated mail.",
        "Publish one TXT record at the domain listing the servers that send its mail, e.g. "
        "\"v=spf1 mx include:_spf.provider.example -all\". For a domain that sends no mail: "
        "\"v=spf1 -all\"."},
    {"spf-multiple", FINDING_ERROR,
        "The domain has more than one TXT record starting with \"v=spf1\". RFC 7208 4.5 makes "
        "that a permanent error: receivers ignore all of them, as if there were no SPF.",
        "Merge them into a single record: one \"v=spf1\", all mechanisms, one final \"all\"."},
    {"spf-version-invalid", FINDING_ERROR,
        "A TXT record at the domain is plainly meant as SPF but does not start with exactly "
        "\"v=spf1\" and a space (a typo such as \"v=spf2\" or \"v=sfp1\", white space before "
        "or inside the version, no space after it, quote characters around the text). "
        "Receivers do not see it as SPF (RFC 7208 4.5): without another record the domain has "
        "no SPF at all; next to a valid record, the servers it lists are not authorized.",
        "Start the record with \"v=spf1\" followed by a space, e.g. \"v=spf1 mx -all\", and "
        "keep one SPF record per domain: merge this one into the valid record if both exist. "
        "Enter the text without quote characters in a DNS provider's web form."},
    {"spf-syntax", FINDING_ERROR,
        "A term of the SPF record does not follow the RFC 7208 grammar (a typo, an unknown "
        "mechanism, a bad address or cidr length, a malformed macro). Receivers return "
        "\"permerror\" and the whole record is ignored.",
        "Correct the term shown: mechanisms are written \"name:value\" (\"ip4:192.0.2.0/24\", "
        "\"include:example.com\"), separated by single spaces, with IPv4 networks under ip4: "
        "and IPv6 under ip6:."},
    {"spf-too-many-lookups", FINDING_ERROR,
        "Evaluating the SPF record needs more than 10 DNS-querying terms (include, a, mx, ptr, "
        "exists, redirect, counted through every include; RFC 7208 4.6.4). Receivers stop and "
        "return \"permerror\", so SPF fails for legitimate mail.",
        "Remove includes of services you no longer use, replace a and mx with ip4:/ip6: "
        "networks, avoid ptr, and ask providers for a flatter include; keep the total at 10 or "
        "fewer."},
    {"spf-void-lookups", FINDING_ERROR,
        "More than two DNS look-ups made while evaluating the SPF record return no answer "
        "(NXDOMAIN or no records). RFC 7208 4.6.4 lets receivers return \"permerror\" after "
        "two; it usually means includes or names that no longer exist.",
        "Remove the terms that name domains or hosts that no longer exist (listed in the "
        "evidence)."},
    {"spf-permissive-all", FINDING_ERROR,
        "The SPF policy ends in \"+all\" (every server on the Internet passes), \"?all\" or no "
        "\"all\" at all (servers not listed get \"neutral\", which protects nothing). An "
        "include of a record ending in \"+all\" also lets everyone pass.",
        "End the record with \"-all\" (or \"~all\" while you are still checking that every "
        "sending server is listed), and never include a record that ends in \"+all\"."},
    {"spf-softfail-all", FINDING_INFO,
        "The SPF record ends in \"~all\" (softfail): mail from unlisted servers is marked, not "
        "refused. With an enforcing DMARC policy that is enough; without one forged mail may "
        "still be delivered.",
        "Once DMARC reports show every legitimate source passing, change \"~all\" to \"-all\", "
        "or publish a DMARC policy of quarantine or reject."},
    {"spf-ptr", FINDING_WARNING,
        "The SPF record uses the \"ptr\" mechanism. RFC 7208 5.5 says it SHOULD NOT be used: it "
        "is slow, costs several DNS look-ups per check, and some receivers skip it.",
        "Replace \"ptr\" with ip4:/ip6: networks or an a: mechanism naming your servers."},
    {"spf-include-missing", FINDING_ERROR,
        "An include: or redirect= names a domain that has no SPF record. RFC 7208 5.2 and 6.1 "
        "make that a \"permerror\" for the whole policy.",
        "Correct the domain name (check the provider's documentation for the right include), "
        "or remove the term if you no longer use that service."},
    {"spf-include-loop", FINDING_ERROR,
        "The SPF policy includes or redirects to a domain that is already being evaluated, so "
        "evaluation would loop; receivers stop at the look-up limit with \"permerror\".",
        "Remove the include or redirect that points back to a record on the path shown."},
    /* DMARC */
    {"dmarc-missing", FINDING_WARNING,
        "The domain publishes no DMARC policy (a TXT record \"v=DMARC1; ...\" at "
        "_dmarc.DOMAIN). Receivers have no instruction for mail that fails SPF and DKIM, you get "
        "no reports, and large providers require DMARC from bulk senders.",
        "Publish \"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com\" at "
        "_dmarc.example.com, read the reports, then move to p=quarantine or p=reject."},
    {"dmarc-invalid", FINDING_ERROR,
        "The DMARC record does not follow RFC 7489 6.4: it must start with \"v=DMARC1\", "
        "have p=none|quarantine|reject, and each tag must have a valid value (pct 0-100, "
        "adkim/aspf r|s, rua/ruf URIs, fo 0|1|d|s); a duplicate tag or several records also "
        "invalidate it. A TXT record at _dmarc that is plainly meant as DMARC but whose "
        "version is not first, not exactly \"v=DMARC1\" (case, white space, a typo) or missing "
        "is not a DMARC record at all. Receivers then ignore the policy.",
        "Correct the tag shown, e.g. \"v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com\"; "
        "tags are separated by \";\"."},
    {"dmarc-policy-none", FINDING_WARNING,
        "The DMARC policy is p=none: receivers only report, and deliver mail that fails DMARC "
        "as usual, so forged mail in your domain's name still arrives.",
        "When the aggregate reports show your legitimate mail passing, move to p=quarantine "
        "and then p=reject."},
    {"dmarc-pct", FINDING_WARNING,
        "The DMARC record has pct below 100: the policy is applied to only that share of the "
        "failing mail; the rest is treated as p=none.",
        "Raise pct to 100 (or remove it) once the policy is known not to hit legitimate mail."},
    {"dmarc-unknown-tag", FINDING_WARNING,
        "The DMARC record has a tag that RFC 7489 does not define. Receivers ignore it; it is "
        "often a typo (\"adkin\" for \"adkim\"), so the setting meant is not applied.",
        "Correct or remove the tag; the tags are v, p, sp, rua, ruf, adkim, aspf, pct, fo, rf "
        "and ri."},
    {"dmarc-no-rua", FINDING_INFO,
        "The DMARC record has no rua= address, so you receive no aggregate reports and cannot "
        "see who sends mail in your domain's name or whether it passes.",
        "Add rua=mailto:ADDRESS with a mailbox (or a report service) that receives the daily "
        "XML reports."},
    {"dmarc-rua-unauthorized", FINDING_WARNING,
        "A DMARC report address is in another domain that has not agreed to receive reports "
        "for yours (RFC 7489 7.1: a TXT \"v=DMARC1\" at DOMAIN._report._dmarc.REPORTDOMAIN). "
        "Receivers send no reports there.",
        "Have the report domain publish \"v=DMARC1\" at yourdomain._report._dmarc.reportdomain, "
        "or use an address in your own domain."},
    /* DKIM */
    {"dkim-missing", FINDING_ERROR,
        "No DKIM key record was found for the selector at SELECTOR._domainkey.DOMAIN. "
        "Signatures made with that selector cannot be verified and count as failures.",
        "Publish the public key your signer uses as a TXT record \"v=DKIM1; k=rsa; p=...\" at "
        "that name, or correct the selector (it is the s= tag of the DKIM-Signature header)."},
    {"dkim-invalid", FINDING_ERROR,
        "The DKIM key record does not follow RFC 6376 3.6.1 (tags \"name=value\" separated by "
        "\";\", v=DKIM1 first if present, k=rsa|ed25519, p= base64 of the public key), or the "
        "key in p= does not decode. Verifiers fail every signature with this selector.",
        "Republish the record as your signer prints it, e.g. \"v=DKIM1; k=rsa; p=MIIBIjAN...\"; "
        "long keys are split into several quoted strings of one TXT record, not several "
        "records."},
    {"dkim-key-weak", FINDING_ERROR,
        "The DKIM key is too short: RSA keys under 1024 bits are refused by verifiers and can "
        "be factored (RFC 8301 3.2); under 2048 bits is below today's recommendation. A sha1-only "
        "key (h=sha1) cannot make signatures receivers accept.",
        "Generate a new 2048-bit RSA key (or ed25519 alongside RSA) under a new selector, "
        "publish it, switch the signer to it, then revoke the old selector (empty p=)."},
    {"dkim-testing", FINDING_WARNING,
        "The DKIM key record has t=y: the domain says it is testing DKIM, and verifiers must "
        "not treat failures differently from unsigned mail (RFC 6376 3.6.1).",
        "Remove t=y once signing works."},
    {"dkim-revoked", FINDING_WARNING,
        "The DKIM key record has an empty p=: the key is revoked, and every signature made with "
        "this selector fails.",
        "If you still sign with this selector, publish its current public key; otherwise stop "
        "using it (a revoked selector is fine once nothing signs with it)."},
    /* MTA-STS and TLS-RPT */
    {"mta-sts-missing", FINDING_INFO,
        "The domain publishes no MTA-STS policy (TXT \"v=STSv1; id=...\" at _mta-sts.DOMAIN), so "
        "senders deliver to it over TLS only opportunistically: an attacker on the path can "
        "strip STARTTLS.",
        "Publish a policy file at https://mta-sts.DOMAIN/.well-known/mta-sts.txt (version, "
        "mode, mx, max_age) and the _mta-sts TXT record; start with mode: testing."},
    {"mta-sts-invalid", FINDING_ERROR,
        "The _mta-sts TXT record does not follow RFC 8461 3.1 (\"v=STSv1; id=ID;\", id of 1 to "
        "32 letters and digits), or there are several: senders then apply no policy.",
        "Publish exactly one record like \"v=STSv1; id=20240101T000000;\" and change the id "
        "whenever the policy file changes."},
    {"mta-sts-policy-unreachable", FINDING_ERROR,
        "The _mta-sts TXT record announces a policy, but it could not be fetched from "
        "https://mta-sts.DOMAIN/.well-known/mta-sts.txt (no address, connection or certificate "
        "problem, HTTP error, redirect, or wrong Content-Type). Senders fall back to no policy, "
        "and ones that cached an earlier policy may refuse to deliver.",
        "Serve the policy there over HTTPS with a valid certificate for mta-sts.DOMAIN, status "
        "200, Content-Type text/plain and no redirect; or remove the TXT record."},
    {"mta-sts-policy-invalid", FINDING_ERROR,
        "The MTA-STS policy file does not follow RFC 8461 3.2: it needs \"version: STSv1\", "
        "\"mode: enforce|testing|none\", \"max_age:\" in seconds and one \"mx:\" line per "
        "pattern. Senders ignore an invalid policy.",
        "Correct the line shown; the file is plain \"key: value\" lines."},
    {"mta-sts-testing", FINDING_INFO,
        "The MTA-STS policy is in mode testing (or none): senders report TLS failures (with "
        "TLS-RPT) but still deliver without a valid TLS connection.",
        "When TLS-RPT reports show no failures, change the mode to enforce and update the id "
        "in the TXT record."},
    {"mta-sts-mx-mismatch", FINDING_ERROR,
        "An MX host of the domain matches none of the policy's mx: patterns. In enforce mode "
        "senders refuse to deliver to that host (RFC 8461 4.1).",
        "Add an mx: line for the host (or a *.domain pattern that covers it) to the policy, and "
        "change the id in the _mta-sts TXT record so senders fetch it again."},
    {"mta-sts-max-age-short", FINDING_WARNING,
        "The MTA-STS policy's max_age is under a day: senders forget it quickly, which weakens "
        "the protection against downgrade attacks (RFC 8461 3.2 suggests weeks).",
        "Once the policy is stable, set max_age to 604800 (a week) or more, up to 31557600."},
    {"tls-rpt-missing", FINDING_INFO,
        "The domain publishes no TLS-RPT record (TXT \"v=TLSRPTv1; rua=...\" at "
        "_smtp._tls.DOMAIN), so senders do not report TLS failures to you (RFC 8460).",
        "Publish \"v=TLSRPTv1; rua=mailto:tls-reports@example.com\" at _smtp._tls.example.com."},
    {"tls-rpt-invalid", FINDING_WARNING,
        "The TLS-RPT record does not follow RFC 8460 3 (\"v=TLSRPTv1; rua=URI\" with mailto: or "
        "https: URIs), or there are several: senders send no reports.",
        "Publish exactly one record like \"v=TLSRPTv1; rua=mailto:tls-reports@example.com\"."},
    /* TLSA and DNSSEC */
    {"tlsa-without-dnssec", FINDING_WARNING,
        "TLSA records exist for an MX host but the answer is not DNSSEC-validated. DANE "
        "(RFC 7672) uses TLSA only from signed zones, so these records protect nothing.",
        "Sign the zone with DNSSEC and publish the DS record at the parent, or remove the "
        "TLSA records."},
    {"tlsa-invalid", FINDING_ERROR,
        "A TLSA record has values DANE for SMTP cannot use: usage, selector or matching type out "
        "of range, association data of the wrong length, or a PKIX usage (0 or 1) that SMTP "
        "senders ignore (RFC 7672 3.1.3).",
        "Publish \"3 1 1 <sha256 of the server's public key>\" (DANE-EE) or \"2 1 1 <sha256 of "
        "the issuing CA's key>\" (DANE-TA)."},
    {"dns-timeout", FINDING_ERROR,
        "The resolver gave no answer in time: it is unreachable, overloaded, or the domain's "
        "name servers do not answer. The checks that needed the answer were not made.",
        "Check that the resolver answers (dig @RESOLVER DOMAIN MX), that the domain's name "
        "servers are up and reachable, or raise --timeout."},
    {"dns-servfail", FINDING_ERROR,
        "The resolver answered SERVFAIL (or REFUSED): it could not get an answer from the "
        "domain's name servers (lame delegation, servers down, broken zone), or it refuses to "
        "answer us. Senders see the same failure and defer mail.",
        "Check the delegation and the name servers (dig +trace DOMAIN), and that the resolver "
        "given with --resolver serves recursive queries."},
    {"dnssec-bogus", FINDING_ERROR,
        "DNSSEC validation failed: the answer's signatures are missing, expired or do not match "
        "the keys published at the parent (DS). Validating resolvers return SERVFAIL, so mail "
        "to the domain is deferred.",
        "Re-sign the zone (signatures expire), and make the DS record at the registrar match "
        "the zone's current key; when rolling keys, follow the rollover timing."},
    {"dnssec-anchor-failed", FINDING_ERROR,
        "DNSSEC validation could not even start: the root's keys (DNSKEY) did not come back "
        "validated through the resolver used, which usually means the resolver, or a middlebox, "
        "strips DNSSEC records or cannot reach the root. This says nothing about the domain; "
        "`smtpgate dns` then repeats the checks without validation.",
        "Use a DNSSEC-aware resolver (--resolver), or --trust-anchor none to skip validation; "
        "check that the machine's clock is right (signatures have validity dates)."},
    {"dnssec-unsigned", FINDING_INFO,
        "The domain's answers are not DNSSEC-signed, so resolvers cannot detect forged "
        "answers, and DANE (TLSA) cannot be used for its MX hosts.",
        "Enable DNSSEC signing at your DNS provider and publish the DS record at the registrar."},
    {"dnssec-no-anchor", FINDING_INFO,
        "No DNSSEC trust anchor was found on this machine, so answers could not be validated: "
        "every answer is reported as insecure.",
        "Install the root trust anchor (Debian: the dns-root-data package) or give one with "
        "--trust-anchor FILE."},
    {NULL, FINDING_INFO, NULL, NULL},
};
