"""OAuth 2.0 / OpenID Connect errors with the codes of RFC 6749 §4.1.2.1 and §5.2 and OIDC Core §3.1.2.6.

Services raise :class:`OAuthError`; the views turn it into the answer the protocol wants: a JSON
body ``{"error", "error_description"}`` from the token, revocation and introspection endpoints,
a redirect to the client's registered ``redirect_uri`` from the authorization endpoint, or an
error page when the client or its redirect URI cannot be trusted (:class:`UntrustedRequest`).
"""

from __future__ import annotations

__all__ = ["OAuthError", "UntrustedRequest"]


class OAuthError(Exception):
    """A protocol error: ``error`` code, human description, HTTP status and extra response headers."""

    def __init__(self, error: str, description: str = "", *, status: int = 400, headers: dict | None = None):
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}
        # Set for errors of a trusted authorization request: where the browser is sent with the error.
        self.redirect_uri = ""

    def as_dict(self) -> dict[str, str]:
        """The JSON body of RFC 6749 §5.2."""
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class UntrustedRequest(Exception):
    """The client_id or redirect_uri is missing, unknown or unregistered: show an error page, never redirect."""

    def __init__(self, error: str, description: str):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
