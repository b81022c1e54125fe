"""Models of the shared kernel, one module per concern, re-exported here for Django."""

from dgov.kernel.models.audit import *  # noqa: F403
from dgov.kernel.models.calendar import *  # noqa: F403
from dgov.kernel.models.divisions import *  # noqa: F403
from dgov.kernel.models.events import *  # noqa: F403
from dgov.kernel.models.keys import *  # noqa: F403
from dgov.kernel.models.notify import *  # noqa: F403
from dgov.kernel.models.organizations import *  # noqa: F403
