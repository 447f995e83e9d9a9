"""manager.toml's outputs: both forms, the defaults, and errors naming the entry and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from trailwarden.common.errors import ConfigError
from trailwarden.manager.config import ManagerConfig, parse_manager_config
from trailwarden.manager.outputs.config import (
    AlertSelection,
    AlertsFileOutput,
    EmailOutput,
    RetryPolicy,
    SlackOutput,
    WebhookOutput,
)

HOME = Path("/srv/tw")


def parse(text: str) -> ManagerConfig:
    return parse_manager_config(tomllib.loads(text), HOME, "/srv/tw/manager.toml")


def refused(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        parse(text)
    assert "/srv/tw/manager.toml" in str(caught.value)


def test_the_legacy_table_keeps_working() -> None:
    config = parse("[outputs]\nalerts_file_min_level = 4\nalerts_file_max_size = '1MiB'\n")
    assert config.outputs == (AlertsFileOutput(min_level=4, max_bytes=1024**2),)
    assert config.alerts_file and config.alerts_file_min_level == 4
    assert parse("[outputs]\nalerts_file = false\n").outputs == ()
    assert parse("").outputs == (AlertsFileOutput(),)


def test_entries_with_names_filters_and_retries() -> None:
    config = parse(
        """
[[outputs]]
type = "webhook"
url = "https://soc.example.org/hook"
headers = { X-Source = "trailwarden" }
headers_file = "soc.headers"
min_level = 10
rules = ["80255"]
groups = ["authentication_failed"]
retry_initial_seconds = 2
retry_max_seconds = 60

[[outputs]]
type = "slack"
name = "secops"
url = "http://127.0.0.1:9000/slack"
console_url = "https://manager.example.org:4752/"

[[outputs]]
type = "email"
host = "smtp.example.org"
from = "tw@example.org"
to = ["oncall@example.org"]
"""
    )
    alerts_file, hook, chat, mail = config.outputs
    assert alerts_file == AlertsFileOutput()  # on by default in this form too, same cursor name
    assert hook == WebhookOutput(
        name="webhook-0",
        url="https://soc.example.org/hook",
        headers=(("X-Source", "trailwarden"),),
        headers_file="soc.headers",
        selection=AlertSelection(10, ("80255",), ("authentication_failed",)),
        retry=RetryPolicy(2.0, 60.0),
    )
    assert chat == SlackOutput(
        name="secops",
        url="http://127.0.0.1:9000/slack",
        console_url="https://manager.example.org:4752",
    )
    assert isinstance(mail, EmailOutput) and mail.name == "email-2"
    assert (mail.port, mail.starttls, mail.digest_seconds) == (587, True, 60.0)


def test_an_alerts_file_entry_sets_or_turns_off_the_file() -> None:
    config = parse('[[outputs]]\ntype = "alerts_file"\nmin_level = 5\nmax_size = "2MiB"\n')
    assert config.outputs == (AlertsFileOutput(min_level=5, max_bytes=2 * 1024**2),)
    off = parse(
        '[[outputs]]\ntype = "alerts_file"\nenabled = false\n'
        '[[outputs]]\ntype = "webhook"\nurl = "http://127.0.0.1:1/"\n'
    )
    assert [type(o) for o in off.outputs] == [WebhookOutput]
    assert not off.alerts_file


WEBHOOK = '[[outputs]]\ntype = "webhook"\nurl = "http://127.0.0.1:1/"\n'
EMAIL = '[[outputs]]\ntype = "email"\nhost = "h"\nfrom = "a@b.c"\nto = ["d@e.f"]\n'


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            WEBHOOK + '[[outputs]]\ntype = "webhook"\nurl = "ftp://x/y"\n',
            r"outputs\[1\]\.url: .*'ftp'",
        ),
        ('[[outputs]]\ntype = "webhook"\n', r"outputs\[0\]\.url: expected an http"),
        (
            '[[outputs]]\ntype = "webhook"\nurl = "http://h:99999/x"\n',
            r"outputs\[0\]\.url: the port is not a number",
        ),
        (
            '[[outputs]]\ntype = "pager"\n',
            r"outputs\[0\]\.type: expected one of alerts_file, webhook",
        ),
        (WEBHOOK + "min_level = 17\n", r"outputs\[0\]\.min_level: must be at most 16"),
        (WEBHOOK + "min_level = -1\n", r"outputs\[0\]\.min_level: must be at least 0"),
        (WEBHOOK + "colour = 'red'\n", r"outputs\[0\]: unknown key\(s\) 'colour'"),
        (WEBHOOK + "timeout_seconds = 0\n", r"outputs\[0\]\.timeout_seconds: must be between 0.1"),
        (
            WEBHOOK + "retry_initial_seconds = 10\nretry_max_seconds = 5\n",
            r"retry_max_seconds: must be at least",
        ),
        (
            WEBHOOK + "headers = { Host = 'evil' }\n",
            r"outputs\[0\]\.headers: header 'Host' cannot be set",
        ),
        (WEBHOOK + "rules = [80255]\n", r"outputs\[0\]\.rules: expected a list of strings"),
        (WEBHOOK + "name = 'a b'\n", r"outputs\[0\]\.name: use 1-64 letters"),
        (WEBHOOK + "name = 'archives'\n", r"outputs\[0\]\.name: 'archives' is the cursor of"),
        (WEBHOOK + "name = 'alerts_file'\n", r"outputs\[0\]\.name: 'alerts_file' is the cursor"),
        (
            WEBHOOK + WEBHOOK.replace("[[outputs]]\n", "[[outputs]]\nname = 'webhook-0'\n"),
            r"outputs\[1\]\.name: 'webhook-0' is already",
        ),
        (
            WEBHOOK + "headers = { X-Api-Key = 'k' }\n",
            r"outputs\[0\]\.headers: header 'X-Api-Key' looks like a credential",
        ),
        (
            WEBHOOK + "url_file = 'u'\n",
            r"outputs\[0\]\.url_file: give url or url_file, not both",
        ),
        (
            EMAIL + "password = 'hunter2'\n",
            r"outputs\[0\]\.password: secrets are not kept in manager.toml",
        ),
        (
            EMAIL + "username = 'tw'\n",
            r"outputs\[0\]\.password_file: give username and password_file together",
        ),
        (
            EMAIL + "username = 'tw'\npassword_file = 'p'\nstarttls = false\n",
            r"outputs\[0\]\.starttls: credentials are never sent",
        ),
        (
            EMAIL.replace('to = ["d@e.f"]', "to = []"),
            r"outputs\[0\]\.to: expected a non-empty list",
        ),
        (EMAIL + "port = 0\n", r"outputs\[0\]\.port: must be at least 1"),
        (
            EMAIL + "digest_seconds = 7200\n",
            r"outputs\[0\]\.digest_seconds: must be between 0 and 3600",
        ),
        (
            '[[outputs]]\ntype = "slack"\nurl = "http://h/"\nconsole_url = "http://c"\n',
            r"outputs\[0\]\.console_url: expected the console's https",
        ),
        ("outputs = 3\n", r"outputs: expected a table \(\[outputs\]\) or tables"),
        ("[archives]\nmax_size = 0\n", r"archives\.max_size: must be at least 1 byte"),
    ],
)
def test_errors_name_the_entry_and_key(text: str, match: str) -> None:
    refused(text, match)


def test_header_values_are_never_in_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(WEBHOOK + "headers = { X-Tenant = 's3cr3t' }\nmin_level = 99\n")
    assert "s3cr3t" not in str(caught.value)
    with pytest.raises(
        ConfigError, match="looks like a credential: put it in headers_file"
    ) as inline:
        parse(WEBHOOK + "headers = { Authorization = 'Bearer s3cr3t' }\n")
    assert "s3cr3t" not in str(inline.value)


def test_archives_default_off() -> None:
    assert not parse("").archives.enabled
    config = parse("[archives]\nenabled = true\ncompress = false\n")
    assert config.archives.enabled and not config.archives.compress
