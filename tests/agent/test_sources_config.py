"""The [[sources]] schema: values, defaults, and refusals naming index, key and reason."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trailwarden.common.errors import ConfigError, SecretInConfigError
from trailwarden.common.schema.sources import (
    CloudTrailSourceConfig,
    DirectorySourceConfig,
    parse_sources,
)

ISSUE_EXAMPLE = """
[[sources]]
type = "cloudtrail"
bucket = "org-trail-logs"
aws_profile = "audit"
iam_role_arn = "arn:aws:iam::111122223333:role/TrailReader"
iam_role_external_id = "ext"
iam_role_duration = 3600
path = "prefix/"
path_suffix = ""
aws_organization_id = "o-abc123defg"
aws_account_ids = ["111122223333"]
aws_account_alias = "prod"
regions = ["us-east-1"]
only_logs_after = "2026-NOV-01"
interval = "5m"
run_on_start = true
skip_on_error = true
remove_from_bucket = false
service_endpoint = "https://s3.example.internal/"
sts_endpoint = "https://sts.example.internal"
workers = 8
[[sources.discard]]
field = "eventName"
regex = "^Describe"

[[sources]]
type = "directory"
path = "/var/lib/cloudtrail"
glob = "**/*.json.gz"
"""


def test_issue_example_parses() -> None:
    cloudtrail, directory = parse_sources(tomllib.loads(ISSUE_EXAMPLE)["sources"], "agent.toml")
    assert isinstance(cloudtrail, CloudTrailSourceConfig)
    assert cloudtrail.name == "cloudtrail:org-trail-logs"
    assert cloudtrail.only_logs_after == datetime(2026, 11, 1, tzinfo=UTC)
    assert cloudtrail.interval == 300 and cloudtrail.workers == 8
    assert cloudtrail.path == "prefix/" and cloudtrail.path_suffix == ""
    assert cloudtrail.service_endpoint == "https://s3.example.internal"
    assert cloudtrail.regions == ("us-east-1",)
    assert cloudtrail.discard[0].field == "eventName"
    assert cloudtrail.discard[0].matches({"eventName": "DescribeInstances"})
    assert not cloudtrail.discard[0].matches({"eventName": "RunInstances"})
    assert isinstance(directory, DirectorySourceConfig)
    assert directory.path == Path("/var/lib/cloudtrail") and directory.glob == "**/*.json.gz"
    assert directory.name == "directory:/var/lib/cloudtrail"


def test_defaults() -> None:
    (source,) = parse_sources([{"type": "cloudtrail", "bucket": "org-trail-b"}], "agent.toml")
    assert isinstance(source, CloudTrailSourceConfig)
    assert source.only_logs_after is None and source.run_on_start and source.skip_on_error
    assert not source.remove_from_bucket and source.aws_profile == "" and source.discard == ()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"type": "cloudtrail"}, "sources[1].bucket: required"),
        ({"type": "s3", "bucket": "org-trail-b"}, "sources[1].type: expected"),
        (
            {"type": "cloudtrail", "bucket": "org-trail-b", "colour": 1},
            "sources[1].colour: unknown key",
        ),
        (
            {"type": "cloudtrail", "bucket": "org-trail-b", "regions": "us-east-1"},
            "sources[1].regions: expected a list of strings",
        ),
        (
            {"type": "cloudtrail", "bucket": "org-trail-b", "regions": ["mars"]},
            "sources[1].regions: 'mars' is not an AWS region (valid: af-south-1, ",
        ),
        (
            {"type": "cloudtrail", "bucket": "org-trail-b", "aws_account_ids": ["12"]},
            "sources[1].aws_account_ids: '12' is not a 12-digit",
        ),
        (
            {"type": "cloudtrail", "bucket": "org-trail-b", "iam_role_duration": 60},
            "sources[1].iam_role_duration: 60 is outside 900-43200",
        ),
        (
            {"type": "cloudtrail", "bucket": "org-trail-b", "only_logs_after": "yesterday"},
            "sources[1].only_logs_after: not a date",
        ),
        (
            {"type": "cloudtrail", "bucket": "org-trail-b", "interval": "often"},
            "sources[1].interval: not a duration",
        ),
        (
            {"type": "cloudtrail", "bucket": "org-trail-b", "workers": 0},
            "sources[1].workers: 0 is outside",
        ),
        (
            {"type": "cloudtrail", "bucket": "org-trail-b", "service_endpoint": "s3.local"},
            "sources[1].service_endpoint: 's3.local' is not an http(s):// URL",
        ),
        (
            {
                "type": "cloudtrail",
                "bucket": "org-trail-b",
                "discard": [{"field": "eventName", "regex": "(a"}],
            },
            "sources[1].discard[0].regex: invalid regular expression: missing )",
        ),
        (
            {"type": "cloudtrail", "bucket": "org-trail-b", "discard": [{"field": "x", "re": "a"}]},
            "sources[1].discard[0].re: unknown key",
        ),
        (
            {"type": "cloudtrail", "bucket": "org-trail-b", "run_on_start": "yes"},
            "sources[1].run_on_start: expected true or false",
        ),
        (
            {"type": "cloudtrail", "bucket": "org-trail-a"},
            "sources[1].name: 'cloudtrail:org-trail-a' is already",
        ),
        ({"type": "directory", "path": "/x", "glob": "../*"}, "sources[1].glob:"),
    ],
)
def test_refusals_name_index_key_and_reason(table: dict[str, object], message: str) -> None:
    items = [{"type": "cloudtrail", "bucket": "org-trail-a"}, table]
    with pytest.raises(ConfigError) as caught:
        parse_sources(items, "agent.toml")
    assert str(caught.value).startswith("agent.toml: ")
    assert message in str(caught.value)


def test_secrets_are_refused() -> None:
    table = {"type": "cloudtrail", "bucket": "org-trail-b", "aws_secret_access_key": "abc"}
    with pytest.raises(SecretInConfigError) as caught:
        parse_sources([table], "central config")
    assert "sources[0].aws_secret_access_key" in str(caught.value)
    assert "abc" not in str(caught.value)


def test_not_a_list() -> None:
    with pytest.raises(ConfigError, match=r"agent\.toml: sources: expected a list"):
        parse_sources({"type": "cloudtrail"}, "agent.toml")
    assert parse_sources(None, "agent.toml") == ()


@pytest.mark.parametrize(
    ("bucket", "reason"),
    [
        ("ab", "3 to 63 characters"),
        ("a" * 64, "3 to 63 characters"),
        ("Org-Trail", "only lower-case letters"),
        ("org_trail", "only lower-case letters"),
        ("-org-trail", "beginning and ending with a letter or digit"),
        ("org..trail", "two periods"),
        ("192.168.5.4", "formatted as an IP address"),
        ("xn--org-trail", "prefix 'xn--' is reserved"),
        ("sthree-trail", "prefix 'sthree-' is reserved"),
        ("org-trail-s3alias", "suffix '-s3alias' is reserved"),
        ("org-trail--ol-s3", "suffix '--ol-s3' is reserved"),
    ],
)
def test_bucket_names_follow_s3s_naming_rules(bucket: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_sources([{"type": "cloudtrail", "bucket": bucket}], "agent.toml")
    assert f"agent.toml: sources[0].bucket: {bucket!r} is not a valid S3 bucket name" in str(
        caught.value
    )
    assert reason in str(caught.value)


@pytest.mark.parametrize("bucket", ["org-trail", "aws-cloudtrail-logs-123456789012-3f2a", "a.b.c"])
def test_valid_bucket_names_load(bucket: str) -> None:
    (source,) = parse_sources([{"type": "cloudtrail", "bucket": bucket}], "agent.toml")
    assert isinstance(source, CloudTrailSourceConfig) and source.bucket == bucket


def test_a_region_that_does_not_exist_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_sources(
            [{"type": "cloudtrail", "bucket": "org-trail", "regions": ["us-east-1", "us-fake-1"]}],
            "agent.toml",
        )
    text = str(caught.value)
    assert "sources[0].regions: 'us-fake-1' is not an AWS region (valid: " in text
    # The list is botocore's: every partition, commercial, China and GovCloud included.
    for region in ("us-east-1", "eu-west-3", "cn-north-1", "us-gov-west-1", "ap-southeast-2"):
        assert region in text
    (ok,) = parse_sources(
        [{"type": "cloudtrail", "bucket": "org-trail", "regions": ["cn-north-1"]}], "agent.toml"
    )
    assert isinstance(ok, CloudTrailSourceConfig) and ok.regions == ("cn-north-1",)
