from controlplane.domain import Role


def test_roles_are_ordered() -> None:
    assert Role.admin.allows(Role.operator)
    assert Role.operator.allows(Role.viewer)
    assert not Role.viewer.allows(Role.operator)
    assert not Role.operator.allows(Role.admin)
