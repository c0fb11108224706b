"""An SMTP sink for tests/delivery.rs: every message aiosmtpd receives is written, decoded,
as one JSON file in a directory.

    PYTHONPATH=tests/support python -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_sink.Sink DIR

Each file, DIR/NNNNNN.json, holds the envelope (mail_from, rcpt_tos), the decoded subject,
every header (decoded), the decoded plain-text and HTML bodies, the attachments' names, types
and sizes, and the raw message. A file is written
under a temporary name and renamed, so a reader never sees half of one.
"""

import email
import email.policy
import itertools
import json
import os


class Sink:
    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.counter = itertools.count(1)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("smtp_sink.Sink takes one argument: the directory to write to")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        part = message.get_body(preferencelist=("plain",))
        body = part.get_content() if part is not None else ""
        html_part = message.get_body(preferencelist=("html",))
        html = html_part.get_content() if html_part is not None else ""
        attachments = [
            {
                "filename": attachment.get_filename(),
                "content_type": attachment.get_content_type(),
                "size": len(attachment.get_payload(decode=True) or b""),
            }
            for attachment in message.iter_attachments()
        ]
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(message.get("subject", "")),
            "headers": {name.lower(): str(value) for name, value in message.items()},
            "body": body,
            "html": html,
            "attachments": attachments,
            "raw": raw.decode("utf-8", "replace"),
        }
        number = next(self.counter)
        final = os.path.join(self.directory, f"{number:06}.json")
        temporary = final + ".tmp"
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(record, out, ensure_ascii=False)
        os.replace(temporary, final)
        return "250 Message accepted for delivery"
