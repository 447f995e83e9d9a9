"""trailwarden logtest / rules check: in-process and as a real subprocess."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.manager.analysis.helpers import EVENTS, RULES
from trailwarden.manager import logtest

DOCUMENTED = {
    "ec2-run-instances.json": ["80202"],
    "ec2-run-instances-unauthorized.json": ["80203"],
    "iam-create-user-access-denied.json": ["80250"],
    "signin-console-login-success.json": ["80253"],
    "signin-console-login-failure.json": ["80254"],
    "signin-console-login-failures-burst.json": ["80254"] * 4 + ["80255", "80254"],
}


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _rule_ids(results: list[dict[str, object]]) -> list[str | None]:
    return [r["alert"]["rule"]["id"] if r["alert"] else None for r in results]  # type: ignore[index]


@pytest.mark.parametrize(("name", "expected"), sorted(DOCUMENTED.items()))
def test_documented_alerts_in_process(
    name: str, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert logtest.main(["logtest", "--json", str(EVENTS / name)]) == 0
    results = _json_lines(capsys.readouterr().out)
    assert _rule_ids(results) == expected
    first = results[0]
    assert first["event"]["integration"] == "aws"  # type: ignore[index]
    assert first["trace"][0] == {"rule": "80200", "depth": 0, "matched": True, "note": ""}  # type: ignore[index]


def test_state_is_kept_across_files_of_one_run(capsys: pytest.CaptureFixture[str]) -> None:
    burst = str(EVENTS / "signin-console-login-failures-burst.json")
    assert logtest.main(["logtest", "--json", burst, burst]) == 0
    ids = _rule_ids(_json_lines(capsys.readouterr().out))
    # The second copy replays the same event times: with the first copy's last failure still
    # in the window, its 4th failure is the 5th within 360 s.
    assert ids == DOCUMENTED["signin-console-login-failures-burst.json"] + [
        "80254",
        "80254",
        "80254",
        "80255",
        "80254",
        "80254",
    ]


def test_text_output_shows_fields_rules_tried_and_alert(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert logtest.main(["logtest", str(EVENTS / "signin-console-login-failure.json")]) == 0
    out = capsys.readouterr().out
    assert "**Phase 1: Completed decoding." in out
    assert '\taws.responseElements.ConsoleLogin: "Failure"' in out
    assert '\tintegration: "aws"' in out
    assert "**Phase 2: Rules tried." in out
    assert "\t    80253: match" in out
    assert "id: '80254'" in out
    assert "level: '5'" in out
    assert "**Alert to be generated." in out


def test_stdin_json_lines_and_gzip(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    records = json.loads((EVENTS / "iam-create-user.json").read_text())["Records"]
    records += json.loads((EVENTS / "cloudtrail-stop-logging.json").read_text())["Records"]
    lines = "\n".join(json.dumps(r) for r in records).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(lines))))
    assert logtest.main(["logtest", "--json"]) == 0
    results = _json_lines(capsys.readouterr().out)
    assert _rule_ids(results) == ["80202", "80500"]
    assert results[0]["source"] == "<stdin>"


def test_another_ruleset_and_lists_root(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "logtest",
        "--json",
        "--rules",
        str(RULES / "semantics.xml"),
        str(EVENTS / "iam-create-user.json"),
    ]
    assert logtest.main(args) == 0
    assert _rule_ids(_json_lines(capsys.readouterr().out)) == ["100003"]


def test_own_rules_with_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "logtest",
        "--json",
        "--with-defaults",
        "--rules",
        str(RULES / "wazuh-style.xml"),
        "--lists-root",
        str(RULES),
        str(EVENTS / "ec2-run-instances.json"),
        str(EVENTS / "ec2-stop-instances.json"),
    ]
    assert logtest.main(args) == 0
    assert _rule_ids(_json_lines(capsys.readouterr().out)) == ["100100", "80202"]


def test_broken_ruleset_and_unreadable_input_fail(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert (
        logtest.main(
            ["logtest", "--rules", str(RULES / "broken.xml"), str(EVENTS / "iam-create-user.json")]
        )
        == 1
    )
    assert "broken.xml:6: duplicate rule id" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert logtest.main(["logtest", str(bad)]) == 1
    assert "not JSON" in capsys.readouterr().err


def test_rules_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert logtest.main(["rules", "check", str(RULES / "semantics.xml")]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    assert logtest.main(["rules", "check", str(RULES / "broken.xml")]) == 1
    err = capsys.readouterr().err
    assert sum(line.startswith(str(RULES / "broken.xml:")) for line in err.splitlines()) == 8
    assert "ruleset refused: 8 error(s)" in err
    assert logtest.main(["rules", "check", "--json", str(RULES / "broken.xml")]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False
    assert {e["line"] for e in result["errors"]} == {6, 10, 16, 21, 24, 30, 33}


def test_rules_check_with_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    local = str(RULES / "wazuh-style.xml")
    assert logtest.main(["rules", "check", "--lists-root", str(RULES), local]) == 1
    assert "parent rule 80202 (if_sid) does not exist" in capsys.readouterr().err
    assert (
        logtest.main(["rules", "check", "--with-defaults", "--lists-root", str(RULES), local]) == 0
    )
    assert capsys.readouterr().out.startswith("OK: ")


def test_register_adds_both_commands_with_handlers() -> None:
    parser = argparse.ArgumentParser()
    logtest.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["logtest", "x.json", "--json"])
    assert args.func is logtest.run_logtest and args.files == ["x.json"]
    args = parser.parse_args(["rules", "check", "a.xml", "b"])
    assert args.func is logtest.run_rules_check and args.paths == ["a.xml", "b"]
    assert logtest.main(["rules"]) == 2


def test_subprocess_run() -> None:
    burst = EVENTS / "signin-console-login-failures-burst.json"
    result = subprocess.run(
        [sys.executable, "-m", "trailwarden.manager.logtest", "logtest", "--json", str(burst)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _rule_ids(_json_lines(result.stdout)) == DOCUMENTED[burst.name]


def test_logtest_shows_the_policy_facts_rules_can_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deny_all = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
    }
    rec = {
        "eventVersion": "1.09",
        "eventID": "policy-facts-1",
        "eventTime": "2026-11-20T09:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "PutUserPolicy",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/carol"},
        "requestParameters": {
            "userName": "mallory",
            "policyName": "quarantine",
            "policyDocument": json.dumps(deny_all),
        },
    }
    path = tmp_path / "records.json"
    path.write_text(json.dumps({"Records": [rec]}))
    assert logtest.main(["logtest", "--json", str(path)]) == 0
    (result,) = _json_lines(capsys.readouterr().out)
    assert result["policy_facts"] == {
        "trailwarden.policy.allows": "false",
        "trailwarden.policy.allows_all_actions": "false",
        "trailwarden.policy.public": "false",
    }
    assert result["alert"]["rule"]["id"] == "80202"  # type: ignore[index]  # a Deny is no grant
    assert logtest.main(["logtest", str(path)]) == 0
    text = capsys.readouterr().out
    assert 'trailwarden.policy.allows: "false"  (computed from the request\'s policy)' in text
