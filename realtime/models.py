from django.db import models


class Event(models.Model):
    """Outbox of browser events in the embedded configuration (see realtime.transports)."""

    KEEP = 10_000

    type = models.CharField(max_length=40)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.type} #{self.pk}"

    @classmethod
    def last_id(cls):
        return cls.objects.order_by("-id").values_list("id", flat=True).first() or 0

    @classmethod
    def after(cls, event_id):
        return list(cls.objects.filter(id__gt=event_id).order_by("id").values_list("id", "payload")[:1000])

    @classmethod
    def prune(cls):
        """Keep the newest KEEP events: enough for any web process that is a little behind."""
        cls.objects.filter(id__lte=cls.last_id() - cls.KEEP).delete()
