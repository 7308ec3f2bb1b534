"""The engine seam: which database runs the SQL is known only to queries/sql/engine/ (event SQL)
and core/database.py (the other statements beyond the ORM)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ROOT / "queries"
ENGINE_PACKAGE = QUERIES / "sql" / "engine"
DATABASE_MODULE = ROOT / "core" / "database.py"
# Not the application: its tests, benchmark scripts (they set up data per database) and the venv.
NOT_APPLICATION = {"tests", "bench", ".venv", "var"}
# `vendor ==`, `vendor in (...)`, `== "postgresql"`, a `.pg` flag: a test of which database this is.
VENDOR_TEST = re.compile(r"""\bvendor\b\s*(==|!=|\bin\b|\bnot\b)|(==|!=)\s*["'](sqlite|postgresql|postgres)["']|\bself\.pg\b""")


def test_no_database_test_outside_the_engine_package():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted(ROOT.rglob("*.py"))
        if path.relative_to(ROOT).parts[0] not in NOT_APPLICATION
        and ENGINE_PACKAGE not in path.parents and path != DATABASE_MODULE
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if VENDOR_TEST.search(line)
    ]
    assert offenders == []


def test_the_grep_finds_what_it_must():
    for line in ('if engine.vendor == "sqlite":', "if connection.vendor != 'postgresql':", "if self.pg:",
                 'return x if kind == "postgresql" else y', "if self.engine.vendor in ('sqlite',):"):
        assert VENDOR_TEST.search(line), line
    assert not VENDOR_TEST.search("vendor = 'sqlite'")
