"""The JSON API shell: the Ninja instance, problem+json errors, shared auth classes and docs."""
