"""Memory: libraries only some hubs need (PostgreSQL's driver, Apprise) load on first use, not at start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import TOKEN


def test_lazy_imports_a_started_hub_on_sqlite_without_channels_loads_neither_asyncpg_nor_apprise(
    tmp_path: Path,
) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from starlette.testclient import TestClient\n"
        "from nvrmon.application import create_app\n"
        "from nvrmon.settings import Settings\n"
        f"settings = Settings(db_path=Path({str(tmp_path / 'lazy.db')!r}), agent_token={TOKEN!r})\n"
        "with TestClient(create_app(settings)) as client:\n"
        "    assert client.get('/healthz').status_code == 200\n"
        "    print(sorted({'asyncpg', 'apprise', 'requests'} & set(sys.modules)))\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip().splitlines()[-1] == "[]"


def test_lazy_imports_apprise_loads_for_a_channel_url_check() -> None:
    code = (
        "import sys\n"
        "from nvrmon.alerts.urls import check\n"
        "assert 'apprise' not in sys.modules\n"
        "check('json://127.0.0.1:9/hook')\n"
        "print('apprise' in sys.modules)\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert found.stdout.strip() == "True"


def test_lazy_imports_a_store_on_sqlite_never_loads_the_postgresql_driver(tmp_path: Path) -> None:
    # asyncpg is ~3 MB of every hub's memory; only a hub given a postgresql:// URL needs it.
    code = (
        "import asyncio, sqlite3, sys\n"
        "import nvrmon.application\n"
        "from nvrmon.store.database import Database\n"
        "from nvrmon.store.errors import conflicts, is_storage_failure\n"
        "async def main():\n"
        f"    db = await Database.open({str(tmp_path / 'lazy.db')!r})\n"
        "    async with db.transaction() as tx:\n"
        "        await tx.execute(\"INSERT INTO meta (key, value) VALUES ('k', 'v')\")\n"
        "    assert is_storage_failure(sqlite3.OperationalError('disk I/O error'))\n"
        "    assert conflicts() == (sqlite3.IntegrityError,)\n"
        "    await db.close()\n"
        "asyncio.run(main())\n"
        "print('asyncpg' in sys.modules)\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert found.stdout.strip() == "False"
