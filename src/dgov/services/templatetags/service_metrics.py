"""Template filters of the service metrics pages: rates as percentages, averages with one decimal."""

from django import template

register = template.Library()


@register.filter
def pct(value) -> str:
    """A rate (0.9123) as a percentage with one decimal ("91.2%"), or a dash when undefined."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.1f}%"


@register.filter
def dec1(value) -> str:
    """A number with one decimal, or a dash when undefined."""
    if value is None or value == "":
        return "—"
    return f"{float(value):.1f}"
