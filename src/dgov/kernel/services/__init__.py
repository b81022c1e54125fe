"""Public operations of the shared kernel, one module per concern.

The kernel is a library that every app calls, so its services are split by concern
(``audit``, ``keys``, ``divisions``, ``organizations``, ``calendar``, ``events``, ``notify``)
instead of one ``services.py``; each module follows the same house rules.
"""
