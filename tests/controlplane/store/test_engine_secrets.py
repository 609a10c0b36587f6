"""Engine admin tokens at rest: encrypted under the server's key, bound to the engine's URL,
never in the audit log; credentials in engine URLs never leave the store unredacted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine
from sqlalchemy import text
from sqlalchemy.orm import Session

from controlplane.domain import SecretKeyError
from controlplane.domain import ValidationError
from controlplane.schemas.engines import EngineCreate
from controlplane.schemas.engines import EngineRead
from controlplane.schemas.engines import EngineUpdate
from controlplane.store import audit
from controlplane.store import engines
from controlplane.store.database import secret_box
from controlplane.store.secrets import SecretBox
from controlplane.store.secrets import rotate_keys


def _add(session: Session, **values: Any) -> None:
    data = {"name": "llm-a", "url": "http://127.0.0.1:8000", "admin_token": "tok-plain-1"}
    data.update(values)
    with session.begin():
        engines.add_engine(session, data=EngineCreate.model_validate(data), actor="t")


def _raw(db_engine: Engine) -> str:
    with db_engine.connect() as conn:
        return str(conn.execute(text("SELECT admin_token_enc FROM engines")).scalar_one())


def test_the_token_is_stored_encrypted_and_decrypts_for_the_adapter(
    session: Session, db_engine: Engine
) -> None:
    _add(session)
    raw = _raw(db_engine)
    assert "tok-plain-1" not in raw
    assert Fernet(secret_box(db_engine).keys()[0]).decrypt(raw.encode()) == b"tok-plain-1"
    with session.begin():
        assert engines.engine_target(engines.get_engine(session, "llm-a")).admin_token == (
            "tok-plain-1"
        )


def test_a_new_url_without_the_token_is_refused_and_changes_nothing(session: Session) -> None:
    _add(session)
    with pytest.raises(ValidationError, match="bound to the engine's URL") as err, session.begin():
        data = EngineUpdate.model_validate({"url": "http://10.9.9.9:81"})
        engines.update_engine(session, ref="llm-a", data=data, actor="t")
    assert err.value.field == "admin_token"
    with session.begin():
        row = engines.get_engine(session, "llm-a")
        assert (row.url, engines.admin_token(session, row)) == (
            "http://127.0.0.1:8000",
            "tok-plain-1",
        )


@pytest.mark.parametrize(("token", "expected"), [("tok-2", "tok-2"), (None, None)])
def test_a_new_url_with_the_token_restated_or_dropped_is_accepted(
    session: Session, token: str | None, expected: str | None
) -> None:
    _add(session)
    with session.begin():
        data = EngineUpdate.model_validate({"url": "http://10.9.9.9:81", "admin_token": token})
        row = engines.update_engine(session, ref="llm-a", data=data, actor="t")
        assert engines.engine_target(row).admin_token == expected


def test_the_same_url_or_an_engine_without_token_needs_no_token(session: Session) -> None:
    _add(session)
    _add(session, name="llm-b", admin_token=None)
    with session.begin():
        same = EngineUpdate.model_validate({"url": "http://127.0.0.1:8000/"})
        engines.update_engine(session, ref="llm-a", data=same, actor="t")
        moved = EngineUpdate.model_validate({"url": "http://10.9.9.9:81"})
        assert engines.update_engine(session, ref="llm-b", data=moved, actor="t").url == (
            "http://10.9.9.9:81"
        )


def test_url_credentials_are_redacted_in_reads_and_audit(session: Session) -> None:
    _add(session, url="http://alice:pw-in-url@127.0.0.1:8000", metrics_url="http://m:pw2@h:1/x")
    with session.begin():
        new = EngineUpdate.model_validate(
            {"url": "http://bob:pw-new@127.0.0.1:8001", "admin_token": "t2"}
        )
        row = engines.update_engine(session, ref="llm-a", data=new, actor="t")
        assert engines.engine_target(row).url == "http://bob:pw-new@127.0.0.1:8001"  # in use
        shown = EngineRead.from_row(row).model_dump_json()
        logged = json.dumps([e.detail for e in audit.list_events(session)])
    for secret in ("pw-in-url", "pw-new", "pw2", "tok-plain-1", "t2"):
        assert secret not in shown and secret not in logged
    assert "http://***@127.0.0.1:8001" in shown and "http://***@127.0.0.1:8000" in logged


def test_rotation_reencrypts_every_token_and_retires_the_old_key(
    session: Session, db_engine: Engine
) -> None:
    _add(session)
    _add(session, name="llm-b", admin_token="tok-plain-2")
    box = secret_box(db_engine)
    old_key = box.keys()[0]

    def reencrypt(fernet: Any) -> int:
        with session.begin():
            return engines.reencrypt_tokens(session, lambda c: fernet.rotate(c.encode()).decode())

    assert rotate_keys(box, reencrypt) == 2
    (new_key,) = box.keys()
    assert new_key != old_key
    assert box.key_file.read_text().split() == [new_key]
    with db_engine.connect() as conn:
        raw = [r[0] for r in conn.execute(text("SELECT admin_token_enc FROM engines"))]
    assert sorted(Fernet(new_key).decrypt(r.encode()).decode() for r in raw) == [
        "tok-plain-1",
        "tok-plain-2",
    ]
    with pytest.raises(SecretKeyError, match="does not decrypt"):
        SecretBox(env_keys=old_key, key_file=Path("/nonexistent")).decrypt(raw[0])


def test_a_missing_key_is_a_clear_error_not_a_new_key(tmp_path: Path) -> None:
    writer = SecretBox(env_keys=None, key_file=tmp_path / "k")
    sealed = writer.encrypt("x")
    (tmp_path / "k").unlink()
    with pytest.raises(SecretKeyError, match="does not exist"):
        SecretBox(env_keys=None, key_file=tmp_path / "k").decrypt(sealed)
    assert not (tmp_path / "k").exists()
    with pytest.raises(SecretKeyError, match="not a Fernet key"):
        SecretBox(env_keys="nope", key_file=tmp_path / "k").encrypt("x")


def test_rotation_with_env_keys_reencrypts_under_the_first(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = [SecretBox(env_keys=old, key_file=tmp_path / "unused").encrypt("tok")]
    box = SecretBox(env_keys=f"{new},{old}", key_file=tmp_path / "unused")

    def reencrypt(fernet: Any) -> int:
        sealed[:] = [fernet.rotate(s.encode()).decode() for s in sealed]
        return len(sealed)

    assert rotate_keys(box, reencrypt) == 1
    assert SecretBox(env_keys=new, key_file=tmp_path / "unused").decrypt(sealed[0]) == "tok"
    assert not (tmp_path / "unused").exists()


def test_a_running_process_follows_a_rotation_of_the_key_file(tmp_path: Path) -> None:
    server = SecretBox(env_keys=None, key_file=tmp_path / "k")
    sealed = [server.encrypt("tok")]
    rotator = SecretBox(env_keys=None, key_file=tmp_path / "k")

    def reencrypt(fernet: Any) -> int:
        sealed[:] = [fernet.rotate(s.encode()).decode() for s in sealed]
        return 1

    rotate_keys(rotator, reencrypt)
    assert server.decrypt(sealed[0]) == "tok"  # re-read the file after the first failure
    (new_key,) = rotator.keys()
    assert Fernet(new_key).decrypt(server.encrypt("t2").encode()) == b"t2"
