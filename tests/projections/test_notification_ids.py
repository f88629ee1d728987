"""Notification ids have the ULID form of every public id, and ids stored in read or dismissal events before that
still find their notification."""

from __future__ import annotations

import hashlib
import uuid

import psycopg
import pytest

from adapters.settings import Settings
from domain.ids import parse, render

pytestmark = [pytest.mark.postgres]


def test_a_notification_id_is_the_ulid_form_of_its_md5_and_old_ids_map_to_it(settings: Settings) -> None:
    key = "0194a3c0-0000-7000-8000-000000000001usr_01KV1PX3NR96XJRGD48NNHH431"
    digest = hashlib.md5(key.encode()).digest()
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.database_schema}") as conn:
        row = conn.execute("SELECT notification_ulid(decode(md5(%s), 'hex')), notification_id_now(%s),"
                           " notification_id_now(%s)", (key, "ntf_" + digest.hex(), "ntf_SOMETHINGELSE")).fetchone()
    assert row is not None
    made, mapped, other = row
    assert made == render("ntf", uuid.UUID(bytes=digest)) and parse("ntf", made) == uuid.UUID(bytes=digest)
    assert mapped == made and other == "ntf_SOMETHINGELSE"
