#!/usr/bin/env python3
"""moto_server, with what SES v2's SendEmail does on AWS and moto leaves out:

- the configuration set named by ConfigurationSetName must exist (else NotFoundException, as
  SES answers), and
- the message keeps its ConfigurationSetName and EmailTags: moto drops both, and the local
  event sources (infra/event_sources.py) need them to publish a bounce or complaint of the
  SES mailbox simulator through the set's event destination, tagged as SES tags it.

Both are kept on moto's sent Message, so `GET /moto-api/data.json` shows them under
ses -> Message as `configuration_set_name` and `tags` ({name: [value]}, as SES event records
carry them). Everything else is moto's own server: same arguments (-H HOST -p PORT).
"""
from __future__ import annotations

import json
import sys

from moto.ses.exceptions import NotFoundException
from moto.sesv2.responses import SESV2Response

_send_email = SESV2Response.send_email


def send_email(self: SESV2Response) -> str:
    params = json.loads(self.body or "{}")
    config_set = params.get("ConfigurationSetName")
    core = self.sesv2_backend.core_backend
    if config_set and config_set not in core.config_sets:
        raise NotFoundException(f"Configuration set <{config_set}> does not exist.")
    answer = _send_email(self)
    message_id = json.loads(answer)["MessageId"]
    tags: dict[str, list[str]] = {}
    for tag in params.get("EmailTags") or []:
        tags.setdefault(tag["Name"], []).append(tag["Value"])
    for message in reversed(core.sent_messages):
        if message.id == message_id:
            message.configuration_set_name = config_set
            message.tags = tags
            break
    return answer


SESV2Response.send_email = send_email  # type: ignore[method-assign]


if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
