from tortoise import migrations
from tortoise.migrations import operations as ops
from db.vocabulary import ChatMode, ChatStatus, MessageRole, Visibility
from orjson import loads
from tortoise.contrib.postgres.indexes import PostgreSQLIndex
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Chat',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('owner', fields.ForeignKeyField('models.User', source_field='owner_id', db_constraint=True, to_field='id', related_name='chats', on_delete=OnDelete.CASCADE)),
                ('parent', fields.ForeignKeyField('models.Chat', source_field='parent_id', null=True, db_constraint=True, to_field='id', related_name='children', on_delete=OnDelete.CASCADE)),
                ('root_id', fields.UUIDField(db_index=True)),
                ('workspace_id', fields.UUIDField(null=True, db_index=True)),
                ('model_config_id', fields.UUIDField(null=True)),
                ('title', fields.CharField(max_length=200)),
                ('status', fields.CharEnumField(default=ChatStatus.WAITING, description='WAITING: waiting\nPENDING: pending\nRUNNING: running\nREQUIRES_ACTION: requires_action\nINTERRUPTING: interrupting\nERROR: error', enum_type=ChatStatus, max_length=20)),
                ('mode', fields.CharEnumField(null=True, description='EXPLORE: explore', enum_type=ChatMode, max_length=20)),
                ('plan_mode', fields.BooleanField(default=False)),
                ('archived', fields.BooleanField(default=False)),
                ('pin_order', fields.IntField(default=0)),
                ('list_rank', fields.IntField(default=2147483647)),
                ('labels', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('system_prompt', fields.TextField(null=True, unique=False)),
                ('worker_id', fields.UUIDField(null=True)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('heartbeat_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('last_read_message_id', fields.BigIntField(null=True)),
                ('last_assistant_message_id', fields.BigIntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'chats', 'app': 'models', 'indexes': [PostgreSQLIndex(fields=['status'], condition={'status': 'pending'})], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ChatMessage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('chat', fields.ForeignKeyField('models.Chat', source_field='chat_id', db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.CASCADE)),
                ('role', fields.CharEnumField(description='SYSTEM: system\nUSER: user\nASSISTANT: assistant\nTOOL: tool', enum_type=MessageRole, max_length=16)),
                ('parts', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('visibility', fields.CharEnumField(default=Visibility.BOTH, description='USER: user\nMODEL: model\nBOTH: both', enum_type=Visibility, max_length=8)),
                ('compressed', fields.BooleanField(default=False)),
                ('deleted', fields.BooleanField(default=False)),
                ('input_tokens', fields.IntField(null=True)),
                ('output_tokens', fields.IntField(null=True)),
                ('reasoning_tokens', fields.IntField(null=True)),
                ('cache_read_tokens', fields.IntField(null=True)),
                ('cache_write_tokens', fields.IntField(null=True)),
                ('total_cost_micros', fields.BigIntField(null=True)),
                ('runtime_ms', fields.IntField(null=True)),
                ('created_by', fields.ForeignKeyField('models.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.SET_NULL)),
                ('model_config_id', fields.UUIDField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'chat_messages', 'app': 'models', 'indexes': [Index(fields=['chat_id', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ChatQueuedMessage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('chat', fields.ForeignKeyField('models.Chat', source_field='chat_id', db_constraint=True, to_field='id', related_name='queued_messages', on_delete=OnDelete.CASCADE)),
                ('parts', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('created_by', fields.ForeignKeyField('models.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='queued_messages', on_delete=OnDelete.SET_NULL)),
                ('model_config_id', fields.UUIDField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'chat_queued_messages', 'app': 'models', 'indexes': [Index(fields=['chat_id', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        # The chat list: owner, archived filter, pinned first, newest first. Mixed
        # directions need DESC columns, which Tortoise indexes cannot express.
        ops.RunSQL(
            "CREATE INDEX chats_list_order ON chats "
            "(owner_id, archived, list_rank, updated_at DESC, id DESC) WHERE parent_id IS NULL",
            reverse_sql="DROP INDEX chats_list_order",
        ),
        ops.RunSQL(
            "CREATE INDEX chats_parent_id ON chats (parent_id) WHERE parent_id IS NOT NULL",
            reverse_sql="DROP INDEX chats_parent_id",
        ),
    ]
