"""The navigation registry: ordering, permissions, unresolvable entries, the current page."""

from types import SimpleNamespace

import pytest

from dgov.web import navigation


@pytest.fixture
def scratch():
    """Register entries under throwaway keys and remove them afterwards."""
    keys = []

    def add(section, key, *args, **kwargs):
        keys.append((section, key))
        return navigation.register(section, key, *args, **kwargs)

    yield add
    for section, key in keys:
        navigation.unregister(section, key)


def _user(kind="person", perms=(), authenticated=True):
    return SimpleNamespace(kind=kind, is_authenticated=authenticated, has_perm=lambda perm: perm in perms)


def test_entries_sorted_by_order_then_key(scratch):
    scratch("portal", "zz-late", "Late", "web:divisions", order=500)
    scratch("portal", "aa-early", "Early", "web:divisions", order=-5)
    keys = [e.key for e in navigation.registered("portal")]
    assert keys[0] == "aa-early"
    assert keys[-1] == "zz-late"
    assert keys.index("home") < keys.index("divisions")


def test_register_replaces_same_key(scratch):
    scratch("portal", "tmp", "First", "web:home")
    scratch("portal", "tmp", "Second", "web:divisions")
    entries = [e for e in navigation.registered("portal") if e.key == "tmp"]
    assert len(entries) == 1 and entries[0].label == "Second"


def test_unknown_section_is_refused():
    with pytest.raises(ValueError):
        navigation.register("sidebar", "x", "X", "web:home")


def test_unresolvable_url_names_are_left_out(scratch):
    scratch("portal", "ghost", "Ghost", "nowhere:index")
    assert navigation.is_registered("portal", "ghost")
    assert "ghost" not in [link.key for link in navigation.links("portal", user=_user())]


def test_permission_string_and_callable(scratch):
    scratch("portal", "perm", "Perm", "web:divisions", permission="kernel.view_division")
    scratch("portal", "call", "Call", "web:divisions", permission=lambda u: u.kind == "admin")
    plain = [link.key for link in navigation.links("portal", user=_user())]
    assert "perm" not in plain and "call" not in plain
    allowed = [
        link.key
        for link in navigation.links("portal", user=_user(kind="admin", perms={"kernel.view_division"}))
    ]
    assert "perm" in allowed and "call" in allowed


def test_workbench_entries_only_for_officials_and_admins():
    assert navigation.links("workbench", user=_user("person")) == []
    assert navigation.links("workbench", user=_user("enterprise")) == []
    assert navigation.links("workbench", user=_user("official", authenticated=False)) == []
    # Apps add their own entries; those for every official and administrator use officials_only,
    # administration pages (e.g. API clients) a narrower permission.
    staff = [e.key for e in navigation.registered("workbench") if e.permission is navigation.officials_only]
    assert staff[0] == "home"
    official = [link.key for link in navigation.links("workbench", user=_user("official"))]
    admin = [link.key for link in navigation.links("workbench", user=_user("admin"))]
    assert official == staff
    assert set(staff) < set(admin) and "api_clients" in admin


def test_active_entry_is_the_longest_matching_url():
    links = {link.key: link for link in navigation.links("portal", user=_user(), current_path="/divisions/")}
    assert links["divisions"].active
    assert not links["home"].active  # "/" only matches the home page itself
    links = {link.key: link for link in navigation.links("portal", user=_user(), current_path="/")}
    assert links["home"].active and not links["divisions"].active
