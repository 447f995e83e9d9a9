"""ossec.conf aws-s3 wodles → central TOML, with every option left behind listed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from trailwarden.common.errors import ConfigError
from trailwarden.common.schema.central import parse_central_config
from trailwarden.common.schema.sources import CloudTrailSourceConfig, SqsSourceConfig
from trailwarden.manager.central.wazuh_import import import_wazuh, import_wazuh_file

# The shape of Wazuh's documented example (docs: cloud-security/amazon/services/supported-
# services/cloudtrail), plus the options an admin is likely to have added, in the usual
# ossec.conf layout of several <ossec_config> blocks.
OSSEC_CONF = """<?xml version="1.0"?>
<ossec_config>
  <global><jsonout_output>yes</jsonout_output></global>
</ossec_config>
<ossec_config>
  <wodle name="aws-s3">
    <disabled>no</disabled>
    <interval>10m</interval>
    <run_on_start>yes</run_on_start>
    <skip_on_error>no</skip_on_error>
    <bucket type="cloudtrail">
      <name>org-trail-logs</name>
      <aws_profile>default</aws_profile>
      <aws_account_id>111122223333, 444455556666</aws_account_id>
      <aws_account_alias>prod</aws_account_alias>
      <regions>us-east-1,eu-west-1</regions>
      <only_logs_after>2026-NOV-01</only_logs_after>
      <path>trails</path>
      <iam_role_arn>arn:aws:iam::111122223333:role/wazuh-reader</iam_role_arn>
      <iam_role_duration>1800</iam_role_duration>
      <discard_regex field="eventName">^Describe</discard_regex>
      <sts_endpoint>sts.us-east-1.amazonaws.com</sts_endpoint>
      <access_key>AKIAABCDEFGHIJKLMNOP</access_key>
      <secret_key>not-a-real-secret</secret_key>
    </bucket>
    <bucket type="guardduty"><name>gd-findings</name></bucket>
    <service type="cloudwatchlogs"><aws_log_groups>g</aws_log_groups></service>
    <wday>monday</wday>
  </wodle>
</ossec_config>
"""


def test_cloudtrail_bucket_and_wodle_options_are_carried_over() -> None:
    result = import_wazuh(OSSEC_CONF)
    assert result.sources == 1
    data = tomllib.loads(result.toml)
    (source,) = data["sources"]
    assert source["bucket"] == "org-trail-logs"
    assert source["aws_account_ids"] == ["111122223333", "444455556666"]
    assert source["regions"] == ["us-east-1", "eu-west-1"]
    assert source["only_logs_after"] == "2026-11-01"
    assert (source["interval"], source["run_on_start"], source["skip_on_error"]) == (
        "10m",
        True,
        False,
    )
    assert source["sts_endpoint"] == "https://sts.us-east-1.amazonaws.com"
    assert source["discard"] == [{"field": "eventName", "regex": "^Describe"}]
    # The agent accepts it as is.
    (parsed,) = parse_central_config(result.toml, "imported").sources
    assert isinstance(parsed, CloudTrailSourceConfig)
    assert parsed.path == "trails/" and parsed.iam_role_duration == 1800


def test_everything_left_behind_is_listed_and_no_key_is_copied() -> None:
    result = import_wazuh(OSSEC_CONF)
    left = "\n".join(result.not_carried)
    for expected in (
        "bucket[1]/access_key",
        "bucket[1]/secret_key",
        "bucket[2] type=guardduty",
        "service type=cloudwatchlogs",
        "wodle[1]/wday",
    ):
        assert expected in left
    assert "AKIA" not in result.toml and "not-a-real-secret" not in result.toml
    assert "# Not carried over:" in result.toml  # also in the file the admin keeps


def test_a_disabled_wodle_is_imported_paused(tmp_path: Path) -> None:
    conf = tmp_path / "ossec.conf"
    conf.write_text(OSSEC_CONF.replace("<disabled>no</disabled>", "<disabled>yes</disabled>"))
    result = import_wazuh_file(conf)
    assert tomllib.loads(result.toml)["sources"][0]["enabled"] is False


def test_files_without_a_wodle_or_not_xml_are_refused() -> None:
    with pytest.raises(ConfigError, match="no <wodle"):
        import_wazuh("<ossec_config><global/></ossec_config>")
    with pytest.raises(ConfigError, match="not valid XML"):
        import_wazuh("<ossec_config><wodle name='aws-s3'>")


def test_an_interval_in_months_is_refused_not_read_as_minutes() -> None:
    with pytest.raises(ConfigError, match=r"wodle\[1\]/interval: '1M' is in months"):
        import_wazuh(OSSEC_CONF.replace("<interval>10m</interval>", "<interval>1M</interval>"))


def _wodle(body: str) -> str:
    return f'<ossec_config><wodle name="aws-s3">{body}</wodle></ossec_config>'


BUCKET = '<bucket type="cloudtrail"><name>org-trail-logs</name>{extra}</bucket>'


@pytest.mark.parametrize(
    ("conf", "reason"),
    [
        (_wodle("<interval>10m</interval>"), "has no CloudTrail bucket to import (no <bucket>"),
        (
            _wodle('<bucket type="guardduty"><name>gd-findings</name></bucket>'),
            "has no CloudTrail bucket to import (wodle[1]/bucket[1] type=guardduty",
        ),
        (
            _wodle("<bucket><name>org-trail-logs</name></bucket>"),
            "wodle[1]/bucket[1]: the bucket has no type attribute",
        ),
        (
            _wodle('<bucket type=""><name>org-trail-logs</name></bucket>'),
            "wodle[1]/bucket[1]: the bucket's type is empty",
        ),
        (_wodle('<bucket type="cloudtrail"></bucket>'), "the bucket has no <name>"),
        (
            _wodle(BUCKET.format(extra="<only_logs_after>2026-13-45</only_logs_after>")),
            "wodle[1]/bucket[1]/only_logs_after: '2026-13-45'",
        ),
        (
            _wodle(BUCKET.format(extra="<only_logs_after>soon</only_logs_after>")),
            "only_logs_after: 'soon'",
        ),
        (
            _wodle(BUCKET.format(extra="<remove_from_bucket>maybe</remove_from_bucket>")),
            "bucket[1]/remove_from_bucket: expected yes or no, got 'maybe'",
        ),
        (
            _wodle("<interval>often</interval>" + BUCKET.format(extra="")),
            "wodle[1]/interval: 'often' is not a duration",
        ),
        (_wodle("<interval>0s</interval>" + BUCKET.format(extra="")), "more than zero"),
        (
            _wodle(BUCKET.format(extra="<regions>us-east-1,us-fake-1</regions>")),
            "'us-fake-1' is not an AWS region (valid: af-south-1, ",
        ),
        (
            _wodle('<bucket type="cloudtrail"><name>Org_Trail</name></bucket>'),
            "'Org_Trail' is not a valid S3 bucket name",
        ),
    ],
)
def test_what_wazuh_refuses_is_refused_naming_where(conf: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        import_wazuh(conf)
    assert reason in str(caught.value)


def test_the_legacy_bucket_form_is_a_cloudtrail_bucket() -> None:
    result = import_wazuh(_wodle("<bucket>org-legacy-trail</bucket><interval>1h</interval>"))
    (source,) = tomllib.loads(result.toml)["sources"]
    assert (source["type"], source["bucket"], source["interval"]) == (
        "cloudtrail",
        "org-legacy-trail",
        "1h",
    )


SUBSCRIBER_CONF = """
<wodle name="aws-s3">
  <disabled>no</disabled>
  <interval>5m</interval>
  <subscriber type="buckets">
    <sqs_name>trail-notifications</sqs_name>
    <aws_profile>audit</aws_profile>
    <iam_role_arn>arn:aws:iam::111122223333:role/wazuh-sqs</iam_role_arn>
    <iam_role_duration>1800</iam_role_duration>
    <external_id>ext-42</external_id>
    <service_endpoint>s3.us-east-1.amazonaws.com</service_endpoint>
    <sts_endpoint>https://sts.us-east-1.amazonaws.com</sts_endpoint>
    <discard_regex field="eventName">^Describe</discard_regex>
    <access_key>AKIAABCDEFGHIJKLMNOP</access_key>
  </subscriber>
  <subscriber type="security_lake"><sqs_name>lake</sqs_name></subscriber>
</wodle>
"""


def test_a_buckets_subscriber_becomes_an_sqs_source() -> None:
    result = import_wazuh(SUBSCRIBER_CONF)
    (source,) = tomllib.loads(result.toml)["sources"]
    assert source["type"] == "cloudtrail-sqs"
    assert source["sqs_name"] == "trail-notifications"
    assert source["iam_role_external_id"] == "ext-42"
    assert source["service_endpoint"] == "https://s3.us-east-1.amazonaws.com"
    assert "interval" not in source  # the queue is read continuously
    (parsed,) = parse_central_config(result.toml, "imported").sources
    assert isinstance(parsed, SqsSourceConfig)
    assert (parsed.aws_profile, parsed.iam_role_arn, parsed.iam_role_duration) == (
        "audit",
        "arn:aws:iam::111122223333:role/wazuh-sqs",
        1800,
    )
    assert parsed.discard[0].field == "eventName"
    left = "\n".join(result.not_carried)
    assert "subscriber[buckets]/access_key" in left
    assert "subscriber type=security_lake" in left
    assert "AKIA" not in result.toml
