"""Notification ids have the ULID form of every public id, and ids stored in read or dismissal events before that
still find their notification."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from adapters.settings import Settings
from domain.ids import parse

pytestmark = [pytest.mark.postgres]


def test_a_notification_id_is_the_ulid_form_of_its_md5_and_old_ids_map_to_it(settings: Settings) -> None:
    key = "0194a3c0-0000-7000-8000-000000000001usr_01KV1PX3NR96XJRGD48NNHH431"
    hexed = hashlib.md5(key.encode()).hexdigest()
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.database_schema}") as conn:
        row = conn.execute("SELECT notification_ulid(md5(%s)), notification_id_now(%s), notification_id_now(%s)",
                           (key, "ntf_" + hexed, "ntf_SOMETHINGELSE")).fetchone()
    assert row is not None
    made, mapped, other = row
    first = "01234567"[int(hexed[0], 16) % 8]
    assert made == "ntf_" + first + hexed[1:26].upper() and parse("ntf", made) is not None
    assert mapped == made and other == "ntf_SOMETHINGELSE"
