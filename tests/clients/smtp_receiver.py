"""A real SMTP server for the email channel test (tests/it/gitops.rs): aiosmtpd on 127.0.0.1
with STARTTLS and authentication both required, as a mail submission server has them.

    smtp_receiver.py CERT_PEM KEY_PEM USER PASSWORD OUT_DIR

Prints the port it listens on as its first line, writes each message it accepts to
OUT_DIR/<n>.json (envelope, whether TLS and AUTH were used, the raw message), and serves until
its standard input is closed.
"""

import email
import email.policy
import json
import os
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    cert, key, user, password, out_dir = sys.argv[1:6]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        # handled=False: aiosmtpd itself then answers 535 to a failed attempt.
        return AuthResult(success=ok, handled=False)

    class Recorder:
        count = 0

        async def handle_DATA(self, server, session, envelope):
            Recorder.count += 1
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "tls": session.ssl is not None,
                "authenticated": bool(session.authenticated),
                "data": envelope.content.decode("utf-8", "replace"),
            }
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            record["subject"] = str(message["subject"])
            record["from"] = str(message["from"])
            record["to"] = str(message["to"])
            record["content_type"] = message.get_content_type()
            record["body"] = message.get_content()
            path = os.path.join(out_dir, f"{Recorder.count}.json")
            with open(path + ".tmp", "w") as f:
                json.dump(record, f)
            os.replace(path + ".tmp", path)
            return "250 Message accepted for delivery"

    # The controller connects to its own port once to start, so it needs a real one.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        Recorder(),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    print(port, flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
