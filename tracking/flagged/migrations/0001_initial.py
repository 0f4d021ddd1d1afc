"""The flagged events table (events dropped as bots', kept apart)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('tracking', '0001_initial'),  # Site; nothing later needed
    ]

    operations = [
        migrations.CreateModel(
            name='FlaggedEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event_id', models.UUIDField()),
                ('subject', models.CharField(max_length=32)),
                ('name', models.CharField(max_length=40)),
                ('ts', models.DateTimeField()),
                ('reason', models.CharField(choices=[('bot_user_agent', 'crawler user agent'), ('bot_rate', 'too many events in a second')], max_length=24)),
                ('source', models.CharField(choices=[('browser', 'Browser'), ('server', 'Server'), ('import', 'Import')], max_length=8)),
                ('user_agent', models.CharField(blank=True, max_length=512)),
                ('event', models.JSONField(help_text='the event as accepted (subject hashes, no raw ids)')),
                ('flagged_at', models.DateTimeField(auto_now_add=True)),
                ('site', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tracking.site')),
            ],
            options={
                'ordering': ['-flagged_at'],
                'indexes': [models.Index(fields=['site', 'flagged_at'], name='tracking_fl_site_id_e60a80_idx')],
                'constraints': [models.UniqueConstraint(fields=('site', 'event_id'), name='flaggedevent_unique')],
            },
        ),
    ]
