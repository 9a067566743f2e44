"""Shared fixtures for the integration tests: the binary under test, free
ports, a throw-away CA, and a running server with a config of the test's."""
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMTPGATE = os.environ.get("SMTPGATE_BIN", str(ROOT / "build" / "smtpgate"))
