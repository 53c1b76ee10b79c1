#!/usr/bin/env python3
"""moto_server, with what SES v2's SendEmail does on AWS and moto leaves out:

- the configuration set named by ConfigurationSetName must exist (else NotFoundException, as
  SES answers), and
- the message keeps its ConfigurationSetName and EmailTags: moto drops both, and the local
  event sources (infra/event_sources.py) need them to publish a bounce or complaint of the
  SES mailbox simulator through the set's event destination, tagged as SES tags it.

Both are kept on moto's sent Message, so `GET /moto-api/data.json` shows them under
ses -> Message as `configuration_set_name` and `tags` ({name: [value]}, as SES event records
carry them). `GET /moto-api/data.json?only=ses.Message` answers just that model, in the same
shape: the full document holds every model of every service (every DynamoDB item), takes
seconds once a test run has filled the tables, and the event sources poll sent mail twice a
second.

- DynamoDB writes are atomic, as on AWS: moto checks a ConditionExpression and then writes, with
  nothing between them, in a threaded server, so two concurrent conditional writes to one item
  could both pass (two completions of one call, both claiming its e-mail). Each write operation
  runs under one lock here; reads are left concurrent.

Everything else is moto's own server: same arguments (-H HOST -p PORT).
"""
from __future__ import annotations

import functools
import json
import sys
import threading
from typing import Any
from urllib.parse import parse_qs, urlparse

from moto.moto_api._internal.responses import MotoAPIResponse
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

_model_data = MotoAPIResponse.model_data


def model_data(self: MotoAPIResponse, request: Any, full_url: str, headers: Any):
    only = parse_qs(urlparse(full_url).query).get("only")
    if not only:
        return _model_data(self, request, full_url, headers)
    from moto.core.model_instances import model_data as models

    service, _, name = only[0].partition(".")
    found = []
    for instance in getattr(models.get(service, {}).get(name), "instances_tracked", []):
        item = {}
        for attr in dir(instance):  # what moto's own data.json keeps of an instance
            if not attr.startswith("_"):
                try:
                    value = getattr(instance, attr)
                    json.dumps(value)
                except (TypeError, AttributeError, ValueError):
                    continue
                item[attr] = value
        found.append(item)
    return 200, {"Content-Type": "application/javascript"}, json.dumps({service: {name: found}})


MotoAPIResponse.model_data = model_data  # type: ignore[method-assign]
# The route table binds its handler when imported: bind the one above.
from moto.moto_api._internal import urls as _api_urls  # noqa: E402

_api_urls.url_paths["{0}/moto-api/data.json"] = _api_urls.response_instance.model_data


from moto.dynamodb.models import DynamoDBBackend  # noqa: E402

_dynamodb_writes = threading.RLock()


def _atomic(write: Any) -> Any:
    @functools.wraps(write)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _dynamodb_writes:
            return write(*args, **kwargs)

    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))


if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
