"""PostgreSQL refuses UPDATE and DELETE on consent receipts and the audit log.

A row may change only inside a transaction that erasure marked with
``SET LOCAL recsite.erasure = 'on'`` (tracking.privacy.erasure). On the audit log
even then only the subject hash may be blanked. TRUNCATE stays allowed (it is the
table owner's own operation, used by test suites), and SQLite has no triggers
here: the embedded default relies on the admin alone.
"""

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION recsite_receipt_append_only() RETURNS trigger AS $$
BEGIN
  IF coalesce(current_setting('recsite.erasure', true), '') = 'on' THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  RAISE EXCEPTION 'consent receipts are append-only: % refused (erase the subject instead)',
    TG_OP USING ERRCODE = 'insufficient_privilege';
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION recsite_audit_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND coalesce(current_setting('recsite.erasure', true), '') = 'on'
     AND NEW.subject = '' AND (to_jsonb(NEW) - 'subject') = (to_jsonb(OLD) - 'subject') THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'the personal data audit log is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER consentreceipt_append_only BEFORE UPDATE OR DELETE ON tracking_consentreceipt
  FOR EACH ROW EXECUTE FUNCTION recsite_receipt_append_only();
CREATE TRIGGER personaldataaccess_append_only BEFORE UPDATE OR DELETE
  ON tracking_personaldataaccess FOR EACH ROW EXECUTE FUNCTION recsite_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS consentreceipt_append_only ON tracking_consentreceipt;
DROP TRIGGER IF EXISTS personaldataaccess_append_only ON tracking_personaldataaccess;
DROP FUNCTION IF EXISTS recsite_receipt_append_only();
DROP FUNCTION IF EXISTS recsite_audit_append_only();
"""


def _run(schema_editor, sql: str) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(sql)  # no parameters: the '%' of RAISE stays as it is


def create(apps, schema_editor) -> None:
    _run(schema_editor, FUNCTIONS)


def drop(apps, schema_editor) -> None:
    _run(schema_editor, DROP)


class Migration(migrations.Migration):
    dependencies = [("tracking", "0003_privacy_requests_audit_banner_keys")]
    operations = [migrations.RunPython(create, drop)]
