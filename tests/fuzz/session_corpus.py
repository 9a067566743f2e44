#!/usr/bin/python3
"""Writes the seed corpus of fuzz_session (tests/fuzz/corpus/session/).

Each seed is one byte of mode (fuzz_session.c: bits 0-1 the listener, bits
2-4 the bytes per write) and then what a client sends. The bearer tokens
are signed with an Ed25519 key derived from a fixed phrase: a test key that
protects nothing, whose public half is FUZZ_SESSION_JWK_X in fuzz_session.c
(`session_corpus.py --jwk-x` prints it).

Run from anywhere: /usr/bin/python3 tests/fuzz/session_corpus.py
"""
import base64
import hashlib
import json
import pathlib
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "session"
USER = "alice@example.test"
PASSWORD = "fuzz-password"

PLAIN, SMTPS, SUBMISSION = 0, 1, 2
CHUNKS = {1: 0, 7: 1, 64: 2, 512: 3, 1460: 4, 4096: 5, 16384: 6, "all": 7}

KEY = ed25519.Ed25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"smtpgate fuzz_session oauth test key").digest())


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_x():
    raw = KEY.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return b64u(raw)


def token(**over):
    claims = {"iss": "https://issuer.example.test", "aud": "smtpgate",
              "exp": 4102444800, "email": USER}
    claims.update(over)
    head = b64u(json.dumps({"alg": "EdDSA", "kid": "fuzz1", "typ": "JWT"}))
    body = b64u(json.dumps(claims))
    sig = KEY.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{b64u(sig)}"


def mode(listener, chunk="all"):
    return bytes([listener | CHUNKS[chunk] << 2])


def lines(*ls):
    return "".join(line + "\r\n" for line in ls).encode()


MESSAGE = (f"From: <{USER}>\r\nTo: <bob@example.test>\r\nSubject: seed\r\n\r\n"
           "body\r\n..leading dot\r\n")


def mail(sender=USER, rcpt="bob@example.test", ehlo=True):
    return (lines(*(["EHLO client.example.test"] if ehlo else []), f"MAIL FROM:<{sender}>",
                  f"RCPT TO:<{rcpt}>", "DATA") + MESSAGE.encode() + lines(".", "QUIT"))


def bdat(sender=USER, rcpt="bob@example.test", ehlo=True):
    body = MESSAGE.encode()
    head, tail = body[:-10], body[-10:]
    return (lines(*(["EHLO client.example.test"] if ehlo else []),
                  f"MAIL FROM:<{sender}> BODY=8BITMIME", f"RCPT TO:<{rcpt}>",
                  f"BDAT {len(head)}") + head + lines("BDAT 10 LAST") + tail
            + lines("BDAT 0 LAST", "RSET", "QUIT"))


def scram_first(nonce="fyko+d2lbbFgONRv9qkxdawL", gs2="n,,"):
    return f"{gs2}n={USER},r={nonce}"


def seeds():
    s = {}
    s["plain-mail"] = mode(PLAIN) + mail("someone@else.test")
    s["plain-mail-bytewise"] = mode(PLAIN, 1) + mail("someone@else.test")
    s["plain-bdat"] = mode(PLAIN, 7) + bdat("someone@else.test")
    s["plain-misc"] = mode(PLAIN, 64) + lines(
        "HELO client", "MAIL FROM:<a@b.test> SIZE=10", "EHLO client", "NOOP", "VRFY bob",
        "EXPN list", "HELP", "RSET", "STARTTLS", "MAIL FROM:<a@b.test> SIZE=999999999",
        "MAIL FROM:<> SMTPUTF8", "RCPT TO:<bob@other.test>", "RCPT TO:<bob@example.test>",
        "DATA", "..", "bare\nlf", ".", "BDAT 3", "abcBDAT 2 LAST", "de", "garbage", "QUIT")
    # a pipelined flood: about 77 KiB of replies to one 4 KiB read
    s["plain-ehlo-flood"] = mode(PLAIN) + b"EHLO a\r\n" * 512
    s["plain-noop-flood"] = mode(PLAIN, 4096) + b"NOOP\r\nRSET\r\n" * 700
    s["plain-rcpt-flood"] = mode(PLAIN) + lines("EHLO a", "MAIL FROM:<a@b.test>") + \
        b"RCPT TO:<bob@example.test>\r\n" * 300
    s["plain-long-line"] = mode(PLAIN, 1460) + lines("EHLO a", "X" * 3000, "NOOP",
                                                      "AUTH " + "A" * 13000, "QUIT")
    # over TLS each read brings a 16 KiB record and a line being skipped
    # drops 12 KiB per pass: 80 KB of line leave its end and the next
    # commands waiting in the session's input
    s["tls-long-line-then-noop"] = mode(SMTPS) + lines(
        "EHLO a", "NOOP " + "x" * 80000, "NOOP", "QUIT")
    s["plain-errors"] = mode(PLAIN) + lines(*["bogus"] * 12)
    envelope = lines("EHLO a", "MAIL FROM:<a@b.test>", "RCPT TO:<bob@example.test>")
    for name, size in (("20-digits", "99999999999999999999"), ("2-64", "18446744073709551616"),
                       ("negative", "-1"), ("1e9-last", "1000000000 LAST")):
        s[f"plain-bdat-{name}"] = mode(PLAIN) + envelope + lines(f"BDAT {size}") + b"x" * 100
    first = scram_first()
    s["plain-scram256"] = mode(PLAIN) + lines(
        "EHLO a", f"AUTH SCRAM-SHA-256 {b64(first)}",
        b64(f"c=biws,r={'fyko+d2lbbFgONRv9qkxdawL'}xyz,p={b64(bytes(32))}"), "QUIT")
    s["plain-scram1-no-ir"] = mode(PLAIN, 7) + lines(
        "EHLO a", "AUTH SCRAM-SHA-1", b64(first), "*", "NOOP")
    s["plain-scram-abandon"] = mode(PLAIN) + lines(
        "EHLO a", f"AUTH SCRAM-SHA-256 {b64(first)}", "*", "AUTH SCRAM-SHA-256 =",
        "AUTH SCRAM-SHA-256 !!!", "AUTH SCRAM-SHA-256-PLUS", "AUTH PLAIN", "QUIT")
    # a client-first of 9,216 bytes (a 12,288-char line, SASL_LINE_MAX):
    # server-first echoes the nonce and no longer fits in a line
    first_max = scram_first("n" * (9216 - len(scram_first(""))))
    s["plain-scram-long-nonce"] = mode(PLAIN) + lines(
        "EHLO a", "AUTH SCRAM-SHA-256", b64(first_max), "QUIT")
    s["tls-scram-long-nonce"] = mode(SMTPS) + lines(
        "EHLO a", "AUTH SCRAM-SHA-256 " + b64(first_max), "QUIT")
    s["plain-cram"] = mode(PLAIN) + lines(
        "EHLO a", "AUTH CRAM-MD5", b64(f"{USER} " + "0" * 32), "AUTH CRAM-MD5", "*",
        "AUTH CRAM-MD5 " + b64("x"), "QUIT")
    s["submission-before-tls"] = mode(SUBMISSION, 64) + lines(
        "EHLO a", "AUTH PLAIN " + b64(f"\0{USER}\0{PASSWORD}"), "MAIL FROM:<a@b.test>",
        "STARTTLS") + b"\x16\x03\x01\x00\x05hello" + lines("QUIT")
    plain_ir = b64(f"\0{USER}\0{PASSWORD}")
    s["tls-plain-mail"] = mode(SMTPS) + lines("EHLO a", f"AUTH PLAIN {plain_ir}") + \
        mail(USER, "bob@far.example", ehlo=False)
    s["tls-login-bdat"] = mode(SMTPS, 512) + lines(
        "EHLO a", "AUTH LOGIN", b64(USER), b64(PASSWORD)) + \
        bdat(USER, "carol@far.example", ehlo=False)
    s["tls-plain-wrong"] = mode(SMTPS, 7) + lines(
        "EHLO a", "AUTH PLAIN " + b64(f"\0{USER}\0wrong"), "AUTH PLAIN",
        b64(f"\0locked@example.test\0{PASSWORD}"), "AUTH LOGIN " + b64(USER), "*",
        "MAIL FROM:<a@b.test>", "RCPT TO:<x@far.example>", "QUIT")
    tok = token()
    s["tls-xoauth2"] = mode(SMTPS) + lines(
        "EHLO a", "AUTH XOAUTH2 " + b64(f"user={USER}\x01auth=Bearer {tok}\x01\x01"),
        f"MAIL FROM:<{USER}>", "RCPT TO:<bob@far.example>", "QUIT")
    s["tls-oauthbearer"] = mode(SMTPS) + lines(
        "EHLO a", "AUTH OAUTHBEARER " + b64(f"n,a={USER},\x01auth=Bearer {tok}\x01\x01"),
        "QUIT")
    bad = token(exp=1000000000)
    s["tls-oauth-refused"] = mode(SMTPS, 64) + lines(
        "EHLO a", "AUTH OAUTHBEARER " + b64(f"n,a={USER},\x01auth=Bearer {bad}\x01\x01"),
        b64("\x01"), "AUTH XOAUTH2", b64(f"user={USER}\x01auth=Bearer abc.def\x01\x01"), "=",
        "AUTH XOAUTH2 " + b64(f"user=bob@example.test\x01auth=Bearer {tok}\x01\x01"), "",
        "QUIT")
    s["tls-scram-plus"] = mode(SMTPS) + lines(
        "EHLO a", "AUTH SCRAM-SHA-256-PLUS " + b64(scram_first(gs2="p=tls-exporter,,")),
        b64(f"c={b64('p=tls-exporter,,' + 'x' * 32)},r=abc,p={b64(bytes(32))}"),
        "AUTH SCRAM-SHA-1 " + b64(scram_first(gs2="y,,")), "*", "QUIT")
    s["tls-ehlo-flood"] = mode(SMTPS, 1460) + b"EHLO a\r\n" * 600
    return s


def main():
    if sys.argv[1:] == ["--jwk-x"]:
        print(jwk_x())
        return
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (OUT / name).write_bytes(data)
    print(f"{len(seeds())} seeds in {OUT}; JWK x = {jwk_x()}")


if __name__ == "__main__":
    main()
