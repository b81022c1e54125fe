"""Template context shared by every page."""

from dgov.web import navigation as nav


def navigation(request):
    """Menus for the portal and the workbench, filtered for the current user, and the current area."""
    user = getattr(request, "user", None)
    path = getattr(request, "path", "")
    portal = nav.links("portal", user=user, current_path=path)
    workbench = nav.links("workbench", user=user, current_path=path)
    in_workbench = any(link.active for link in workbench)
    return {
        "nav_portal": portal,
        "nav_workbench": workbench,
        "nav_area": "workbench" if in_workbench else "portal",
    }
