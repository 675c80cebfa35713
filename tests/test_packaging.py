"""What an installed segledger needs from its package, not from the folder it runs in."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from tests.helpers import cli


def test_version_is_the_installed_distributions() -> None:
    run = cli("--version")
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"segledger {version('segledger')}\n"


def test_init_uses_its_own_migrations_in_a_folder_that_has_a_migrations_package(
        tmp_path: Path) -> None:
    """A user's project with a `migrations/` of its own (Alembic's default name) must not
    shadow segledger's: they ship inside the package and are found through it."""
    own = tmp_path / "migrations"
    (own / "versions").mkdir(parents=True)
    (own / "__init__.py").write_text("raise RuntimeError('the user folder was imported')\n")
    (own / "env.py").write_text("raise RuntimeError('the user env.py was run')\n")
    run = cli("--db", f"sqlite:///{tmp_path / 'ledger.db'}", "init", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "schema is at the newest revision\n"
    again = cli("--db", f"sqlite:///{tmp_path / 'ledger.db'}", "verify", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_bad_time_zone_is_exit_2_naming_the_option() -> None:
    run = cli("--tz", "Mars/Olympus", "--db", "sqlite:///:memory:", "verify")
    assert run.returncode == 2
    assert run.stderr == "error: --tz: Mars/Olympus is not a time zone name such as Asia/Tokyo or UTC\n"
    assert run.stdout == ""
