"""Portal and workbench pages (thin: parse, authorize, call services, render)."""

from django.shortcuts import render


def home(request):
    """The public portal's home page."""
    return render(request, "web/home.html")
