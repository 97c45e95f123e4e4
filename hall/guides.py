"""Business guides (二维码一次性告知): what to bring, the steps, where to go, one per business.

The demo guides are data: one TOML file per guide in ``hall/guides/``, checked completely when
read (unknown keys, empty lists, a code that does not fit a mini-program code's scene), and
loaded into the database by ``suban demo`` (upserted; a guide in the database that no file names
is left alone). Requests read the guides from a per-worker cache, since the set is small and
changes only when someone loads it again.

Each guide has a QR code that opens its page in the mini-program: the page
:data:`GUIDE_PAGE` with the scene ``g={code}``, the way a WeChat mini-program code
(getwxacodeunlimit) delivers it. Drawn locally (segno), the code holds that page path and scene
as text (``pages/guide/index?scene=g%3Dproxy_invoice``): what the mini-program's page receives
either way, so the front end and the H5 preview handle both alike.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
import tomllib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import segno
from tortoise.transactions import in_transaction

from hall.guide_search import (
    IndexedFields,
    build_search_text,
    parse_search_text,
    query_terms,
    score,
)
from hall.models import Guide, HallCategory

# Data files only, no __init__.py: a regular package here would shadow this module (the same
# arrangement as forms/catalogue/).
GUIDES_DIR = "guides"
GUIDE_PAGE = "pages/guide/index"
# A wxacode scene is at most 32 characters; "g=" leaves 30 for the code.
CODE = re.compile(r"[a-z][a-z0-9_]{0,29}")
_OTHER_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_TITLE = 100
MAX_ITEM = 300
MAX_ITEMS = 30
MAX_KEYWORD = 20
MAX_KEYWORDS = 30

_KEYS = frozenset(
    {
        "code",
        "title",
        "summary",
        "materials",
        "steps",
        "location",
        "hall",
        "category",
        "form_code",
        "keywords",
        "position",
    }
)
_REQUIRED = ("code", "title", "summary", "materials", "steps", "location", "position")


class GuideError(ValueError):
    """A guide file (or the database it is loaded into) is wrong; the message names the file."""


@dataclass(frozen=True, slots=True)
class GuideSpec:
    code: str
    title: str
    summary: str
    materials: tuple[str, ...]
    steps: tuple[str, ...]
    location: str
    hall_id: str | None
    category: str | None
    form_code: str | None
    keywords: tuple[str, ...]
    position: int

    def search_text(self) -> str:
        return build_search_text(
            self.title, self.keywords, [self.summary, *self.materials, *self.steps, self.location]
        )

    def row(self) -> dict[str, Any]:
        """The model's column values, as ``Guide`` takes them."""
        return {
            "title": self.title,
            "summary": self.summary,
            "materials": list(self.materials),
            "steps": list(self.steps),
            "location": self.location,
            "hall_id": self.hall_id,
            "category": self.category,
            "form_code": self.form_code,
            "keywords": list(self.keywords),
            "search_text": self.search_text(),
            "position": self.position,
        }


def _text(source: str, key: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GuideError(f"{source}: {key}: must be a non-empty string")
    if len(value) > limit:
        raise GuideError(f"{source}: {key}: at most {limit} characters")
    return value.strip()


def _texts(source: str, key: str, value: Any, limit: int, count: int) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise GuideError(f"{source}: {key}: must be a non-empty list of strings")
    if len(value) > count:
        raise GuideError(f"{source}: {key}: at most {count} entries")
    items = tuple(_text(source, f"{key}.{i}", item, limit) for i, item in enumerate(value))
    if len(set(items)) != len(items):
        raise GuideError(f"{source}: {key}: an entry appears twice")
    return items


def _code(source: str, key: str, value: Any, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise GuideError(f"{source}: {key}: lower-case letters, digits and _ ({pattern.pattern})")
    return value


def parse_guide(source: str, data: Mapping[str, Any], *, expected_code: str | None) -> GuideSpec:
    """One guide file's content as a :class:`GuideSpec`, or :class:`GuideError`."""
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise GuideError(f"{source}: unknown keys {unknown} (allowed: {sorted(_KEYS)})")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise GuideError(f"{source}: missing keys {missing}")
    code = _code(source, "code", data["code"], CODE)
    if expected_code is not None and code != expected_code:
        raise GuideError(f"{source}: code: must match the file name ({expected_code!r})")
    position = data["position"]
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise GuideError(f"{source}: position: must be a non-negative integer")
    hall_id = _code(source, "hall", data["hall"], _OTHER_CODE) if "hall" in data else None
    category = (
        _code(source, "category", data["category"], _OTHER_CODE) if "category" in data else None
    )
    if category is not None and hall_id is None:
        raise GuideError(f"{source}: category: a category belongs to a hall: name the hall")
    keywords = (
        _texts(source, "keywords", data["keywords"], MAX_KEYWORD, MAX_KEYWORDS)
        if "keywords" in data
        else ()
    )
    return GuideSpec(
        code=code,
        title=_text(source, "title", data["title"], MAX_TITLE),
        summary=_text(source, "summary", data["summary"], MAX_ITEM),
        materials=_texts(source, "materials", data["materials"], MAX_ITEM, MAX_ITEMS),
        steps=_texts(source, "steps", data["steps"], MAX_ITEM, MAX_ITEMS),
        location=_text(source, "location", data["location"], MAX_ITEM),
        hall_id=hall_id,
        category=category,
        form_code=(
            _code(source, "form_code", data["form_code"], _OTHER_CODE)
            if "form_code" in data
            else None
        ),
        keywords=keywords,
        position=position,
    )


def load_guide_files(directory: Traversable | Path) -> list[GuideSpec]:
    """Every ``*.toml`` in ``directory``, checked, in position order."""
    files = sorted(
        (entry for entry in directory.iterdir() if entry.name.endswith(".toml")),
        key=lambda entry: entry.name,
    )
    if not files:
        raise GuideError(f"{directory}: no guide files (*.toml)")
    specs: list[GuideSpec] = []
    for entry in files:
        source = f"{GUIDES_DIR}/{entry.name}"
        try:
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise GuideError(f"{source}: not valid TOML: {exc}") from exc
        specs.append(parse_guide(source, data, expected_code=entry.name.removesuffix(".toml")))
    positions = [spec.position for spec in specs]
    if len(set(positions)) != len(positions):
        raise GuideError(f"{directory}: two guides share a position (order must be explicit)")
    return sorted(specs, key=lambda spec: spec.position)


@cache
def packaged_guides() -> tuple[GuideSpec, ...]:
    """The guide files shipped in ``hall/guides/``, read and checked once."""
    return tuple(load_guide_files(resources.files("hall").joinpath(GUIDES_DIR)))


# --------------------------------------------------------------------------- the database


# Bumped whenever this process writes guides: every cache in the process reloads on its next
# read. Other processes (a `suban demo` next to running workers) are caught by the cache's TTL.
_generation = 0


def forget_cached_guides() -> None:
    """Make every guide cache of this process read the database again on its next use."""
    global _generation
    _generation += 1


async def _check_places(specs: Sequence[GuideSpec]) -> None:
    halls = {spec.hall_id for spec in specs if spec.hall_id is not None}
    known = {
        (hall_id, code)
        for hall_id, code in await HallCategory.filter(hall_id__in=halls).values_list(
            "hall_id", "code"
        )
    }
    known_halls = {hall_id for hall_id, _ in known}
    for spec in specs:
        if spec.hall_id is not None and spec.hall_id not in known_halls:
            raise GuideError(f"guide {spec.code}: hall {spec.hall_id!r} does not exist")
        if spec.category is not None and (spec.hall_id, spec.category) not in known:
            raise GuideError(
                f"guide {spec.code}: hall {spec.hall_id!r} has no category {spec.category!r}"
            )


async def upsert_guides(specs: Iterable[GuideSpec]) -> tuple[int, int]:
    """Create or update each guide; returns (written, unchanged). An unchanged guide is not
    written, so its ``updated_at`` — and with it its cached QR code — stays as it was."""
    specs = list(specs)
    await _check_places(specs)
    written = 0
    async with in_transaction():
        existing = {g.code: g for g in await Guide.filter(code__in=[s.code for s in specs])}
        for spec in specs:
            row = spec.row()
            guide = existing.get(spec.code)
            if guide is None:
                await Guide.create(code=spec.code, **row)
            elif any(getattr(guide, key) != value for key, value in row.items()):
                guide.update_from_dict(row)
                await guide.save()
            else:
                continue
            written += 1
    if written:
        forget_cached_guides()
    return written, len(specs) - written


async def load_demo_guides() -> str:
    written, unchanged = await upsert_guides(packaged_guides())
    return f"{written + unchanged} guides ({written} written, {unchanged} unchanged)"


# --------------------------------------------------------------------------- reading, searching


@dataclass(frozen=True, slots=True)
class GuideRecord(GuideSpec):
    """A guide as stored: its spec, when it was last written and its search index."""

    updated_at: datetime
    indexed: IndexedFields

    @property
    def version(self) -> str:
        """Changes whenever the guide is written; names its QR code in caches."""
        return f"{self.updated_at.timestamp():.6f}"


def _record(guide: Guide) -> GuideRecord:
    search_text = guide.search_text or build_search_text(
        guide.title,
        guide.keywords,
        [guide.summary, *guide.materials, *guide.steps, guide.location],
    )
    return GuideRecord(
        code=guide.code,
        title=guide.title,
        summary=guide.summary,
        materials=tuple(guide.materials),
        steps=tuple(guide.steps),
        location=guide.location,
        hall_id=guide.hall_id,  # type: ignore[attr-defined]
        category=guide.category,
        form_code=guide.form_code,
        keywords=tuple(guide.keywords),
        position=guide.position,
        updated_at=guide.updated_at,
        indexed=parse_search_text(search_text),
    )


@dataclass(frozen=True, slots=True)
class Hit:
    guide: GuideRecord
    score: float


class GuideSet:
    """The guides as one worker holds them, in position order."""

    def __init__(self, records: Iterable[GuideRecord]) -> None:
        self.records = sorted(records, key=lambda r: (r.position, r.code))
        self._by_code = {r.code: r for r in self.records}

    def get(self, code: str) -> GuideRecord | None:
        return self._by_code.get(code)

    def search(self, query: str) -> list[Hit]:
        """Ranked matches of ``query``; every guide (score 0) when it is blank."""
        if not query.strip():
            return [Hit(record, 0.0) for record in self.records]
        terms = query_terms(query)
        if terms.empty:
            return []
        hits = [Hit(record, score(terms, record.indexed)) for record in self.records]
        # sorted() is stable: equal scores keep the position order.
        return sorted((hit for hit in hits if hit.score > 0), key=lambda hit: -hit.score)


class GuideCache:
    """A worker's copy of every guide. Read again after ``ttl`` seconds, or at once after this
    process wrote guides; another process's writes show within ``ttl``."""

    def __init__(self, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._guides: GuideSet | None = None
        self._loaded_at = 0.0
        self._generation = -1

    async def guides(self) -> GuideSet:
        fresh = self._generation == _generation and self.clock() - self._loaded_at < self.ttl
        if self._guides is None or not fresh:
            generation, loaded_at = _generation, self.clock()
            self._guides = GuideSet(_record(g) for g in await Guide.all())
            self._generation, self._loaded_at = generation, loaded_at
        return self._guides


# --------------------------------------------------------------------------- QR codes


def guide_scene(code: str) -> str:
    return f"g={code}"


def page_link(page: str, scene: str) -> str:
    """What a locally drawn code holds: the page and its scene as the page receives them."""
    return f"{page}?scene={quote(scene, safe='')}"


def draw_qr_png(content: str, width: int = 430) -> bytes:
    """A QR code of ``content`` as a PNG about ``width`` pixels square (quiet zone included)."""
    qr = segno.make(content, error="m", micro=False)
    modules = qr.symbol_size(scale=1, border=4)[0]
    out = io.BytesIO()
    qr.save(out, kind="png", scale=max(1, width // modules), border=4)
    return out.getvalue()


# Given a scene and a page, the code image (a maker per way of drawing: locally, or by WeChat).
QrMaker = Callable[[str, str], Awaitable[bytes]]
QR_CACHE_TTL = 30 * 86_400


def qr_cache_key(maker: str, record: GuideRecord) -> str:
    return f"guide:qr:{maker}:{record.code}:{record.version}"


def qr_etag(maker: str, record: GuideRecord) -> str:
    return hashlib.sha256(qr_cache_key(maker, record).encode()).hexdigest()[:32]


async def guide_qr_png(redis: Any, record: GuideRecord, maker: str, make: QrMaker) -> bytes:
    """The guide's code image, made once per guide version and maker and kept in Redis, so all
    workers and nodes ask WeChat once per version rather than once per view."""
    key = qr_cache_key(maker, record)
    cached: bytes | None = await redis.get(key)
    if cached is not None:
        return cached
    image = await make(guide_scene(record.code), GUIDE_PAGE)
    await redis.set(key, image, ex=QR_CACHE_TTL)
    return image
