from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.utils.html import format_html

from .models import WidgetKey, widget_secret_new
from .widget import origin_normalize


class WidgetKeyForm(forms.ModelForm):
    """Origins are typed one per line and stored as the browser sends them (https://host[:port])."""

    origins = forms.CharField(
        label="Allowed origins", required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One per line, e.g. https://intranet.example.com. Pages elsewhere cannot show or use the widget.",
    )

    class Meta:
        model = WidgetKey
        fields = ["name", "origins", "allow_anonymous", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["origins"].initial = "\n".join(self.instance.allowed_origins or [])

    def clean_origins(self) -> list[str]:
        origins, errors = [], []
        for line in self.cleaned_data["origins"].splitlines():
            if not line.strip():
                continue
            try:
                origin = origin_normalize(line)
            except ValueError as error:
                errors.append(str(error))
                continue
            if origin not in origins:
                origins.append(origin)
        if errors:
            raise forms.ValidationError(errors)
        return origins

    def save(self, commit=True):
        self.instance.allowed_origins = self.cleaned_data["origins"]
        return super().save(commit=commit)


@admin.register(WidgetKey)
class WidgetKeyAdmin(admin.ModelAdmin):
    form = WidgetKeyForm
    list_display = ["name", "key", "origins_list", "allow_anonymous", "active", "created_at"]
    list_filter = ["active", "allow_anonymous"]
    search_fields = ["name", "key"]
    readonly_fields = ["key", "secret", "embed_snippet", "created_at"]
    actions = ["rotate_secret"]

    def get_fieldsets(self, request, obj=None):
        main = (None, {"fields": ["name", "origins", "allow_anonymous", "active"]})
        if obj is None:
            return [main]
        return [main, ("Embedding", {"fields": ["key", "secret", "embed_snippet", "created_at"]})]

    @admin.display(description="Allowed origins")
    def origins_list(self, obj: WidgetKey) -> str:
        return ", ".join(obj.allowed_origins) or "—"

    @admin.display(description="Snippet for the intranet page")
    def embed_snippet(self, obj: WidgetKey) -> str:
        portal = (getattr(settings, "PORTAL_URL", "") or "https://PORTAL").rstrip("/")
        return format_html(
            "<code>&lt;script src=\"{}/widget.js\" data-key=\"{}\" async&gt;&lt;/script&gt;</code>"
            "<br>Add <code>data-token=\"…\"</code> (a token your intranet's backend signs with the secret above) to ask "
            "as the signed-in employee. See README, “Embedding the chat widget”.",
            portal, obj.key,
        )

    @admin.action(description="Rotate the secret (tokens signed with the old one stop working)")
    def rotate_secret(self, request, queryset):
        for widget_key in queryset:
            widget_key.secret = widget_secret_new()
            widget_key.save(update_fields=["secret"])
        self.message_user(request, f"New secrets for {queryset.count()} key(s); update the intranet backends.", messages.WARNING)
