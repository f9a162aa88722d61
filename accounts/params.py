"""Query parameters shared by the JSON API's views."""


def query_flag(request, name, default=None):
    """A true/false query parameter: 1, true or yes (any case) is true, anything else false;
    absent or empty gives `default` (None lets a filter tell "not asked" from "false")."""
    value = request.GET.get(name, "")
    return default if value == "" else value.lower() in ("1", "true", "yes")
