"""The committed stubs are exactly what proto/ generates (one generator, never hand-edited)."""

from __future__ import annotations

from trailwarden.common.wire import generate


def test_committed_stubs_match_proto() -> None:
    generated = generate.generate()
    assert {"link_pb2.py", "admin_pb2_grpc.py", "enrollment_pb2.py"} <= set(generated)
    drifted = generate.drift(generated)
    assert drifted == [], (
        f"stubs drifted from proto/: {drifted}; run python -m trailwarden.common.wire.generate"
    )


def test_drift_is_detected(monkeypatch, tmp_path) -> None:
    """The check can fail: a changed stub is reported."""
    generated = generate.generate()
    for name, text in generated.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "link_pb2.py").write_text(generated["link_pb2.py"] + "\n# edited by hand\n")
    monkeypatch.setattr(generate, "GENERATED_DIR", tmp_path)
    assert generate.drift(generated) == ["link_pb2.py"]
