"""The ``type = "cloudtrail-sqs"`` schema: the issue's example, defaults, and refusals naming
the source index, the key and the reason."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from trailwarden.common.errors import ConfigError, SecretInConfigError
from trailwarden.common.schema.central import parse_central_config
from trailwarden.common.schema.sources import SqsSourceConfig, parse_sources

QUEUE = "https://sqs.us-east-1.amazonaws.com/111122223333/trail-notifications"
ISSUE_EXAMPLE = f"""
[[sources]]
type = "cloudtrail-sqs"
queue_url = "{QUEUE}"
aws_profile = "audit"
sqs_endpoint = "https://sqs.example.internal/"
workers = 8
visibility_timeout = "5m"
max_receive_count = 5
"""


def parse(**table: Any) -> SqsSourceConfig:
    (source,) = parse_sources([{"type": "cloudtrail-sqs", **table}], "agent.toml")
    assert isinstance(source, SqsSourceConfig)
    return source


def test_the_issue_example_parses_with_its_values() -> None:
    (source,) = parse_sources(tomllib.loads(ISSUE_EXAMPLE)["sources"], "agent.toml")
    assert isinstance(source, SqsSourceConfig)
    assert source.name == "cloudtrail-sqs:trail-notifications"
    assert source.queue_url == QUEUE
    assert source.region == "us-east-1"  # from the queue's host name
    assert source.sqs_endpoint == "https://sqs.example.internal"
    assert (source.visibility_timeout, source.max_receive_count, source.workers) == (300, 5, 8)
    assert source.wait_time == 20  # the default long poll


def test_a_queue_by_name_and_region() -> None:
    source = parse(sqs_name="trail-notes", region="eu-west-1")
    assert (source.queue_url, source.sqs_name, source.region) == ("", "trail-notes", "eu-west-1")
    assert source.name == "cloudtrail-sqs:trail-notes"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, r"sources\[0\]\.queue_url: required"),
        ({"queue_url": QUEUE, "sqs_name": "x"}, r"sources\[0\]\.sqs_name: give queue_url or"),
        ({"queue_url": "sqs://nope"}, r"queue_url: 'sqs://nope' is not a queue URL"),
        ({"sqs_name": "bad name!"}, r"sqs_name: 'bad name!' is not a queue name"),
        ({"queue_url": QUEUE, "region": "mars"}, r"region: 'mars' is not an AWS region"),
        ({"queue_url": QUEUE, "visibility_timeout": "1s"}, r"visibility_timeout: 1s is outside"),
        ({"queue_url": QUEUE, "visibility_timeout": "13h"}, r"visibility_timeout: .* outside"),
        ({"queue_url": QUEUE, "wait_time": 0}, r"wait_time: must be more than zero"),
        ({"queue_url": QUEUE, "wait_time": "30s"}, r"wait_time: 30s is outside 1s-20s"),
        ({"queue_url": QUEUE, "max_receive_count": 0}, r"max_receive_count: 0 is outside"),
        ({"queue_url": QUEUE, "workers": 0}, r"workers: 0 is outside 1-64"),
        ({"queue_url": QUEUE, "iam_role_arn": "role"}, r"iam_role_arn: 'role' is not an ARN"),
        ({"queue_url": QUEUE, "sqs_endpoint": "sqs.local"}, r"sqs_endpoint: .* not an http"),
        ({"queue_url": QUEUE, "interval": "5m"}, r"sources\[0\]\.interval: unknown key"),
        ({"queue_url": QUEUE, "bucket": "b"}, r"sources\[0\]\.bucket: unknown key"),
    ],
)
def test_bad_values_are_refused_with_index_key_and_reason(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(**table)


def test_secrets_are_refused() -> None:
    with pytest.raises(SecretInConfigError, match="aws_secret_access_key"):
        parse(queue_url=QUEUE, aws_secret_access_key="x")


def test_central_config_validates_it_and_its_limits_apply() -> None:
    text = f"""
[limits]
max_workers = 2
min_interval = "10m"
[[sources]]
type = "cloudtrail-sqs"
queue_url = "{QUEUE}"
workers = 16
"""
    settings = parse_central_config(text, "central")
    (source,) = settings.effective_sources(())
    assert isinstance(source, SqsSourceConfig)
    assert source.workers == 2  # min_interval has nothing to raise: no interval
    with pytest.raises(ConfigError, match=r"visibility_timeout"):
        parse_central_config(text + 'visibility_timeout = "0s"\n', "central")
