from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('suban', '0003_registry_grants_staff_audit')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Draft',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('person', fields.ForeignKeyField('suban.Person', source_field='person_id', db_constraint=True, to_field='id', related_name='drafts', on_delete=OnDelete.CASCADE)),
                ('form_code', fields.CharField(max_length=48)),
                ('form_version', fields.IntField()),
                ('taxpayer', fields.ForeignKeyField('suban.Taxpayer', source_field='taxpayer_id', null=True, db_constraint=True, to_field='id', related_name='drafts', on_delete=OnDelete.CASCADE)),
                ('data_sealed', fields.TextField(unique=False)),
                ('version', fields.IntField(default=1)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'form_draft', 'app': 'suban', 'pk_attr': 'id', 'table_description': 'A form being filled in, saved to resume later. Its version guards against lost updates.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboxMessage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharField(max_length=16)),
                ('recipient', fields.CharField(max_length=64)),
                ('template', fields.CharField(max_length=64)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('dedupe_key', fields.CharField(unique=True, max_length=128)),
                ('status', fields.CharField(default='pending', db_index=True, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.CharField(null=True, max_length=255)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'outbox_message', 'app': 'suban', 'pk_attr': 'id', 'table_description': 'A message to send because something changed, written in the same transaction as the'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Submission',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tracking_no', fields.CharField(unique=True, max_length=24)),
                ('form_code', fields.CharField(db_index=True, max_length=48)),
                ('form_version', fields.IntField()),
                ('taxpayer', fields.ForeignKeyField('suban.Taxpayer', source_field='taxpayer_id', null=True, db_constraint=True, to_field='id', related_name='submissions', on_delete=OnDelete.RESTRICT)),
                ('applicant', fields.ForeignKeyField('suban.Person', source_field='applicant_id', db_constraint=True, to_field='id', related_name='submissions', on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharField(db_index=True, max_length=24)),
                ('version', fields.IntField(default=1)),
                ('data_sealed', fields.TextField(unique=False)),
                ('quote', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('total_incl_tax', fields.DecimalField(null=True, max_digits=16, decimal_places=2)),
                ('idempotency_key', fields.CharField(max_length=128)),
                ('body_hash', fields.CharField(max_length=64)),
                ('check_applicant', fields.CharField(max_length=64)),
                ('check_taxpayer', fields.CharField(null=True, max_length=64)),
                ('claimed_by', fields.ForeignKeyField('suban.StaffUser', source_field='claimed_by_id', null=True, db_constraint=True, to_field='id', related_name='claimed_submissions', on_delete=OnDelete.SET_NULL)),
                ('result', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('result_no', fields.CharField(null=True, unique=True, max_length=32)),
                ('submitted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'submission', 'app': 'suban', 'unique_together': (('applicant', 'idempotency_key'),), 'pk_attr': 'id', 'table_description': 'A filed form (涉税文书) and where it stands. Every change of status goes through'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Attachment',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('submission', fields.ForeignKeyField('suban.Submission', source_field='submission_id', db_constraint=True, to_field='id', related_name='attachments', on_delete=OnDelete.CASCADE)),
                ('sha256', fields.CharField(db_index=True, max_length=64)),
                ('name_sealed', fields.TextField(unique=False)),
                ('size', fields.IntField()),
                ('content_type', fields.CharField(max_length=64)),
                ('uploaded_by_kind', fields.CharField(max_length=16)),
                ('uploaded_by_id', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'submission_attachment', 'app': 'suban', 'pk_attr': 'id', 'table_description': 'A file attached to a submission. The bytes live in the attachment store under their'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SubmissionEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('submission', fields.ForeignKeyField('suban.Submission', source_field='submission_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.CASCADE)),
                ('action', fields.CharField(max_length=32)),
                ('from_status', fields.CharField(null=True, max_length=24)),
                ('status', fields.CharField(max_length=24)),
                ('version', fields.IntField()),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor_kind', fields.CharField(max_length=16)),
                ('actor_id', fields.CharField(null=True, max_length=64)),
                ('note', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'submission_event', 'app': 'suban', 'pk_attr': 'id', 'table_description': "One step of a submission's timeline, appended by every transition and never changed."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Taxpayer',
            name='internal_approval_required',
            field=fields.BooleanField(default=False),
        ),
    ]
