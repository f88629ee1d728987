"""SCIM wire rules: filters, booleans as IdPs send them, PatchOp normalisation (Okta and Entra ID shapes)."""

from __future__ import annotations

import msgspec
import pytest

from api.scim import protocol
from api.scim.protocol import ScimError
from api.scim.schemas import PatchRequest

USERS = {"username": "userName"}


def ops(*operations: dict[str, object]) -> list[tuple[str, str | None, object]]:
    return protocol.operations(msgspec.convert({"schemas": [protocol.PATCH_SCHEMA], "Operations": list(operations)},
                                               PatchRequest))


def test_a_username_filter_is_case_insensitive_in_attribute_and_operator() -> None:
    assert protocol.parse_filter('userName eq "a@b.c"', USERS) == ("userName", "a@b.c")
    assert protocol.parse_filter('USERNAME EQ "a@b.c"', USERS) == ("userName", "a@b.c")
    assert protocol.parse_filter(None, USERS) is None


@pytest.mark.parametrize("text", ['userName co "a"', 'emails eq "a"', "userName eq a", 'userName eq "a" or 1'])
def test_other_filters_are_invalid_filter_400(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        protocol.parse_filter(text, USERS)

    assert (caught.value.status, caught.value.scim_type) == (400, "invalidFilter")


def test_okta_deactivation_without_a_path() -> None:
    assert protocol.user_active_change(ops({"op": "replace", "value": {"active": False}})) is False


def test_entra_deactivation_with_a_string_boolean_and_a_capitalised_op() -> None:
    assert protocol.user_active_change(ops({"op": "Replace", "path": "active", "value": "False"})) is False
    assert protocol.user_active_change(ops({"op": "Add", "path": "active", "value": "True"})) is True


def test_patches_that_do_not_touch_active_change_nothing() -> None:
    assert protocol.user_active_change(ops({"op": "replace", "path": "name.givenName", "value": "Ann"})) is None


def test_a_non_boolean_active_and_an_unknown_op_are_400() -> None:
    with pytest.raises(ScimError):
        protocol.user_active_change(ops({"op": "replace", "path": "active", "value": "maybe"}))
    with pytest.raises(ScimError):
        ops({"op": "move", "path": "active", "value": True})


def test_group_member_patches_add_remove_and_replace() -> None:
    added, removed, replaced = protocol.group_member_changes(ops(
        {"op": "add", "path": "members", "value": [{"value": "usr_a"}, {"value": "usr_b"}]},
        {"op": "remove", "path": 'members[value eq "usr_c"]'},
        {"op": "Remove", "path": "members", "value": [{"value": "usr_d"}]},
    ))

    assert (added, removed, replaced) == (["usr_a", "usr_b"], ["usr_c", "usr_d"], None)
    assert protocol.group_member_changes(ops({"op": "replace", "path": "members", "value": []}))[2] == []


def test_page_bounds_follow_the_rfc() -> None:
    assert protocol.page_bounds(None, None) == (1, protocol.MAX_COUNT)
    assert protocol.page_bounds(0, -5) == (1, 0)
    assert protocol.page_bounds(3, 10_000) == (3, protocol.MAX_COUNT)


def test_the_error_body_has_the_scim_schema_and_a_string_status() -> None:
    body = msgspec.to_builtins(protocol.error_body(ScimError(409, "taken", "uniqueness")))

    assert body == {"schemas": [protocol.ERROR_SCHEMA], "status": "409", "detail": "taken", "scimType": "uniqueness"}
