"""A small line-oriented SMTP client for the integration tests.

Unlike smtplib it sends exactly the bytes it is given (bare LF, pipelined
commands, garbage), reads replies with a deadline, and can upgrade the
socket to TLS at any point (STARTTLS) or start with TLS (implicit).
"""
import base64
import socket
import ssl
import time

DEFAULT_TIMEOUT = 10.0


class Closed(Exception):
    """The server closed the connection."""


class Reply:
    """One (possibly multi-line) reply: code, and the raw lines without CRLF."""

    def __init__(self, lines):
        self.lines = lines
        self.code = int(lines[-1][:3])

    @property
    def last(self):
        """The final line, e.g. '530 5.7.0 Must issue a STARTTLS command first'."""
        return self.lines[-1]

    @property
    def texts(self):
        """The text of every line after 'NNN-' / 'NNN '."""
        return [line[4:] for line in self.lines]

    def __repr__(self):
        return f"Reply({self.lines!r})"


def client_context(cafile=None, server_hostname_check=False):
    """A TLS client context; with cafile it verifies the chain."""
    if cafile is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.check_hostname = server_hostname_check
    return ctx


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain_ir(user, password, authzid=""):
    return b64(f"{authzid}\0{user}\0{password}")


class SMTPClient:
    def __init__(self, port, host="127.0.0.1", implicit_tls=False, ctx=None,
                 server_hostname="mail.example.test", timeout=DEFAULT_TIMEOUT,
                 greeting=True):
        self.timeout = timeout
        self.buf = b""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tls = False
        self.greeting = None
        if implicit_tls:
            self._wrap(ctx, server_hostname)
        if greeting:
            self.greeting = self.reply()

    # --- transport -------------------------------------------------------

    def _wrap(self, ctx, server_hostname):
        if self.buf:
            raise AssertionError(f"plaintext bytes pending before TLS: {self.buf!r}")
        ctx = ctx or client_context()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.tls = True

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no data from server; buffered {self.buf!r}")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(f"no data from server; buffered {self.buf!r}") from None
        except ConnectionResetError as e:
            raise Closed(f"connection reset ({e}); buffered {self.buf!r}") from None
        except ssl.SSLError as e:
            raise Closed(f"TLS error ({e}); buffered {self.buf!r}") from None
        if not chunk:
            raise Closed(f"connection closed; buffered {self.buf!r}")
        self.buf += chunk

    def readline(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise AssertionError("reply line too long")
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", errors="replace")

    def reply(self, timeout=None):
        """Reads one whole reply (all its continuation lines)."""
        lines = []
        while True:
            line = self.readline(timeout)
            if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in "- "):
                raise AssertionError(f"malformed reply line {line!r} after {lines!r}")
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                return Reply(lines)

    def cmd(self, line, timeout=None):
        """Sends one command line (CRLF added) and returns its reply."""
        self.send(line + "\r\n")
        return self.reply(timeout)

    def expect_nothing(self, wait=0.5):
        """Asserts the server sends nothing more for `wait` seconds."""
        if self.buf:
            raise AssertionError(f"unexpected bytes from server: {self.buf!r}")
        try:
            self._fill(time.monotonic() + wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected bytes from server: {self.buf!r}")

    def expect_closed(self, timeout=None):
        """Asserts the server closes the connection (within timeout), with
        nothing more than what is buffered; returns the remaining bytes."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            try:
                self._fill(deadline)
            except Closed:
                rest, self.buf = self.buf, b""
                return rest

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- SMTP helpers ----------------------------------------------------

    def ehlo(self, name="client.example.test"):
        r = self.cmd(f"EHLO {name}")
        assert r.code == 250, r
        return [t.upper() for t in r.texts[1:]]

    def starttls(self, ctx=None, server_hostname="mail.example.test"):
        r = self.cmd("STARTTLS")
        assert r.last == "220 2.0.0 Ready to start TLS", r
        self._wrap(ctx, server_hostname)
        return r

    def auth_plain(self, user, password):
        return self.cmd(f"AUTH PLAIN {plain_ir(user, password)}")

    def login(self, user, password):
        r = self.auth_plain(user, password)
        assert r.last == "235 2.7.0 Authentication successful", r
        return r

    def submit_ready(self, user, password, ctx=None):
        """EHLO, STARTTLS, EHLO, AUTH PLAIN: ready for MAIL."""
        self.ehlo()
        self.starttls(ctx)
        self.ehlo()
        self.login(user, password)
