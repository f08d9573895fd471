from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: events are written by the portal and removed only by the retention task."""

    list_display = ("time", "actor_name", "action", "target", "via", "ip")
    list_filter = ("action", "via", "time", ("actor", admin.RelatedOnlyFieldListFilter))
    search_fields = ("actor_name", "target", "ip")
    date_hierarchy = "time"
    list_select_related = ("actor",)
    readonly_fields = ("time", "actor", "actor_name", "action", "target", "detail", "ip", "via")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
