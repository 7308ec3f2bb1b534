import factory

from accounts.models import Organization, OrganizationMembership, User
from accounts.services import create_personal_api_key, create_project_with_team


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Sequence(lambda n: f"User{n}")
    password = factory.PostGenerationMethodCall("set_password", "password123")


def make_team(organization=None, name="Default project"):
    return create_project_with_team(organization or OrganizationFactory(), name=name)


def make_member(team, level=OrganizationMembership.Level.MEMBER, **user_fields):
    user = UserFactory(**user_fields)
    OrganizationMembership.objects.create(organization=team.organization, user=user, level=level)
    user.current_organization = team.organization
    user.current_team = team
    user.save()
    return user


def make_key(user, scopes=("*",), **kwargs):
    """Returns the raw key value."""
    _, raw = create_personal_api_key(user, label="test", scopes=list(scopes) if scopes is not None else None, **kwargs)
    return raw
