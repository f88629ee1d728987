"""Sending one e-mail through the SMTP server SMTP_URL names (stdlib smtplib; blocking: run it on a thread)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


def send_mail(smtp_url: str, sender: str, to: str, subject: str, body: str, *, timeout_s: float) -> None:
    """Raises smtplib.SMTPException or OSError when the server refuses or cannot be reached."""
    parts = urlsplit(smtp_url)
    host, port = parts.hostname or "localhost", parts.port or DEFAULT_PORTS.get(parts.scheme, 25)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(body)
    client: smtplib.SMTP
    if parts.scheme == "smtps":
        client = smtplib.SMTP_SSL(host, port, timeout=timeout_s, context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(host, port, timeout=timeout_s)
    with client:
        if parts.scheme == "smtp+starttls":
            client.starttls(context=ssl.create_default_context())
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(message)
