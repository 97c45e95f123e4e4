from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Hall',
            fields=[
                ('hall_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('name', fields.CharField(max_length=100)),
                ('address', fields.CharField(max_length=200)),
                ('open_hours', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'hall', 'app': 'suban', 'pk_attr': 'hall_id', 'table_description': 'A tax service hall (办税服务厅).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='HallCategory',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('hall', fields.ForeignKeyField('suban.Hall', source_field='hall_id', db_constraint=True, to_field='hall_id', related_name='categories', on_delete=OnDelete.CASCADE)),
                ('code', fields.CharField(max_length=32)),
                ('name', fields.CharField(max_length=50)),
                ('position', fields.SmallIntField(default=0)),
            ],
            options={'table': 'hall_category', 'app': 'suban', 'unique_together': (('hall', 'code'),), 'pk_attr': 'id', 'table_description': "A business category of a hall's queue (发票办理, 申报纳税, …)."},
            bases=['Model'],
        ),
    ]
