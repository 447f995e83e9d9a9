"""Logging in and out of the console over real HTTPS (the manager's CA verified)."""

from __future__ import annotations

from tests.fixtures.console import Console

PASSWORD = "correct horse battery staple"


def test_login_sets_a_strict_session_cookie_and_the_home_page_names_the_user(
    console: Console,
) -> None:
    console.add_user("alice", "admin", PASSWORD)
    client = console.client()
    reply = client.login("alice", PASSWORD)
    assert reply.status == 303 and reply.header("location") == "/"
    cookie = reply.cookies["__Host-tw_session"]
    assert len(cookie.value) >= 43  # 256 bits, URL-safe base64
    assert cookie["httponly"] and cookie["secure"]
    assert cookie["samesite"].lower() == "strict" and cookie["path"] == "/"
    home = client.request("GET", "/")
    assert home.status == 200 and 'action="/logout"' in home.text
    assert client.request("GET", "/api/me").json() == {"name": "alice", "role": "admin"}
    logins = console.audit("console.login")
    assert [(e.actor, e.detail) for e in logins] == [
        ("console:alice", "role=admin address=127.0.0.1")
    ]
    # Only the hash of the session id is stored.
    database = console.running.home.path / "manager.db"
    assert cookie.value.encode() not in database.read_bytes()


def test_wrong_password_and_unknown_user_are_refused_alike(console: Console) -> None:
    console.add_user("alice", "viewer", PASSWORD)
    client = console.client()
    wrong = client.login("alice", "not the password at all")
    unknown = client.login("mallory", "not the password at all")
    for reply in (wrong, unknown):
        assert reply.status == 401
        assert "Wrong user name or password." in reply.text
        assert "__Host-tw_session" not in reply.cookies
    assert client.request("GET", "/").status == 303
    failures = console.audit("console.login_failed")
    assert {e.actor for e in failures} == {"console:alice", "console:mallory"}
    assert all("address=127.0.0.1" in e.detail for e in failures)


def test_logout_ends_the_session_on_the_server(console: Console) -> None:
    console.add_user("alice", "viewer", PASSWORD)
    client = console.client()
    client.login("alice", PASSWORD)
    stolen = dict(client.cookies)
    token = client.csrf()
    reply = client.request("POST", "/logout", form={"csrf_token": token})
    assert reply.status == 303 and reply.header("location") == "/login"
    assert "__Host-tw_session" not in client.cookies
    # The old cookie, replayed, no longer opens anything.
    replay = console.client()
    replay.cookies.update(stolen)
    assert replay.request("GET", "/").status == 303
    assert replay.request("GET", "/api/anything").status == 401
    logouts = console.audit("console.logout")
    assert [(e.actor, e.detail) for e in logouts] == [("console:alice", "address=127.0.0.1")]


def test_each_login_gets_a_new_session_id_and_ends_the_one_it_replaces(console: Console) -> None:
    console.add_user("alice", "viewer", PASSWORD)
    client = console.client()
    client.login("alice", PASSWORD)
    first = client.cookies["__Host-tw_session"]
    client.login("alice", PASSWORD)
    second = client.cookies["__Host-tw_session"]
    assert first != second
    old = console.client()
    old.cookies["__Host-tw_session"] = first
    assert old.request("GET", "/").status == 303
    assert client.request("GET", "/").status == 200


def test_unauthenticated_pages_redirect_to_login_and_api_calls_get_401(console: Console) -> None:
    client = console.client()
    page = client.request("GET", "/agents?range=24h")
    assert page.status == 303
    assert page.header("location") == "/login?next=%2Fagents%3Frange%3D24h"
    api = client.request("GET", "/api/alerts")
    assert api.status == 401 and api.json()["status"] == 401
    assert client.request("GET", "/static/console.css").status == 200
    forged = client.request("GET", "/", headers={"Cookie": "__Host-tw_session=made-up"})
    assert forged.status == 303
    change = client.request("POST", "/logout", form={"csrf_token": "x"})
    assert change.status == 401  # a change is never redirected, only refused


def test_after_login_only_same_site_next_paths_are_followed(console: Console) -> None:
    console.add_user("alice", "viewer", PASSWORD)
    for target, expected in (
        ("/alerts?rule=80255", "/alerts?rule=80255"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/login", "/"),
    ):
        client = console.client()
        page = client.request("GET", "/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        reply = client.request(
            "POST",
            "/login",
            form={
                "username": "alice",
                "password": PASSWORD,
                "csrf_token": token,
                "next": target,
            },
        )
        assert reply.status == 303, target
        assert reply.header("location") == expected, target


def test_failed_logins_are_throttled_per_user_and_per_address(console: Console) -> None:
    console.add_user("alice", "viewer", PASSWORD)
    console.add_user("bob", "viewer", PASSWORD)
    attacker = console.client("127.0.0.2")
    for _ in range(5):
        assert attacker.login("alice", "guessing-wrong-1").status == 401
    throttled = attacker.login("alice", PASSWORD)  # even the right password waits now
    assert throttled.status == 429
    retry_after = int(throttled.header("retry-after"))
    assert 0 < retry_after <= 300
    assert "Too many failed logins" in throttled.text
    # The same address is throttled for any user name...
    assert attacker.login("bob", PASSWORD).status == 429
    # ...and alice's name is throttled from any address.
    elsewhere = console.client("127.0.0.3")
    assert elsewhere.login("alice", PASSWORD).status == 429
    # bob from another address is not affected.
    assert elsewhere.login("bob", PASSWORD).status == 303
    assert len(console.audit("console.login_throttled")) == 3
    # Hammering on does not flood the audit log: once per window for the same address and name.
    for _ in range(3):
        assert attacker.login("alice", PASSWORD).status == 429
    assert len(console.audit("console.login_throttled")) == 3
