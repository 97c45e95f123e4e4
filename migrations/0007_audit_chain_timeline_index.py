from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('suban', '0006_hall')]

    initial = False

    operations = [
        ops.AddField(
            model_name='AuditEvent',
            name='chain_alg',
            field=fields.CharField(null=True, max_length=8),
        ),
        ops.AddField(
            model_name='AuditEvent',
            name='hash',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='AuditEvent',
            name='prev_hash',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddIndex(
            model_name='SubmissionEvent',
            index=Index(fields=['submission_id', 'id']),
        ),
    ]
