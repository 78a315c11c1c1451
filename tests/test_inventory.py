"""The fleet inventory file and `nvrmon inventory import|export`: round trips, all-or-nothing checks, idempotence."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nvrmon import fleetfile
from nvrmon.inventory import InventoryError
from nvrmon.protocol import CameraInfo, NvrInfo
from nvrmon.store.fleet import Store
from tests.conftest import run_cli

FLEET_YAML = """\
sites:
  - name: Lisbon HQ
    region: eu-west
  - name: Porto Depot
    region: eu-west
nvrs:
  - hostname: nvr-lis-1
    name: Lobby recorder
    site: Lisbon HQ
    tags: [lobby, floor-1]
    expected_cameras: 4
    cameras:
      - id: cam-1
        name: Lobby entrance
        tags: [entrance]
      - id: cam-2
        name: Reception
  - hostname: nvr-opo-1
    region: eu-west
    site: Porto Depot
    expected_cameras: 2
"""

FLEET_CSV = """\
hostname,name,region,site,tags,expected_cameras,camera_id,camera_name,camera_tags
,,us-east,Boston Yard,,,,,
nvr-bos-1,Yard recorder,,Boston Yard,outdoor,3,,,
nvr-bos-1,,,,,,gate-1,Gate 1,perimeter gate
nvr-bos-2,,us-east,Boston Yard,,,,,
"""


def seq_of(db: Path | str) -> int:
    async def read() -> int:
        store = await Store.open(db)
        try:
            return await store.current_seq()
        finally:
            await store.close()

    return asyncio.run(read())


def discovered(db: Path) -> None:
    """An NVR that connected without being declared (as an agent's hello registers it)."""

    async def register() -> None:
        store = await Store.open(db)
        try:
            async with store.transaction(time.time()) as tx:
                reg = await tx.register_nvr(NvrInfo("nvr-found", "Found recorder", "us-west", "Reno", "NV-1"))
                await tx.replace_cameras(reg.nvr_id, [CameraInfo("c1", "Dock", "", "online")])
        finally:
            await store.close()

    asyncio.run(register())


@pytest.mark.parametrize(("name", "content"), [("fleet.yaml", FLEET_YAML), ("fleet.csv", FLEET_CSV)])
def test_inventory_export_imports_back_to_the_same_fleet(tmp_path: Path, name: str, content: str) -> None:
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    source = tmp_path / name
    source.write_text(content)
    discovered(first)
    imported = run_cli(first, "inventory", "import", str(source))
    assert imported.returncode == 0, imported.stderr
    exported = tmp_path / f"export{source.suffix}"
    assert run_cli(first, "inventory", "export", str(exported)).returncode == 0
    again = run_cli(second, "inventory", "import", str(exported))
    assert again.returncode == 0, again.stderr
    assert run_cli(second, "inventory", "export", "--format", source.suffix[1:]).stdout == exported.read_text()
    text = exported.read_text()
    assert "nvr-found" in text and "Dock" in text  # discovered devices are exported with the declared ones
    # The file says what it declared: the sites' regions reached their NVRs, tags and counts are kept.
    declaration = fleetfile.parse(text, fleetfile.format_of(exported.name))
    by_host = {n.hostname: n for n in declaration.nvrs}
    if name.endswith(".yaml"):
        lis = by_host["nvr-lis-1"]
        assert (lis.region, lis.tags, lis.expected_cameras) == ("eu-west", ("floor-1", "lobby"), 4)
        assert [(c.id, c.name, c.tags) for c in lis.cameras] == [
            ("cam-1", "Lobby entrance", ("entrance",)), ("cam-2", "Reception", None)
        ]  # fmt: skip
    else:
        bos = by_host["nvr-bos-1"]
        assert (bos.region, bos.tags, bos.expected_cameras) == ("us-east", ("outdoor",), 3)
        assert [(c.id, c.tags) for c in bos.cameras] == [("gate-1", ("gate", "perimeter"))]


def test_inventory_import_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    db, source = tmp_path / "fleet.db", tmp_path / "fleet.yaml"
    source.write_text(FLEET_YAML)
    first = run_cli(db, "inventory", "import", str(source))
    assert first.returncode == 0 and "NVR nvr-lis-1: declared (missing until its agent connects)" in first.stdout
    seq = seq_of(db)
    second = run_cli(db, "inventory", "import", str(source))
    assert second.returncode == 0 and "nothing to change" in second.stdout
    assert seq_of(db) == seq  # no transaction took a seq: open pages get nothing
    with sqlite3.connect(db) as conn:  # audited once, as the command line's user, with what it changed
        entries = conn.execute("SELECT actor, action, target, detail FROM audit_log").fetchall()
    assert len(entries) == 1 and entries[0][0].startswith("cli")
    assert entries[0][1:3] == ("inventory.import", "2 NVRs, 2 sites") and "NVR nvr-lis-1: declared" in entries[0][3]


def test_inventory_dry_run_shows_the_changes_and_makes_none(tmp_path: Path, database_url: str) -> None:
    db, source = database_url, tmp_path / "fleet.yaml"
    source.write_text(FLEET_YAML)
    seq = seq_of(db)  # opens (creates) the database
    preview = run_cli(db, "inventory", "import", "--dry-run", str(source))
    assert preview.returncode == 0 and "would change 6 thing(s)" in preview.stdout
    assert "camera cam-1 on nvr-lis-1: declared as 'Lobby entrance'" in preview.stdout
    assert seq_of(db) == seq and "nvr-lis-1" not in run_cli(db, "nvr", "list").stdout


def test_inventory_validation_error_names_line_and_field_and_changes_nothing(tmp_path: Path, database_url: str) -> None:
    db, good, bad = database_url, tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(FLEET_CSV)
    assert run_cli(db, "inventory", "import", str(good)).returncode == 0
    before = run_cli(db, "inventory", "export", "--format", "csv").stdout
    seq = seq_of(db)
    # Line 3 renames a declared NVR (fine on its own); line 5 has a count that is not a number; line 6 a bad tag.
    bad.write_text(
        FLEET_CSV.replace("nvr-bos-1,Yard recorder", "nvr-bos-1,Renamed recorder").replace(
            "nvr-bos-2,,us-east,Boston Yard,,,", "nvr-bos-2,,us-east,Boston Yard,,many,"
        )
        + "nvr-bos-3,,,,bad tag!,,,,\n"
    )
    refused = run_cli(db, "inventory", "import", str(bad))
    assert refused.returncode == 1
    assert "nothing imported; 2 problem(s)" in refused.stderr
    assert "line 5: field 'expected_cameras' must be a whole number" in refused.stderr
    assert "line 6: field 'tags' has tag 'bad!'" in refused.stderr or "line 6: field 'tags'" in refused.stderr
    assert seq_of(db) == seq and run_cli(db, "inventory", "export", "--format", "csv").stdout == before
    assert "Renamed" not in before


def test_inventory_yaml_errors_name_their_line() -> None:
    with pytest.raises(InventoryError) as caught:
        fleetfile.parse(FLEET_YAML.replace("expected_cameras: 2", "expected_cameras: -2"), "yaml")
    assert caught.value.problems == ("line 21: field 'expected_cameras' must be a whole number from 0 to 100000",)
    with pytest.raises(InventoryError) as caught:
        fleetfile.parse(FLEET_YAML.replace("        name: Reception", "        nmae: Reception"), "yaml")
    assert caught.value.problems == ("line 17: unknown field 'nmae'",)
    with pytest.raises(InventoryError) as caught:
        fleetfile.parse(FLEET_YAML + "  - hostname: nvr-lis-1\n", "yaml")
    assert caught.value.problems == ("line 22: field 'hostname': 'nvr-lis-1' is declared already on line 7",)
    with pytest.raises(InventoryError) as caught:
        fleetfile.parse("nvrs: [\n", "yaml")
    assert caught.value.problems[0].startswith("line 2: not valid YAML")


def test_inventory_refuses_more_cameras_than_an_nvr_may_have(tmp_path: Path) -> None:
    db, source = tmp_path / "fleet.db", tmp_path / "fleet.yaml"
    cameras = "".join(f"      - id: c{i}\n" for i in range(3))
    source.write_text(f"nvrs:\n  - hostname: nvr-big\n    cameras:\n{cameras}")
    refused = subprocess.run(
        [sys.executable, "-m", "nvrmon.cli", "inventory", "import", str(source), "--db", str(db)],
        env={**os.environ, "NVRMON_MAX_CAMERAS_PER_NVR": "2"}, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "line 2: field 'cameras': nvr-big would have 3 cameras; the limit is 2" in (
        refused.stderr
    )
