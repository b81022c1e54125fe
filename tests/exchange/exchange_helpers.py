"""Constants of the exchange tests (imported as ``from exchange_helpers import ...``): the people of ``t.person``."""

import datetime

from dgov.kernel.validators import make_resident_id

PERSON_ID = make_resident_id("370102", datetime.date(1990, 5, 17), 3)
OTHER_ID = make_resident_id("370102", datetime.date(1985, 1, 2), 5)
