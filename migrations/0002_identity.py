from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('suban', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Person',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name_sealed', fields.TextField(null=True, unique=False)),
                ('id_type', fields.CharField(null=True, max_length=32)),
                ('id_number_sealed', fields.TextField(null=True, unique=False)),
                ('id_number_index', fields.CharField(null=True, unique=True, max_length=64)),
                ('phone_sealed', fields.TextField(null=True, unique=False)),
                ('phone_index', fields.CharField(null=True, db_index=True, max_length=64)),
                ('verified_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'person', 'app': 'suban', 'pk_attr': 'id', 'table_description': 'A real person, known after real-name verification (税收实名制).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WeChatAccount',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('openid', fields.CharField(unique=True, max_length=64)),
                ('unionid', fields.CharField(null=True, db_index=True, max_length=64)),
                ('person', fields.ForeignKeyField('suban.Person', source_field='person_id', null=True, db_constraint=True, to_field='id', related_name='accounts', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_login_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wechat_account', 'app': 'suban', 'pk_attr': 'id', 'table_description': 'A mini-program user (openid): one person may have several, an account one person.'},
            bases=['Model'],
        ),
    ]
