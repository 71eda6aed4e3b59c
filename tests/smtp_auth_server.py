#!/usr/bin/python3
"""An SMTP server for tests that requires AUTH: aiosmtpd (Debian's python3-aiosmtpd) storing
mail in a Maildir, accepting only the user and password given in SMTP_USER and SMTP_PASSWORD.
AUTH over plain text is allowed because it only ever listens on loopback.

Usage: smtp_auth_server.py 127.0.0.1:PORT MAILDIR
"""

import os
import signal
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    if host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("refusing to listen beyond loopback: " + host)
    user = os.environ["SMTP_USER"].encode()
    password = os.environ["SMTP_PASSWORD"].encode()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == user and auth_data.password == password
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        Mailbox(sys.argv[2]),
        hostname=host,
        port=int(port),
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    print(f"listening on {host}:{port} with AUTH", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
