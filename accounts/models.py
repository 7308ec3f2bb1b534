"""Tenancy: organizations own projects; a project has one or more teams (environments)."""
import hashlib
import secrets
import string
import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

BASE62 = string.digits + string.ascii_letters


def base62_token(num_bytes: int) -> str:
    number = int.from_bytes(secrets.token_bytes(num_bytes), "big")
    chars = []
    while number:
        number, rem = divmod(number, 62)
        chars.append(BASE62[rem])
    return "".join(reversed(chars)) or "0"


def generate_team_api_token() -> str:
    return "phc_" + base62_token(32)


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    members_can_use_personal_api_keys = models.BooleanField(default=True)
    allow_publicly_shared_resources = models.BooleanField(default=True)
    # Whether insight data may be sent to the configured LLM provider (insights/llm.py).
    is_ai_data_processing_approved = models.BooleanField(default=False)

    def __str__(self):
        return self.name


class Project(models.Model):
    # The id equals the id of the project's first team (as in PostHog), so a client can use
    # a project id wherever a team id is expected.
    id = models.BigIntegerField(primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name


class Team(models.Model):
    """An environment of a project. Events, insights and keys are scoped to teams."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    # Nullable only so the first team can be created before its project (which takes its id).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="teams", null=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, default="Default project")
    timezone = models.CharField(max_length=240, default="UTC")
    api_token = models.CharField(max_length=200, unique=True, default=generate_team_api_token)
    test_account_filters = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **extra):
        if not email:
            raise ValueError("Users need an email address.")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


def generate_distinct_id() -> str:
    return base62_token(32)


class User(AbstractBaseUser, PermissionsMixin):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(unique=True)
    first_name = models.CharField(max_length=150, blank=True, default="")
    last_name = models.CharField(max_length=150, blank=True, default="")
    distinct_id = models.CharField(max_length=200, unique=True, default=generate_distinct_id)
    is_email_verified = models.BooleanField(null=True, default=None)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    current_organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    current_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    def __str__(self):
        return self.email


class OrganizationMembership(models.Model):
    class Level(models.IntegerChoices):
        MEMBER = 1, "member"
        ADMIN = 8, "administrator"
        OWNER = 15, "owner"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="organization_memberships")
    level = models.PositiveSmallIntegerField(choices=Level.choices, default=Level.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="unique_organization_membership")]


def hash_key_value(value: str) -> str:
    return "sha256$" + hashlib.sha256(value.encode()).hexdigest()


def mask_key_value(value: str) -> str:
    return f"{value[:4]}...{value[-4:]}" if len(value) > 8 else "********"


def generate_key_id() -> str:
    return base62_token(16)


class PersonalAPIKey(models.Model):
    id = models.CharField(primary_key=True, max_length=50, default=generate_key_id, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="personal_api_keys")
    label = models.CharField(max_length=40)
    # Only the hash is stored; the raw value is shown once, at creation.
    secure_value = models.CharField(max_length=300, unique=True)
    mask_value = models.CharField(max_length=11)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_rolled_at = models.DateTimeField(null=True, blank=True)
    # Empty scopes = legacy unrestricted key.
    scopes = models.JSONField(null=True, blank=True, default=None)
    # Empty = not restricted to particular teams / organizations (stored as [], as PostHog's UI sends).
    scoped_teams = models.JSONField(blank=True, default=list)
    scoped_organizations = models.JSONField(blank=True, default=list)

    @staticmethod
    def generate_value() -> str:
        return "phx_" + base62_token(35)
