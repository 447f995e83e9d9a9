"""Bad numbers and huge documents at the Admin API and the admin command line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.fixtures.system import ManagerProcess, run_cli
from trailwarden.common import channels, tls
from trailwarden.common.wire import admin_pb2, admin_pb2_grpc

AREA = "Bad input"
PROD = '[[sources]]\ntype = "cloudtrail"\nname = "prod"\nbucket = "org-trail"\n'


@pytest.fixture
def admin(manager_process: ManagerProcess) -> Iterator[admin_pb2_grpc.AdminStub]:
    manager_process.start()
    bundle = tls.AdminBundle.load(manager_process.home.credentials)
    channel = grpc.secure_channel(
        bundle.address,
        channels.client_channel_credentials(bundle.ca_pem, bundle.cert_pem, bundle.key_pem),
        options=channels.channel_options(bundle.server_name or "localhost"),
    )
    try:
        yield admin_pb2_grpc.AdminStub(channel)
    finally:
        channel.close()


def _refused(call: object, *fields: str) -> str:
    """Run ``call``; it must fail INVALID_ARGUMENT with a message naming each of ``fields``."""
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
    details = str(error.details())
    for name in fields:
        assert name in details, details
    return details


def _set(stub: admin_pb2_grpc.AdminStub, text: str) -> admin_pb2.ConfigRevision:
    request = admin_pb2.SetConfigRequest(
        target=admin_pb2.ConfigTarget(group="big"), config_toml=text
    )
    revision: admin_pb2.ConfigRevision = stub.SetConfig(request, timeout=60)
    return revision


def test_admin_api_refuses_bad_numbers_zero_and_deep_documents_naming_the_field(
    admin: admin_pb2_grpc.AdminStub,
) -> None:
    """Against a manager process: QueryAlerts with since = 99999999999d or limit = 0, CreateToken
    with ttl 0 or uses 0, Audit with limit -1, ListTokens with limit 0 or 1001, a central config
    nested 100,000 deep, a forged page token and 8 MiB strings (search, group name, comment)
    each answer INVALID_ARGUMENT naming the field (they answered UNKNOWN or a bare
    RESOURCE_EXHAUSTED, were stored, or read 0 as 'unset': an hour-long token, a one-use token,
    50 rows); a request that leaves them out gets the documented defaults."""
    query = admin_pb2.AlertQuery
    _refused(lambda: admin.QueryAlerts(query(since="99999999999d"), timeout=10), "since")
    _refused(lambda: admin.QueryAlerts(query(limit=0), timeout=10), "limit")
    token = admin_pb2.CreateTokenRequest
    _refused(lambda: admin.CreateToken(token(ttl_seconds=0), timeout=10), "ttl")
    _refused(lambda: admin.CreateToken(token(uses=0), timeout=10), "uses")
    _refused(lambda: admin.CreateToken(token(uses=99_999_999), timeout=10), "uses", "10000")
    _refused(lambda: admin.Audit(admin_pb2.AuditRequest(limit=-1), timeout=10), "limit")
    tokens = admin_pb2.ListTokensRequest
    _refused(lambda: admin.ListTokens(tokens(limit=0), timeout=10), "limit", "1000")
    _refused(lambda: admin.ListTokens(tokens(limit=1001), timeout=10), "limit", "1000")
    deep = "x = " + "[" * 100_000 + "]" * 100_000 + "\n"
    _refused(lambda: _set(admin, deep), "config_toml", "nested")
    shallow_but_deep = "x = " + "[" * 40 + "]" * 40 + "\n"
    _refused(lambda: _set(admin, shallow_but_deep), "config_toml", "more than 32 levels")
    # The same class elsewhere: a forged page token with a huge number (was UNKNOWN:
    # OverflowError), and 8 MiB strings (their echo in the error passed gRPC's 16 KiB status
    # limit and came back as RESOURCE_EXHAUSTED "Stream removed", or they were stored).
    forged = "YTE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk6MQ"
    _refused(lambda: admin.QueryAlerts(query(page_token=forged), timeout=10), "page token")
    huge = "x" * (8 * 1024 * 1024)
    _refused(lambda: admin.QueryAlerts(query(search=huge), timeout=10), "--search", "1024")
    _refused(lambda: admin.CreateToken(token(group=huge), timeout=10), "group name")
    big_comment = admin_pb2.SetConfigRequest(
        target=admin_pb2.ConfigTarget(group="big"), config_toml=PROD, comment=huge
    )
    _refused(lambda: admin.SetConfig(big_comment, timeout=10), "comment", "4000")
    default = admin.CreateToken(token(), timeout=10)
    assert default.uses == 1
    assert abs(default.expires_unix_ms / 1000 - time.time() - 3600) < 60
    assert len(admin.QueryAlerts(query(), timeout=10).alerts) == 0


def test_oversized_config_documents_are_refused_and_history_pages_stay_small(
    admin: admin_pb2_grpc.AdminStub,
) -> None:
    """Three 24 MB central config documents are refused INVALID_ARGUMENT naming the 1 MiB cap
    (they were stored, after which `config history` failed for good with RESOURCE_EXHAUSTED);
    30 revisions of almost 1 MiB each are stored and the history is read whole, page by page,
    every page under the 16 MiB budget."""
    huge = PROD + "#" * (24 * 1000 * 1000) + "\n"
    for _ in range(3):
        _refused(lambda: _set(admin, huge), "config_toml", "1048576 bytes")
    padding = "#" * 1000 + "\n"
    stored = []
    for number in range(30):
        text = f"{PROD}# revision {number}\n" + padding * 1000  # ~1 MB, under the cap
        stored.append(_set(admin, text).revision)
    seen: list[int] = []
    request = admin_pb2.ConfigHistoryRequest(target=admin_pb2.ConfigTarget(group="big"), limit=100)
    while True:
        page = admin.ConfigHistoryPage(request, timeout=60)
        assert page.ByteSize() <= 17 * 1024 * 1024
        seen += [r.revision for r in page.revisions]
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert seen == sorted(stored, reverse=True)
    first = admin.ConfigHistory(admin_pb2.ConfigTarget(group="big"), timeout=60)
    assert [r.revision for r in first.revisions] == seen[: len(first.revisions)]


def test_numeric_flags_out_of_range_or_zero_fail_with_one_line(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    """`admin alerts --limit 99999999999 | --limit 0 | --since 99999999999d`, `admin token create
    --uses 99999999999 | --uses 0 | --ttl 0s`, `admin audit --limit 0` and `admin config history
    --limit 0` each exit 2 with one error line naming the flag and its range, never a traceback
    (before: tracebacks, or zero read as the default)."""
    manager_process.start()
    credentials = ["--credentials", str(manager_process.home.credentials)]
    cases = [
        (["admin", "alerts", "--limit", "99999999999"], "--limit", "1..10000"),
        (["admin", "alerts", "--limit", "0"], "--limit", "1..10000"),
        (["admin", "alerts", "--since", "99999999999d"], "--since", "36500d"),
        (["admin", "token", "create", "--uses", "99999999999"], "--uses", "1..10000"),
        (["admin", "token", "create", "--uses", "0"], "--uses", "1..10000"),
        (["admin", "token", "create", "--ttl", "0s"], "--ttl", "1s..30d"),
        (["admin", "audit", "--limit", "0"], "--limit", "1..1000"),
        (["admin", "config", "history", "--group", "g", "--limit", "0"], "--limit", "1..100"),
    ]
    for argv, flag, accepted in cases:
        result = run_cli(*argv, *credentials)
        assert result.returncode == 2, (argv, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1, (argv, result.stderr)
        assert flag in errors[0] and accepted in errors[0], (argv, errors[0])
