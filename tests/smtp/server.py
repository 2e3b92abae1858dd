"""A real SMTP server for the e-mail tests: Debian's aiosmtpd on loopback, started by tests/src/smtp.rs.

It listens on up to three ports of 127.0.0.1:
- the submission port: plain SMTP that offers STARTTLS and requires it before AUTH and before any mail;
- the smtps port (--smtps-port): TLS from the first byte, AUTH required;
- the plain port (--plain-port, optional): no TLS and no AUTH, for `?tls=none` to a loopback relay.
AUTH PLAIN and LOGIN (or only --mechanisms) check one --user and the password in --password-file.
Recipients at refused.invalid get 550, at tempfail.invalid 451.

Every accepted message is written to --spool as NAME.json (the envelope: sender, recipients, port,
TLS, login) and NAME.eml (the bytes as received), each written to a temporary name and renamed, the
.eml last; a reader that sees the .eml finds its .json beside it. Names sort in arrival order.

It prints "READY submission=P smtps=P plain=P" once every port listens (port 0 picks a free one, so a
restart passes the ports it printed), and exits when its standard input closes, so it never outlives
the test that started it. It does not relay, queue or check anything else.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

REFUSED_DOMAIN = "@refused.invalid"
TEMPFAIL_DOMAIN = "@tempfail.invalid"


class Handler:
    def __init__(self, spool, port_names):
        self.spool = spool
        self.port_names = port_names
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        lower = address.lower()
        if lower.endswith(REFUSED_DOMAIN):
            return "550 5.1.1 <%s>: recipient refused by the test server" % address
        if lower.endswith(TEMPFAIL_DOMAIN):
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = "%020d-%06d-%04d" % (time.time_ns(), os.getpid(), self.count)
        local = server.transport.get_extra_info("sockname")
        port = local[1] if local else 0
        # Implicit TLS shows in the transport; STARTTLS in the session (aiosmtpd sets it on upgrade).
        tls = session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None
        login = getattr(session.auth_data, "login", None)
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "port": port,
            "listener": self.port_names.get(port, "?"),
            "tls": bool(tls),
            "auth_login": login,
        }
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        write_atomically(os.path.join(self.spool, name + ".json"), json.dumps(meta).encode("utf-8"))
        write_atomically(os.path.join(self.spool, name + ".eml"), content)
        return "250 2.0.0 Message accepted for delivery"


def write_atomically(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode("utf-8")
            and auth_data.password == password.encode("utf-8")
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--smtps-port", type=int, default=0)
    parser.add_argument("--plain-port", type=int, default=-1)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--mechanisms", default="PLAIN,LOGIN")
    parser.add_argument("--spool", required=True)
    args = parser.parse_args()

    with open(args.password_file, encoding="utf-8") as f:
        password = f.read().rstrip("\r\n")
    offered = {m.strip().upper() for m in args.mechanisms.split(",") if m.strip()}
    excluded = [m for m in ("PLAIN", "LOGIN") if m not in offered]

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    # aiosmtpd warns about AUTH on the implicit-TLS port, which it cannot see is encrypted.
    warnings.simplefilter("ignore")

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    port_names = {}
    handler = Handler(args.spool, port_names)
    check = authenticator(args.user, password)
    common = dict(
        hostname="smtp.test",
        ident="auth-tests SMTP",
        enable_SMTPUTF8=True,
        authenticator=check,
        auth_exclude_mechanism=excluded,
        loop=loop,
    )

    def submission():
        return SMTP(
            handler,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            **common,
        )

    def smtps():
        # The whole connection is TLS, which aiosmtpd does not count as STARTTLS: AUTH is offered
        # without it here, and still required.
        return SMTP(handler, auth_required=True, auth_require_tls=False, **common)

    def plain():
        return SMTP(handler, auth_required=False, auth_require_tls=True, **common)

    servers = [
        ("submission", loop.run_until_complete(loop.create_server(submission, args.host, args.port))),
        (
            "smtps",
            loop.run_until_complete(
                loop.create_server(smtps, args.host, args.smtps_port, ssl=context)
            ),
        ),
    ]
    if args.plain_port >= 0:
        servers.append(
            ("plain", loop.run_until_complete(loop.create_server(plain, args.host, args.plain_port)))
        )
    ports = {}
    for name, server in servers:
        port = server.sockets[0].getsockname()[1]
        ports[name] = port
        port_names[port] = name

    stop = loop.create_future()

    def on_stdin():
        if not os.read(sys.stdin.fileno(), 4096) and not stop.done():
            stop.set_result(None)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    print(" ".join(["READY"] + ["%s=%d" % (n, p) for n, p in ports.items()]), flush=True)
    loop.run_until_complete(stop)
    for _, server in servers:
        server.close()


if __name__ == "__main__":
    main()
