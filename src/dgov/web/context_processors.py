"""Template context shared by every page."""


def navigation(request):
    """Navigation entries for the portal and the workbench."""
    return {}
