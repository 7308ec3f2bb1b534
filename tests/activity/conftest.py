from tests.insights.conftest import fast_password_hashing  # noqa: F401  (autouse)
