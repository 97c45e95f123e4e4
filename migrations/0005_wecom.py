from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('suban', '0004_filing')]

    initial = False

    operations = [
        ops.CreateModel(
            name='WeComApproval',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('sp_no', fields.CharField(unique=True, max_length=64)),
                ('submission_id', fields.BigIntField(db_index=True)),
                ('applicant_userid', fields.CharField(max_length=64)),
                ('status', fields.CharField(default='applying', max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wecom_approval', 'app': 'suban', 'pk_attr': 'id', 'table_description': "An enterprise's internal approval of a submission, run as a WeCom OA approval (sp_no)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WeComMember',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('userid', fields.CharField(unique=True, max_length=64)),
                ('person', fields.OneToOneField('suban.Person', source_field='person_id', db_constraint=True, to_field='id', related_name='wecom_member', on_delete=OnDelete.CASCADE)),
                ('bound_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_login_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wecom_member', 'app': 'suban', 'pk_attr': 'id', 'table_description': 'A WeCom member bound to a real-name person, so WeCom is a second front door to the'},
            bases=['Model'],
        ),
    ]
