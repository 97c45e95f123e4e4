"""Tortoise models of the hall package."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from auth.models import Person, StaffUser, Taxpayer


class Hall(Model):
    """A tax service hall (办税服务厅)."""

    hall_id = fields.CharField(pk=True, max_length=32)
    name = fields.CharField(max_length=100)
    address = fields.CharField(max_length=200)
    # [{"weekdays": [1, 2, 3, 4, 5], "start": "09:00", "end": "12:00"}, ...]; ISO weekdays.
    open_hours: fields.Field[list[dict[str, object]]] = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    categories: fields.ReverseRelation[HallCategory]

    class Meta:
        table = "hall"


class HallCategory(Model):
    """A business category of a hall's queue (发票办理, 申报纳税, …)."""

    id = fields.IntField(pk=True)
    hall: fields.ForeignKeyRelation[Hall] = fields.ForeignKeyField(
        "suban.Hall", related_name="categories", on_delete=fields.CASCADE
    )
    code = fields.CharField(max_length=32)
    name = fields.CharField(max_length=50)
    position = fields.SmallIntField(default=0)

    class Meta:
        table = "hall_category"
        unique_together = (("hall", "code"),)


class Device(Model):
    """A hall device that signs its requests: a camera (people count, snapshots) or the queue
    system (ticket events). The HMAC secret is sealed like personal data (see auth/pii.py)."""

    device_id = fields.CharField(pk=True, max_length=64)
    hall: fields.ForeignKeyRelation[Hall] = fields.ForeignKeyField(
        "suban.Hall", related_name="devices", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=16)  # "camera" | "queue"
    name = fields.CharField(max_length=100, default="")
    secret_sealed = fields.TextField()
    enabled = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "hall_device"


class CameraSnapshot(Model):
    """A JPEG a camera sent with a heartbeat. The bytes live in the snapshot store under their
    SHA-256, the row says when and from which camera, and expires after the retention period."""

    id = fields.BigIntField(pk=True)
    device: fields.ForeignKeyRelation[Device] = fields.ForeignKeyField(
        "suban.Device", related_name="snapshots", on_delete=fields.CASCADE
    )
    sha256 = fields.CharField(max_length=64, db_index=True)
    size = fields.IntField()
    taken_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "hall_camera_snapshot"


class QueueEvent(Model):
    """One event of the queue system as it arrived, kept for idempotency and audit. Ticket
    numbers restart every day, so a ticket is identified by (device, service date, number)."""

    id = fields.BigIntField(pk=True)
    device: fields.ForeignKeyRelation[Device] = fields.ForeignKeyField(
        "suban.Device", related_name="queue_events", on_delete=fields.CASCADE
    )
    service_date = fields.DateField()
    ticket_no = fields.CharField(max_length=16)
    category = fields.CharField(max_length=32)
    event = fields.CharField(max_length=16)  # taken | called | finished | no_show
    window = fields.CharField(max_length=16, null=True)
    at = fields.DatetimeField()
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "hall_queue_event"
        unique_together = (("device", "service_date", "ticket_no", "event"),)


class QueueTicket(Model):
    """Queue history: one row per ticket (取号) with its times and outcome, built from the queue
    events (and bulk-loaded for the synthetic demo history). Wait estimates and the comfort
    index read it."""

    id = fields.BigIntField(pk=True)
    hall: fields.ForeignKeyRelation[Hall] = fields.ForeignKeyField(
        "suban.Hall", related_name="tickets", on_delete=fields.CASCADE
    )
    service_date = fields.DateField()
    ticket_no = fields.CharField(max_length=16)
    category = fields.CharField(max_length=32)
    taken_at = fields.DatetimeField()
    called_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    window = fields.CharField(max_length=16, null=True)
    # waiting | serving | done | no_show | returned (退办)
    outcome = fields.CharField(max_length=16, default="waiting")
    booked = fields.BooleanField(default=False)

    class Meta:
        table = "hall_queue_ticket"
        unique_together = (("hall", "service_date", "ticket_no"),)
        indexes = (("hall_id", "taken_at"),)


class Slot(Model):
    """Bookable capacity of a hall for one category and time range. ``booked`` and ``invited``
    are counters moved only by conditional UPDATEs, so concurrent bookings on any worker or node
    can never exceed ``capacity - reserved`` (self-booked) or ``reserved`` (staff invitations)."""

    id = fields.BigIntField(pk=True)
    hall: fields.ForeignKeyRelation[Hall] = fields.ForeignKeyField(
        "suban.Hall", related_name="slots", on_delete=fields.CASCADE
    )
    category = fields.CharField(max_length=32)
    date = fields.DateField()
    start = fields.TimeField()
    end = fields.TimeField()
    window = fields.CharField(max_length=16, null=True)
    capacity = fields.IntField()
    # Held back for staff invitations (two-way appointments), not bookable by taxpayers.
    reserved = fields.IntField(default=0)
    booked = fields.IntField(default=0)
    invited = fields.IntField(default=0)
    created_by: fields.ForeignKeyNullableRelation[StaffUser] = fields.ForeignKeyField(
        "suban.StaffUser", related_name="slots", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "hall_slot"
        unique_together = (("hall", "category", "date", "start", "window"),)
        indexes = (("hall_id", "date", "category"),)


class Appointment(Model):
    """A person's place in a slot, booked by the person or accepted from a staff invitation.
    ``active_slot_id`` equals the slot while the appointment holds a place and is NULL after
    it ends: the unique pair (person, active_slot_id) allows one active booking per person per
    slot on SQLite and PostgreSQL alike (NULLs never collide)."""

    id = fields.BigIntField(pk=True)
    slot: fields.ForeignKeyRelation[Slot] = fields.ForeignKeyField(
        "suban.Slot", related_name="appointments", on_delete=fields.RESTRICT
    )
    person: fields.ForeignKeyRelation[Person] = fields.ForeignKeyField(
        "suban.Person", related_name="appointments", on_delete=fields.CASCADE
    )
    active_slot_id = fields.BigIntField(null=True)
    taxpayer: fields.ForeignKeyNullableRelation[Taxpayer] = fields.ForeignKeyField(
        "suban.Taxpayer", related_name="appointments", null=True, on_delete=fields.SET_NULL
    )
    # booked | cancelled | checked_in | done | no_show
    status = fields.CharField(max_length=16, default="booked")
    source = fields.CharField(max_length=16, default="self")  # self | invitation
    note_sealed = fields.TextField(null=True)
    ticket_no = fields.CharField(max_length=16, null=True)
    reminded_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "hall_appointment"
        unique_together = (("person", "active_slot_id"),)


class Invitation(Model):
    """A staff invitation of a person into a slot's reserved capacity (two-way appointment).
    The person accepts (an appointment is made) or declines. The message is sealed."""

    id = fields.BigIntField(pk=True)
    slot: fields.ForeignKeyRelation[Slot] = fields.ForeignKeyField(
        "suban.Slot", related_name="invitations", on_delete=fields.RESTRICT
    )
    person: fields.ForeignKeyRelation[Person] = fields.ForeignKeyField(
        "suban.Person", related_name="invitations", on_delete=fields.CASCADE
    )
    staff: fields.ForeignKeyNullableRelation[StaffUser] = fields.ForeignKeyField(
        "suban.StaffUser", related_name="invitations", null=True, on_delete=fields.SET_NULL
    )
    message_sealed = fields.TextField(null=True)
    # pending | accepted | declined | expired | cancelled
    status = fields.CharField(max_length=16, default="pending")
    appointment: fields.ForeignKeyNullableRelation[Appointment] = fields.ForeignKeyField(
        "suban.Appointment", related_name="invitation", null=True, on_delete=fields.SET_NULL
    )
    expires_at = fields.DatetimeField()
    answered_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "hall_invitation"


class ComfortPublication(Model):
    """The comfort index (办税舒适度指数) of a hall for one month, as published: the per-day slot
    curve with levels, the monthly trend, and what the model was (features, fit quality)."""

    id = fields.BigIntField(pk=True)
    hall: fields.ForeignKeyRelation[Hall] = fields.ForeignKeyField(
        "suban.Hall", related_name="comfort_publications", on_delete=fields.CASCADE
    )
    month = fields.CharField(max_length=7)  # YYYY-MM
    published_at = fields.DatetimeField()
    published_by = fields.CharField(max_length=64)  # staff:<id> or job
    levels: list[str] = fields.JSONField(default=list)
    days: list[dict[str, object]] = fields.JSONField(default=list)
    trend: list[dict[str, object]] = fields.JSONField(default=list)
    model_info: dict[str, object] = fields.JSONField(default=dict)

    class Meta:
        table = "hall_comfort_publication"
        unique_together = (("hall", "month"),)


class Guide(Model):
    """A business guide (二维码一次性告知): what to bring, the steps, where to go. ``search_text``
    holds the segmented terms the keyword search matches."""

    code = fields.CharField(pk=True, max_length=48)
    title = fields.CharField(max_length=100)
    summary = fields.TextField(default="")
    materials: list[str] = fields.JSONField(default=list)
    steps: list[str] = fields.JSONField(default=list)
    location = fields.TextField(default="")
    hall: fields.ForeignKeyNullableRelation[Hall] = fields.ForeignKeyField(
        "suban.Hall", related_name="guides", null=True, on_delete=fields.SET_NULL
    )
    category = fields.CharField(max_length=32, null=True)
    form_code = fields.CharField(max_length=48, null=True)
    keywords: list[str] = fields.JSONField(default=list)
    search_text = fields.TextField(default="")
    position = fields.IntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "hall_guide"


# Every sealed column of this package, for `suban rotate-keys` and the no-plaintext test.
SEALED_COLUMNS: tuple[tuple[type[Model], tuple[tuple[str, str], ...]], ...] = (
    (Device, (("secret_sealed", "secret"),)),
    (Appointment, (("note_sealed", "note"),)),
    (Invitation, (("message_sealed", "message"),)),
)
