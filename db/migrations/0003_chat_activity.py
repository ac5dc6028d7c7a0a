"""Keep chats' activity columns in step with their messages, in the database.

A statement-level trigger (one UPDATE per statement, so COPY-sized inserts stay
cheap) moves ``updated_at`` forward for visible messages and records the latest
assistant message id, which is what "unread" compares against.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

FUNCTION = """
CREATE FUNCTION chat_messages_touch_chats() RETURNS trigger AS $$
BEGIN
  UPDATE chats AS c SET
    updated_at = GREATEST(c.updated_at, n.last_at),
    last_assistant_message_id = NULLIF(GREATEST(
      COALESCE(c.last_assistant_message_id, 0), COALESCE(n.last_assistant, 0)
    ), 0)
  FROM (
    SELECT chat_id,
           max(created_at) AS last_at,
           max(id) FILTER (WHERE role = 'assistant') AS last_assistant
    FROM inserted
    WHERE visibility <> 'model' AND NOT deleted
    GROUP BY chat_id
  ) AS n
  WHERE c.id = n.chat_id;
  RETURN NULL;
END
$$ LANGUAGE plpgsql
"""

TRIGGER = """
CREATE TRIGGER chat_messages_touch_chats
AFTER INSERT ON chat_messages
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION chat_messages_touch_chats()
"""


class Migration(migrations.Migration):
    dependencies = [("models", "0002_chats")]

    initial = False

    operations = [
        ops.RunSQL(FUNCTION, reverse_sql="DROP FUNCTION chat_messages_touch_chats()"),
        ops.RunSQL(
            TRIGGER, reverse_sql="DROP TRIGGER chat_messages_touch_chats ON chat_messages"
        ),
    ]
