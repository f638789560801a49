"""Neo4j's privilege resolution, case by case from its documented semantics: DENY beats
GRANT, union over roles, MATCH = TRAVERSE + READ, multi-label nodes, unlabelled nodes,
relationships to hidden nodes, writes per label, and the built-in roles."""

from __future__ import annotations

import pytest

from cluster.security.privileges import (
    NODES,
    RELATIONSHIPS,
    Action,
    deny,
    grant,
    resolve,
)


def _user(*privileges, roles=("custom",)):
    return resolve(roles, {"custom": privileges})


def test_public_alone_sees_nothing_but_may_access_the_default_database() -> None:
    user = resolve([])
    assert user.can(Action.ACCESS)
    assert not resolve([], graph="other").can(Action.ACCESS)
    assert not user.can_traverse_node({"Person"})
    assert not user.can_traverse_node(set())
    assert not user.can_create_node({"Person"})


@pytest.mark.parametrize(
    ("role", "reads", "writes", "new_names", "indexes", "users"),
    [
        ("reader", True, False, False, False, False),
        ("editor", True, True, False, False, False),
        ("publisher", True, True, True, False, False),
        ("architect", True, True, True, True, False),
        ("admin", True, True, True, True, True),
    ],
)
def test_built_in_role_capabilities(
    role: str, reads: bool, writes: bool, new_names: bool, indexes: bool, users: bool
) -> None:
    user = resolve([role], graph="anything")
    assert user.can(Action.ACCESS)
    assert user.can_traverse_node({"A", "B"}) is reads
    assert user.can_traverse_node(set()) is reads
    assert user.can_read_node_property({"A"}, "secret") is reads
    assert user.can_traverse_relationship("KNOWS", {"A"}, set()) is reads
    assert user.can(Action.SHOW_INDEX)
    assert user.can_create_node({"A"}, {"p"}) is writes
    assert user.can_delete_node({"A"}) is writes
    assert user.can_set_label("B") is writes
    assert user.can_create_relationship("KNOWS", {"since"}) is writes
    assert user.can(Action.CREATE_NEW_LABEL) is new_names
    assert user.can(Action.CREATE_NEW_PROPERTY_NAME) is new_names
    assert user.can(Action.INDEX_MANAGEMENT) is indexes
    assert user.can(Action.CONSTRAINT_MANAGEMENT) is indexes
    assert user.can(Action.USER_MANAGEMENT) is users
    assert user.can(Action.IMPERSONATE, "bob") is users


def test_a_node_with_one_denied_label_is_hidden() -> None:
    # GRANT MATCH {*} ON GRAPH * NODES * ; DENY TRAVERSE ON GRAPH * NODES Secret
    user = _user(grant(Action.MATCH, NODES), deny(Action.TRAVERSE, NODES, {"Secret"}))
    assert user.can_traverse_node({"Person"})
    assert not user.can_traverse_node({"Person", "Secret"})
    assert not user.can_read_node_property({"Person", "Secret"}, "name")
    assert user.can_traverse_node(set())


def test_unlabelled_nodes_need_a_grant_on_all_nodes() -> None:
    user = _user(grant(Action.MATCH, NODES, {"Person"}))
    assert user.can_traverse_node({"Person", "Other"})
    assert not user.can_traverse_node({"Other"})
    assert not user.can_traverse_node(set())


def test_deny_read_on_a_property_leaves_the_node_visible() -> None:
    # GRANT MATCH {*} ... NODES * ; DENY READ {salary} ... NODES Employee
    user = _user(grant(Action.MATCH, NODES), deny(Action.READ, NODES, {"Employee"}, {"salary"}))
    assert user.can_traverse_node({"Employee"})
    assert user.can_read_node_property({"Employee"}, "name")
    assert not user.can_read_node_property({"Employee", "Person"}, "salary")
    assert user.can_read_node_property({"Person"}, "salary")


def test_deny_match_on_properties_denies_reads_only_and_on_all_also_traversal() -> None:
    some = _user(grant(Action.MATCH, NODES), deny(Action.MATCH, NODES, {"Account"}, {"balance"}))
    assert some.can_traverse_node({"Account"})
    assert not some.can_read_node_property({"Account"}, "balance")
    assert some.can_read_node_property({"Account"}, "number")
    every = _user(grant(Action.MATCH, NODES), deny(Action.MATCH, NODES, {"Account"}))
    assert not every.can_traverse_node({"Account"})
    assert every.can_traverse_node({"Customer"})


def test_traverse_without_read_shows_the_node_but_no_property() -> None:
    user = _user(
        grant(Action.TRAVERSE, NODES, {"Person"}), grant(Action.READ, NODES, None, {"name"})
    )
    assert user.can_traverse_node({"Person"})
    assert user.can_read_node_property({"Person"}, "name")
    assert not user.can_read_node_property({"Person"}, "email")
    assert not user.can_read_node_property({"Company"}, "name")  # not traversable


def test_privileges_are_the_union_over_roles_and_a_deny_in_any_role_wins() -> None:
    roles = {
        "names": [grant(Action.MATCH, NODES, None, {"name"})],
        "ages": [grant(Action.READ, NODES, None, {"age"})],
        "no_secrets": [deny(Action.READ, NODES, {"Secret"}, {"age"})],
    }
    both = resolve(["names", "ages"], roles)
    assert both.can_read_node_property({"P"}, "name") and both.can_read_node_property({"P"}, "age")
    assert not resolve(["names"], roles).can_read_node_property({"P"}, "age")
    denied = resolve(["names", "ages", "no_secrets", "admin"], roles)
    assert denied.can_read_node_property({"P"}, "age")
    assert not denied.can_read_node_property({"P", "Secret"}, "age")
    assert denied.can_read_node_property({"P", "Secret"}, "name")


def test_a_relationship_to_a_hidden_node_is_hidden() -> None:
    user = _user(
        grant(Action.MATCH, NODES),
        grant(Action.MATCH, RELATIONSHIPS, {"KNOWS"}),
        deny(Action.TRAVERSE, NODES, {"Secret"}),
    )
    assert user.can_traverse_relationship("KNOWS", {"Person"}, {"Person"})
    assert not user.can_traverse_relationship("KNOWS", {"Person"}, {"Secret"})
    assert not user.can_traverse_relationship("LIKES", {"Person"}, {"Person"})
    assert user.can_read_relationship_property("KNOWS", "since")


def test_elements_covers_nodes_and_relationships() -> None:
    user = _user(grant(Action.MATCH), deny(Action.READ, properties={"ssn"}))
    assert user.can_traverse_node({"A"}) and user.can_traverse_relationship("R", {"A"}, {"B"})
    assert not user.can_read_node_property({"A"}, "ssn")
    assert not user.can_read_relationship_property("R", "ssn")


def test_write_with_a_denied_delete() -> None:
    # GRANT WRITE ON GRAPH * ; DENY DELETE ON GRAPH * NODES Person
    user = resolve(
        ["reader", "custom"],
        {"custom": [grant(Action.WRITE), deny(Action.DELETE, NODES, {"Person"})]},
    )
    assert user.can_create_node({"Person"})
    assert not user.can_delete_node({"Person"})
    assert not user.can_delete_node({"Person", "Other"})
    assert user.can_delete_node({"Other"})
    assert user.can_delete_relationship("KNOWS")


def test_create_needs_every_label_and_set_property_for_properties() -> None:
    user = _user(
        grant(Action.CREATE, NODES, {"A", "B"}), grant(Action.SET_PROPERTY, NODES, {"A"}, {"x"})
    )
    assert user.can_create_node({"A"})
    assert user.can_create_node({"A", "B"})
    assert not user.can_create_node({"A", "C"})
    assert not user.can_create_node(set())
    assert user.can_create_node({"A"}, {"x"})
    assert not user.can_create_node({"A"}, {"y"})
    assert not user.can_create_node({"B"}, {"x"})


def test_set_and_remove_label() -> None:
    user = _user(grant(Action.SET_LABEL, NODES, {"Active"}), grant(Action.REMOVE_LABEL, NODES))
    assert user.can_set_label("Active") and not user.can_set_label("Admin")
    assert user.can_remove_label("Anything")
    assert not _user(grant(Action.WRITE), deny(Action.SET_LABEL, NODES, {"Admin"})).can_set_label(
        "Admin"
    )


def test_merge_is_match_create_and_set_property_and_cannot_be_denied() -> None:
    user = _user(grant(Action.MERGE, NODES, {"Person"}, {"name"}))
    assert user.can_merge_node({"Person"}, {"name"})
    assert not user.can_merge_node({"Person"}, {"age"})
    assert not user.can_merge_node({"Company"}, {"name"})
    assert not user.can_delete_node({"Person"})
    with pytest.raises(ValueError, match="MERGE"):
        deny(Action.MERGE, NODES)


def test_name_management_and_database_scoping() -> None:
    user = resolve(
        ["custom"],
        {
            "custom": [
                grant(Action.ACCESS, graph="db1"),
                grant(Action.CREATE_NEW_LABEL, graph="db1"),
                grant(Action.NAME_MANAGEMENT, graph="db2"),
                deny(Action.CREATE_NEW_TYPE, graph="db2"),
            ]
        },
        graph="db1",
    )
    assert user.can(Action.ACCESS) and user.can(Action.CREATE_NEW_LABEL)
    assert not user.can(Action.CREATE_NEW_TYPE)
    other = resolve(["custom"], {"custom": user._privileges}, graph="db2")
    assert not other.can(Action.ACCESS)
    db2 = resolve(
        ["custom"],
        {
            "custom": [
                grant(Action.NAME_MANAGEMENT, graph="db2"),
                deny(Action.CREATE_NEW_TYPE, graph="db2"),
            ]
        },
        graph="db2",
    )
    assert db2.can(Action.CREATE_NEW_LABEL) and db2.can(Action.CREATE_NEW_PROPERTY_NAME)
    assert not db2.can(Action.CREATE_NEW_TYPE)


def test_impersonate_names_users_and_admin_can_be_denied() -> None:
    user = resolve(["admin", "custom"], {"custom": [deny(Action.IMPERSONATE, names={"root"})]})
    assert user.can(Action.IMPERSONATE, "bob")
    assert not user.can(Action.IMPERSONATE, "root")
    limited = _user(grant(Action.IMPERSONATE, names={"bob"}))
    assert limited.can(Action.IMPERSONATE, "bob") and not limited.can(Action.IMPERSONATE, "eve")
    with pytest.raises(ValueError):
        limited.can(Action.TRAVERSE)


# Property-based rules (FOR (n:L) WHERE n.p <op> value).


def test_property_based_grant_applies_only_where_the_condition_is_true() -> None:
    from cluster.security.privileges import Condition

    user = _user(
        grant(Action.TRAVERSE, NODES, ["Email"], condition=Condition("classification", "IS NULL"))
    )
    assert user.can_traverse_node({"Email"}, {"subject": "hi"})
    assert not user.can_traverse_node({"Email"}, {"classification": "secret"})
    assert not user.can_traverse_node({"Other"}, {})


def test_property_based_deny_does_not_apply_when_its_condition_is_null() -> None:
    from cluster.security.privileges import Condition

    user = _user(
        grant(Action.MATCH, NODES),
        deny(Action.TRAVERSE, NODES, None, condition=Condition("level", ">", 3)),
    )
    assert not user.can_traverse_node({"A"}, {"level": 5})
    assert user.can_traverse_node({"A"}, {"level": 2})
    assert user.can_traverse_node({"A"}, {})  # null: the deny does not apply
    assert user.can_traverse_node({"A"}, {"level": "high"})  # other type: null too
    assert not user.can_read_node_property({"A"}, "name", {"level": 4})
    assert user.can_read_node_property({"A"}, "name", {"level": 1})


@pytest.mark.parametrize(
    ("operator", "value", "actual", "expected"),
    [
        ("=", 1, 1, True),
        ("=", 1, 1.0, True),
        ("=", 1, "1", False),
        ("=", 1, None, None),
        ("<>", 1, 2, True),
        ("<", 5, 3, True),
        ("<", 5, "a", None),
        (">=", "m", "z", True),
        ("IS NULL", None, None, True),
        ("IS NOT NULL", None, 0, True),
        ("IN", [1, 2], 2, True),
        ("IN", [1, 2], 3, False),
        ("NOT IN", [1, 2], 3, True),
        ("IN", [1, 2], None, None),
    ],
)
def test_condition_evaluates_with_cypher_ternary_logic(operator, value, actual, expected) -> None:
    from cluster.security.privileges import Condition

    properties = {} if actual is None else {"p": actual}
    assert Condition("p", operator, value).evaluate(properties) is expected


def test_property_based_rules_only_narrow_reads_on_nodes() -> None:
    from cluster.security.privileges import Condition

    with pytest.raises(ValueError):
        grant(Action.CREATE, NODES, condition=Condition("p", "=", 1))
    with pytest.raises(ValueError):
        grant(Action.TRAVERSE, RELATIONSHIPS, condition=Condition("p", "=", 1))
    with pytest.raises(ValueError):
        Condition("p", "LIKE", 1)


def test_grant_everything_takes_the_unconditional_fast_path() -> None:
    user = resolve(["admin"])
    assert user.traverses_every_node and user.reads_every_node_property
    assert user.traverses_every_relationship and user.reads_every_relationship_property
    restricted = _user(grant(Action.MATCH, NODES), deny(Action.READ, NODES, ["A"], ["secret"]))
    assert restricted.traverses_every_node and not restricted.reads_every_node_property
    assert not restricted.can_read_node_property({"A", "B"}, "secret")
    assert restricted.can_read_node_property({"B"}, "secret")


def test_a_stored_property_rule_becomes_a_condition() -> None:
    from cluster.security.privileges import Condition, Privilege
    from cluster.security.system import PropertyRule

    rule = PropertyRule("n", "Email", "classification", "=", "secret")
    privilege = Privilege.of(False, Action.TRAVERSE, NODES, ["Email"], condition=rule)  # type: ignore[arg-type]
    assert privilege.condition == Condition("classification", "=", "secret")
    user = _user(grant(Action.MATCH, NODES), privilege)
    assert not user.can_traverse_node({"Email"}, {"classification": "secret"})
    assert user.can_traverse_node({"Email"}, {})


def test_only_a_set_that_denies_nothing_and_grants_everything_runs_unfiltered() -> None:
    assert resolve(["admin"]).unrestricted and resolve(["architect"]).unrestricted
    assert not resolve(["publisher"]).unrestricted  # no index or constraint management
    assert not resolve(["reader"]).unrestricted and not resolve([]).unrestricted
    everything = [grant(Action.ALL_GRAPH), grant(Action.ALL_DATABASE)]
    assert resolve(["all"], {"all": everything}).unrestricted
    one_deny = [*everything, deny(Action.READ, NODES, ["Person"], ["salary"])]
    assert not resolve(["all"], {"all": one_deny}).unrestricted
    some_properties = [grant(Action.ALL_DATABASE), grant(Action.MATCH, NODES, None, ["name"])]
    assert not resolve(["some"], {"some": some_properties}).unrestricted
