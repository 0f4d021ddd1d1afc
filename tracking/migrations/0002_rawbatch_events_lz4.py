"""Compress RawBatch.events with lz4 on PostgreSQL 14+: cheaper per insert than pglz."""

from django.db import migrations


def use_lz4(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or connection.pg_version < 140000:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                       "WHERE name = 'default_toast_compression'")
        row = cursor.fetchone()
        if row and row[0]:  # a server built without lz4 keeps pglz
            cursor.execute("ALTER TABLE tracking_rawbatch ALTER COLUMN events SET COMPRESSION lz4")


def use_default(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or connection.pg_version < 140000:
        return
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tracking_rawbatch ALTER COLUMN events SET COMPRESSION DEFAULT")


class Migration(migrations.Migration):
    dependencies = [("tracking", "0001_initial")]
    operations = [migrations.RunPython(use_lz4, use_default)]
