"""Operations of the OpenID Connect provider, one module per concern.

* :mod:`~dgov.oidc.services.clients` — client registration, secrets, client authentication;
* :mod:`~dgov.oidc.services.keys` — RS256/ES256/SM2 signing keys, JWKS, rotation;
* :mod:`~dgov.oidc.services.authorization` — authorization requests, login state, consent, codes;
* :mod:`~dgov.oidc.services.tokens` — grants, token validation, revocation, introspection.
"""
