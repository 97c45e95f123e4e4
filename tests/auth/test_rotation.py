"""Key rotation (auth/rotation.py): every sealed value ends under the newest key and still opens
to what it held; runs are resumable, never overwrite a concurrent change and survive bad values.

Rotation re-seals every row of the sealed tables. In the shared session database that would put
other tests' rows under a key their apps do not hold, so these tests get a private database of the
backend under test, migrated by the real CLI, and empty the sealed tables before each test.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tortoise import Tortoise
from tortoise.models import Model

import auth.rotation as rotation
from auth.models import SEALED_COLUMNS, Grant, Person, StaffUser, Taxpayer, WeChatAccount
from auth.pii import Keyring
from auth.rotation import BatchReport, SealedRef, compare_and_swap, rotate_keys
from forms.models import Attachment, Draft, Submission, SubmissionEvent
from miniapp_api.database import tortoise_config
from tests.conftest import BACKEND, POSTGRES_URL, _pg_admin, run_cli

AES_V1 = ("v1", b"\x11" * 32)
AES_V2 = ("v2", b"\x22" * 32)
SM4_V1 = ("v1", b"\x33" * 16)
SM4_V2 = ("v2", b"\x44" * 16)
KEYS = {"aes-256-gcm": (AES_V1, AES_V2), "sm4-gcm": (SM4_V1, SM4_V2)}

# (table, database column, row id) -> plaintext
Cells = dict[tuple[str, str, int], str]

_unique = itertools.count(1)
_ALIASES = {model: dict(columns) for model, columns in SEALED_COLUMNS}


@contextmanager
def private_database(var_dir: Path) -> Iterator[str]:
    """A fresh database of the backend under test, migrated by ``suban migrate``."""
    name = ""
    if BACKEND == "postgres":
        name = f"suban_rotation_{uuid.uuid4().hex[:12]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = f"sqlite://{var_dir / 'rotation.sqlite3'}"
    try:
        done = run_cli("migrate", env={"SUBAN_DATABASE_URL": url, "SUBAN_VAR_DIR": str(var_dir)})
        assert done.returncode == 0, done.stderr
        yield url
    finally:
        if name:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def rotation_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_database(tmp_path_factory.mktemp("rotation")) as url:
        yield url


async def open_empty(database_url: str) -> None:
    """Connect to the private database and empty every sealed table."""
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    for model in (
        Attachment,
        SubmissionEvent,
        Submission,
        Draft,
        Grant,
        Taxpayer,
        WeChatAccount,
        StaffUser,
        Person,
    ):
        await model.all().delete()


@pytest.fixture
async def orm(rotation_db: str) -> AsyncIterator[str]:
    await open_empty(rotation_db)
    try:
        yield rotation_db
    finally:
        await Tortoise.close_connections()


def ring(cipher: str, *versions: str) -> Keyring:
    keys = dict(KEYS[cipher])
    return Keyring.build(cipher, [(v, keys[v]) for v in versions])


async def seal_into(obj: Model, keyring: Keyring, values: dict[str, str], cells: Cells) -> None:
    """Seal ``values`` (database column -> plaintext) into a saved row, as the service does."""
    table = obj._meta.db_table
    aliases = _ALIASES[type(obj)]
    for db_column, plain in values.items():
        sealed = keyring.seal(plain, table=table, column=aliases[db_column], row_id=obj.pk)
        setattr(obj, db_column, sealed)
        cells[(table, db_column, obj.pk)] = plain
    await obj.save()


async def seed(keyring: Keyring, people: int = 3) -> Cells:
    """Rows in every sealed table, every sealed column filled, sealed with ``keyring``."""
    cells: Cells = {}
    n = next(_unique)
    now = datetime.now(UTC)
    taxpayer = await Taxpayer.create(taxpayer_id=f"9144ROT{n:011d}", name="轮换测试", kind="x")
    for i in range(people):
        person = await Person.create(id_type="resident_id")
        await seal_into(
            person,
            keyring,
            {
                "name_sealed": f"测试{n}-{i}",
                "id_number_sealed": f"1101011990030{n % 100:02d}{i:02d}X",
                "phone_sealed": f"138{n % 10_000:04d}{i:04d}",
            },
            cells,
        )
        account = await WeChatAccount.create(openid=f"rot-{n}-{i}", person=person)
        await seal_into(account, keyring, {"phone_sealed": f"139{n % 10_000:04d}{i:04d}"}, cells)
        grant = await Grant.create(
            taxpayer=taxpayer,
            role="tax_clerk",
            grantee_id_index=f"idx-{n}-{i}",
            grantee_name_sealed="",
            granted_by_kind="person",
            granted_by_id=person.pk,
            valid_from=now,
            expires_at=now + timedelta(days=30),
        )
        await seal_into(grant, keyring, {"grantee_name_sealed": f"受权{n}-{i}"}, cells)
        staff = await StaffUser.create(
            username=f"rot-{n}-{i}", display_name="轮换", password_hash="-"
        )
        await seal_into(staff, keyring, {"totp_secret_sealed": f"JBSWY3DPEHPK3P{i:02d}"}, cells)
    # A person with nothing sealed yet: NULLs are neither rotated nor counted.
    await Person.create()
    return cells


async def stored() -> dict[tuple[str, str, int], str]:
    """Every non-NULL sealed value in the database, raw."""
    found: dict[tuple[str, str, int], str] = {}
    for model, columns in SEALED_COLUMNS:
        table = model._meta.db_table
        names = [db_column for db_column, _ in columns]
        for row in await model.all().values_list("id", *names):
            for db_column, value in zip(names, row[1:], strict=True):
                if value is not None:
                    found[(table, db_column, row[0])] = value
    return found


def opened(keyring: Keyring, values: dict[tuple[str, str, int], str]) -> Cells:
    aliases = {model._meta.db_table: dict(columns) for model, columns in SEALED_COLUMNS}
    return {
        (table, col, row_id): keyring.open(
            sealed, table=table, column=aliases[table][col], row_id=row_id
        )
        for (table, col, row_id), sealed in values.items()
    }


def versions(values: dict[tuple[str, str, int], str]) -> set[str]:
    return {sealed.partition(":")[0] for sealed in values.values()}


@pytest.mark.parametrize("cipher", ["aes-256-gcm", "sm4-gcm"])
async def test_rotation_reseals_every_value_and_keeps_it_readable(orm: str, cipher: str) -> None:
    cells = await seed(ring(cipher, "v1"))
    before = await stored()
    assert versions(before) == {"v1"}
    both = ring(cipher, "v1", "v2")

    batches: list[BatchReport] = []
    report = await rotate_keys(both, batch_size=2, progress=batches.append)

    after = await stored()
    assert versions(after) == {"v2"}
    assert set(after) == set(cells)
    assert opened(both, after) == cells
    # Retiring v1 afterwards: the newest key alone opens everything.
    assert opened(ring(cipher, "v2"), after) == cells
    assert report.newest_version == "v2"
    assert report.broken == []
    assert report.totals.resealed == len(cells)
    assert report.totals.current == report.totals.changed == report.totals.broken == 0
    assert report.columns[("person", "phone_sealed")].resealed == 3
    assert report.columns[("staff_user", "totp_secret_sealed")].resealed == 3
    assert list(report.columns) == [
        (model._meta.db_table, db_column) for model, cols in SEALED_COLUMNS for db_column, _ in cols
    ]
    # Batches of two rows: person has 4 rows (one all NULL), the others 3 each.
    assert [(b.table, b.rows) for b in batches] == [
        ("person", 2),
        ("person", 2),
        ("wechat_account", 2),
        ("wechat_account", 1),
        ("taxpayer_grant", 2),
        ("taxpayer_grant", 1),
        ("staff_user", 2),
        ("staff_user", 1),
    ]
    assert report.batches == len(batches)
    assert all(b.first_id <= b.last_id for b in batches)

    again = await rotate_keys(both, batch_size=2)
    assert again.totals.resealed == 0
    assert again.totals.current == len(cells)
    assert await stored() == after


class Interrupted(Exception):
    pass


async def test_an_interrupted_run_resumes_where_it_stopped(orm: str) -> None:
    cells = await seed(ring("aes-256-gcm", "v1"))
    both = ring("aes-256-gcm", "v1", "v2")
    seen: list[BatchReport] = []

    def stop_after_two(batch: BatchReport) -> None:
        seen.append(batch)
        if len(seen) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        await rotate_keys(both, batch_size=1, progress=stop_after_two)

    halfway = await stored()
    # Two person rows done (three columns each), everything else untouched.
    assert sum(1 for v in halfway.values() if v.startswith("v2:")) == 6
    assert versions(halfway) == {"v1", "v2"}
    assert opened(both, halfway) == cells

    report = await rotate_keys(both, batch_size=1)
    after = await stored()
    assert versions(after) == {"v2"}
    assert opened(both, after) == cells
    assert report.totals.current == 6
    assert report.totals.resealed == len(cells) - 6


async def test_a_value_changed_during_rotation_is_not_overwritten(
    orm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_ring = ring("aes-256-gcm", "v1")
    cells = await seed(old_ring)
    both = ring("aes-256-gcm", "v1", "v2")
    target = next(k for k in cells if k[:2] == ("wechat_account", "phone_sealed"))
    row_id = target[2]
    real_cas = rotation.compare_and_swap

    async def service_writes_first(
        model: type[Model], rid: int, column: str, old: str, new: str
    ) -> bool:
        if model is WeChatAccount and rid == row_id:
            # A worker that has not restarted yet still seals with v1: its write lands between
            # our read and our write.
            await WeChatAccount.filter(id=rid).update(
                phone_sealed=old_ring.seal(
                    "13900009999", table="wechat_account", column="phone", row_id=rid
                )
            )
        return await real_cas(model, rid, column, old, new)

    monkeypatch.setattr(rotation, "compare_and_swap", service_writes_first)
    report = await rotate_keys(both)
    monkeypatch.undo()

    assert report.columns[("wechat_account", "phone_sealed")].changed == 1
    assert report.totals.changed == 1
    assert report.totals.resealed == len(cells) - 1
    after = await stored()
    assert after[target].startswith("v1:")  # the worker's value, not our stale re-seal
    expected = cells | {target: "13900009999"}
    assert opened(both, after) == expected

    # The next run picks it up.
    again = await rotate_keys(both)
    assert again.totals.resealed == 1
    assert again.totals.changed == 0
    final = await stored()
    assert versions(final) == {"v2"}
    assert opened(both, final) == expected


async def test_compare_and_swap_writes_only_over_what_was_read(orm: str) -> None:
    old_ring = ring("aes-256-gcm", "v1")
    cells = await seed(old_ring, people=1)
    key = next(k for k in cells if k[:2] == ("person", "name_sealed"))
    current = (await stored())[key]
    stale = old_ring.seal("旧名", table="person", column="name", row_id=key[2])

    assert not await compare_and_swap(Person, key[2], "name_sealed", stale, "v2:x")
    assert (await stored())[key] == current
    assert await compare_and_swap(Person, key[2], "name_sealed", current, "v2:y")
    assert (await stored())[key] == "v2:y"


async def test_broken_values_are_reported_and_the_rest_rotated(orm: str) -> None:
    old_ring = ring("aes-256-gcm", "v1")
    cells = await seed(old_ring)
    persons = sorted({k[2] for k in cells if k[0] == "person"})
    raw = await stored()
    first, second = persons[0], persons[1]
    bad = {
        # Copied from another row: the row id bound into it no longer matches.
        ("person", "name_sealed", first): raw[("person", "name_sealed", second)],
        # Plaintext stored by mistake, and a key version the keyring never had.
        ("person", "phone_sealed", second): "13812345678",
        ("staff_user", "totp_secret_sealed", min(k[2] for k in cells if k[0] == "staff_user")): (
            "v0:" + raw[("person", "phone_sealed", first)].partition(":")[2]
        ),
    }
    for (table, column, row_id), value in bad.items():
        model = next(m for m, _ in SEALED_COLUMNS if m._meta.db_table == table)
        await model.filter(id=row_id).update(**{column: value})

    both = ring("aes-256-gcm", "v1", "v2")
    report = await rotate_keys(both, batch_size=2)

    assert sorted(report.broken, key=repr) == sorted(
        (SealedRef(t, c, r) for t, c, r in bad), key=repr
    )
    assert report.totals.broken == 3
    assert report.totals.resealed == len(cells) - 3
    assert "13812345678" not in repr(report)
    after = await stored()
    for key, value in bad.items():
        assert after[key] == value  # left alone
    good = {k: v for k, v in after.items() if k not in bad}
    assert versions(good) == {"v2"}
    assert opened(both, good) == {k: v for k, v in cells.items() if k not in bad}


async def test_a_dry_run_counts_and_writes_nothing(orm: str) -> None:
    cells = await seed(ring("sm4-gcm", "v1"))
    before = await stored()
    report = await rotate_keys(ring("sm4-gcm", "v1", "v2"), dry_run=True)
    assert report.dry_run
    assert report.totals.resealed == len(cells)
    assert await stored() == before


async def test_a_single_key_has_nothing_to_reseal(orm: str) -> None:
    cells = await seed(ring("aes-256-gcm", "v1"))
    before = await stored()
    report = await rotate_keys(ring("aes-256-gcm", "v1"))
    assert report.totals.current == len(cells)
    assert report.totals.resealed == 0
    assert await stored() == before


async def test_batch_size_must_be_positive(orm: str) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await rotate_keys(ring("aes-256-gcm", "v1"), batch_size=0)
