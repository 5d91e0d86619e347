"""The Celery broker settings of a queue: Redis or Amazon SQS, checked before a worker starts.

``ESL_BUILD_QUEUE_URL`` picks the transport: ``redis://`` / ``rediss://`` (the default) or
``sqs://`` (Celery's SQS transport; ``pip install 'esl-build[sqs]'``). For SQS the URL may
carry the access key and the URL-encoded secret (``sqs://AKIA…:secret@``; default: the
usual AWS credential chain) and a host for an SQS-compatible endpoint
(``sqs://key:secret@127.0.0.1:4566``, plain HTTP unless ``is_secure`` is set).
``ESL_BUILD_QUEUE_TRANSPORT_OPTIONS`` adds kombu's SQS options: ``region`` (default
``AWS_REGION``), ``queue_name_prefix`` (e.g. ``prod-``: the queue is
``<prefix><ESL_BUILD_QUEUE_NAME>``), ``predefined_queues`` (queues that exist already: the
workers then need no permission to create or list queues), ``wait_time_seconds``,
``polling_interval``.

A message that is not acknowledged within the visibility timeout is delivered again, to
another worker, while the first may still be running it. A job may wait up to
``ESL_PIPELINE_LEASE_TIMEOUT`` for another worker's lease before its stages even start, so
the timeout must be longer than that (and than the longest build of one lesson: the default
3600 s is); SQS allows at most 43200 s (12 hours).
"""

from __future__ import annotations

import re
from typing import Any

from esl_build.errors import ConfigInvalid
from esl_build.settings import QueueSettings

SQS_MAX_VISIBILITY = 43_200  # seconds (SQS's limit)
SQS_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")

__all__ = ["SQS_MAX_VISIBILITY", "broker_settings", "transport_of"]


def transport_of(url: str) -> str:
    """``redis`` or ``sqs`` for a broker URL (others are left to Celery)."""
    scheme = url.partition("://")[0].lower()
    return {"rediss": "redis", "sqs": "sqs"}.get(scheme, scheme)


def broker_settings(settings: QueueSettings, *, region: str | None = None,
                    lease_timeout: float = 600.0) -> dict[str, Any]:
    """Celery's ``broker_url`` and ``broker_transport_options`` for ``settings``.

    ``region`` is the default SQS region (``AWS_REGION``); ``lease_timeout`` the longest a
    job waits for a lesson's lease (``ESL_PIPELINE_LEASE_TIMEOUT``). ``ConfigInvalid``
    names the variable for a visibility timeout too short for that wait (or too long for
    SQS), an SQS queue name SQS refuses, or predefined queues that lack this one."""
    url = settings.url.reveal()
    options: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout,
                               **settings.transport_options}
    transport = transport_of(url)
    if transport == "sqs":
        if region:
            options.setdefault("region", region)
        _check_sqs(settings, options)
    visibility = _seconds(options.get("visibility_timeout"))
    if transport in ("redis", "sqs") and not visibility > lease_timeout:
        raise ConfigInvalid(
            f"ESL_BUILD_QUEUE_VISIBILITY_TIMEOUT={options['visibility_timeout']} must be "
            f"longer than ESL_PIPELINE_LEASE_TIMEOUT={lease_timeout:g}: a job waiting that "
            "long for a lesson's lease would be delivered to a second worker meanwhile")
    return {"broker_url": url, "broker_transport_options": options}


def _check_sqs(settings: QueueSettings, options: dict[str, Any]) -> None:
    where = "ESL_BUILD_QUEUE_TRANSPORT_OPTIONS"
    visibility = _seconds(options.get("visibility_timeout"))
    if visibility > SQS_MAX_VISIBILITY:
        raise ConfigInvalid(f"ESL_BUILD_QUEUE_VISIBILITY_TIMEOUT={visibility:g}: SQS takes "
                            f"at most {SQS_MAX_VISIBILITY} seconds")
    prefix = options.get("queue_name_prefix", "")
    if not isinstance(prefix, str):
        raise ConfigInvalid(f"{where}: queue_name_prefix must be a string")
    name = prefix + settings.name
    if not SQS_NAME.fullmatch(name):
        raise ConfigInvalid(f"the SQS queue name {name!r} (queue_name_prefix + "
                            "ESL_BUILD_QUEUE_NAME) must be 1-80 letters, digits, - or _")
    predefined = options.get("predefined_queues")
    if predefined is not None and (not isinstance(predefined, dict) or name not in predefined):
        raise ConfigInvalid(f"{where}: predefined_queues must map the queue {name!r} "
                            "(queue_name_prefix + ESL_BUILD_QUEUE_NAME) to its url")


def _seconds(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigInvalid(f"ESL_BUILD_QUEUE_TRANSPORT_OPTIONS: visibility_timeout must be a "
                            f"number of seconds, not {value!r}") from None
