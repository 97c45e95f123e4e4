from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('suban', '0002_identity')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor_kind', fields.CharField(max_length=16)),
                ('actor_id', fields.CharField(null=True, max_length=64)),
                ('action', fields.CharField(max_length=64)),
                ('target', fields.CharField(null=True, max_length=128)),
                ('outcome', fields.CharField(default='ok', max_length=16)),
                ('request_id', fields.CharField(null=True, max_length=64)),
                ('details', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'audit_event', 'app': 'suban', 'pk_attr': 'id', 'table_description': 'An identity event, appended and never changed. Holds ids and codes, no personal data.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffUser',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('username', fields.CharField(unique=True, max_length=64)),
                ('display_name', fields.CharField(max_length=64)),
                ('password_hash', fields.CharField(max_length=255)),
                ('totp_secret_sealed', fields.TextField(null=True, unique=False)),
                ('roles', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('active', fields.BooleanField(default=True)),
                ('failed_logins', fields.IntField(default=0)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('wecom_userid', fields.CharField(null=True, unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_login_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'staff_user', 'app': 'suban', 'pk_attr': 'id', 'table_description': "A member of the bureau's staff (console login). Roles: reviewer, hall_manager, admin."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Taxpayer',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('taxpayer_id', fields.CharField(unique=True, max_length=20)),
                ('name', fields.CharField(max_length=200)),
                ('kind', fields.CharField(max_length=24)),
                ('legal_rep_index', fields.CharField(null=True, db_index=True, max_length=64)),
                ('finance_head_index', fields.CharField(null=True, db_index=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'taxpayer', 'app': 'suban', 'pk_attr': 'id', 'table_description': "The bureau's registration data for a taxpayer (纳税人). The legal representative (or the"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Grant',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('taxpayer', fields.ForeignKeyField('suban.Taxpayer', source_field='taxpayer_id', db_constraint=True, to_field='id', related_name='grants', on_delete=OnDelete.CASCADE)),
                ('role', fields.CharField(max_length=24)),
                ('grantee_id_index', fields.CharField(db_index=True, max_length=64)),
                ('grantee_name_sealed', fields.TextField(unique=False)),
                ('grantee', fields.ForeignKeyField('suban.Person', source_field='grantee_id', null=True, db_constraint=True, to_field='id', related_name='grants', on_delete=OnDelete.SET_NULL)),
                ('status', fields.CharField(default='pending', max_length=16)),
                ('granted_by_kind', fields.CharField(max_length=16)),
                ('granted_by_id', fields.BigIntField()),
                ('valid_from', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('confirmed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_by_kind', fields.CharField(null=True, max_length=16)),
                ('revoked_by_id', fields.BigIntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'taxpayer_grant', 'app': 'suban', 'pk_attr': 'id', 'table_description': 'A role on a taxpayer granted to a person (办税授权), named by ID number until the grantee'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Person',
            name='verification',
            field=fields.CharField(default='face', max_length=24),
        ),
        ops.AddField(
            model_name='WeChatAccount',
            name='phone_sealed',
            field=fields.TextField(null=True, unique=False),
        ),
    ]
