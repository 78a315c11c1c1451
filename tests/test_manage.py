"""`nvrmon user|token|embed` in their own processes: passwords from stdin, secrets printed once, clear failures."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_user_add_reads_the_password_from_stdin_and_lists_without_it(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    added = run_cli(db, "user", "add", "ada", "--role", "admin", stdin="a long passphrase\n")
    assert added.returncode == 0 and "added admin ada" in added.stdout
    listed = run_cli(db, "user", "list")
    assert "ada" in listed.stdout and "admin" in listed.stdout and "passphrase" not in listed.stdout


def test_user_add_refuses_duplicates_weak_passwords_and_unknown_roles(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    run_cli(db, "user", "add", "ada", stdin="a long passphrase\n")
    duplicate = run_cli(db, "user", "add", "ADA", stdin="a long passphrase\n")
    assert duplicate.returncode == 1 and "exists already" in duplicate.stderr
    weak = run_cli(db, "user", "add", "bob", stdin="short\n")
    assert weak.returncode == 1 and "password" in weak.stderr
    assert run_cli(db, "user", "add", "eve", "--role", "root", stdin="a long passphrase\n").returncode == 2


def test_user_passwd_and_remove(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    run_cli(db, "user", "add", "ada", stdin="a long passphrase\n")
    assert run_cli(db, "user", "passwd", "ada", stdin="another passphrase\n").returncode == 0
    assert run_cli(db, "user", "passwd", "nobody", stdin="another passphrase\n").returncode == 1
    assert run_cli(db, "user", "remove", "ada").returncode == 0
    assert run_cli(db, "user", "remove", "ada").returncode == 1
    assert "ada" not in run_cli(db, "user", "list").stdout


def test_token_create_prints_the_token_once_on_stdout(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    created = run_cli(db, "token", "create", "nvr-1.example", "--expires", "90d")
    token = created.stdout.strip()
    assert created.returncode == 0 and token.startswith("nvrt_") and "shown once" in created.stderr
    listed = run_cli(db, "token", "list").stdout
    assert "nvr-1.example" in listed and token[:9] in listed and token not in listed
    assert run_cli(db, "token", "create", "bad host name").returncode == 1
    assert run_cli(db, "token", "revoke", "nvr-1.example").returncode == 0
    assert "revoked" in run_cli(db, "token", "list").stdout
    assert run_cli(db, "token", "revoke", "nvr-1.example").returncode == 1


def test_embed_create_validates_the_scope_and_origins(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    created = run_cli(db, "embed", "create", "nvrs", "--region", "North", "--origin", "https://portal.example")
    assert created.returncode == 0 and created.stdout.startswith("/embed/emb_")
    assert "nvrs in region North" in run_cli(db, "embed", "list").stdout
    for args in (["nvr"], ["kpis", "--nvr", "3"], ["kpis", "--region", "x"], ["kpis", "--origin", "https://*.e.com"],
                 ["kpis", "--origin", "javascript:alert(1)"], ["kpis", "--expires", "400d"]):  # fmt: skip
        refused = run_cli(db, "embed", "create", *args)
        assert refused.returncode == 1 and refused.stderr.startswith("nvrmon: "), args
    assert run_cli(db, "embed", "revoke", "1").returncode == 0
    assert run_cli(db, "embed", "revoke", "1").returncode == 1
